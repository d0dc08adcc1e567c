import { posix } from "node:path";
import type { ClusterImageMetadata } from "../../image/metadata";
import { shellQuote } from "../../ssh";
import type { AppsSpec } from "../spec";

/**
 * What runs on the first master once the cluster is up (sealer's CMDS / LAUNCH / APP): the
 * spec's `apps.cmds` or `apps.launch` over the image's, each app by its type — shell apps run
 * their scripts, kube apps `kubectl apply`, helm apps `helm upgrade --install`.
 */
export function launchCommands(meta: ClusterImageMetadata, apps: AppsSpec): string[] {
  if (apps.cmds?.length) return [...apps.cmds];
  const names = apps.launch ?? meta.launch.apps;
  if (!apps.launch && meta.launch.cmds?.length) return [...meta.launch.cmds];
  const out: string[] = [];
  for (const name of names ?? []) {
    const app = meta.applications.find((a) => a.name === name);
    if (!app) throw new Error(`apps.launch: the image has no app "${name}" (it has: ${meta.applications.map((a) => a.name).join(", ") || "none"})`);
    const dir = posix.join("application/apps", app.name);
    if (app.cmds?.length) {
      out.push(...app.cmds.map((c) => `cd ${shellQuote(dir)} && ${c}`));
      continue;
    }
    for (const f of app.files) {
      const path = shellQuote(posix.join(dir, f));
      if (app.type === "shell") out.push(`sh ${path}`);
      else if (app.type === "kube") out.push(`kubectl apply -f ${path}`);
      else out.push(`helm upgrade --install ${shellQuote(app.name)} ${path}`);
    }
  }
  return out;
}

/** Whether there is anything to launch (decides the plan's launch phase). */
export function hasLaunch(meta: ClusterImageMetadata, apps: AppsSpec): boolean {
  return Boolean(apps.cmds?.length || apps.launch?.length || meta.launch.cmds?.length || meta.launch.apps?.length);
}
