import { shellQuote } from "../../ssh/shell";
import { hasRole, isMaster } from "../plan/roles";
import type { PlannedHost } from "../plan/types";
import type { LifecycleStep, Runtime, RuntimeCommand, RuntimeContext, RuntimeHost, RuntimeOutputs } from "./types";

/**
 * The hooks runtime: the image carries one executable per lifecycle step under `hooks/`
 * (init-host, bootstrap, join, leave, upgrade, check, reset); a missing hook is a step with
 * nothing to do. Each runs on its host with the working directory set to the image's rootfs
 * and the environment `hookEnv` builds — the contract image authors write against.
 */
export const hooksRuntime: Runtime = {
  kind: "hooks",
  command(step: LifecycleStep, host: RuntimeHost, ctx: RuntimeContext): RuntimeCommand {
    const path = `hooks/${step}`;
    return {
      command: `cd ${shellQuote(ctx.rootfs)} && if [ -x ${path} ]; then exec ./${path}; elif [ -e ${path} ]; then exec sh ./${path}; fi`,
      env: hookEnv(step, host, ctx),
    };
  },
  async outputs(readFile, ctx) {
    const path = `${ctx.dataRoot}/outputs.json`;
    const text = await readFile(path);
    return text === undefined ? {} : parseHookOutputs(text, path);
  },
};

const OUTPUT_FIELDS = ["endpoint", "kubeconfig", "caCertificate"] as const;

/**
 * A hook (typically bootstrap) may write `$SEALANT_DATA_ROOT/outputs.json` on the first master:
 * a JSON object with string fields endpoint, kubeconfig (a secret), caCertificate.
 */
export function parseHookOutputs(text: string, path: string): RuntimeOutputs {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the text around the fault, and the text holds the kubeconfig.
    throw new Error(`${path}, written by the image's hooks, is not JSON (its content is not shown: it may hold secrets)`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc))
    throw new Error(`${path}, written by the image's hooks, must hold a JSON object with ${OUTPUT_FIELDS.join(", ")}`);
  const out: RuntimeOutputs = {};
  for (const [k, v] of Object.entries(doc)) {
    if (!(OUTPUT_FIELDS as readonly string[]).includes(k))
      throw new Error(`${path}, written by the image's hooks: unknown field "${k}" (allowed: ${OUTPUT_FIELDS.join(", ")})`);
    // Never the value in the message: the kubeconfig is a secret.
    if (typeof v !== "string") throw new Error(`${path}, written by the image's hooks: "${k}" must be a string`);
    out[k as (typeof OUTPUT_FIELDS)[number]] = v;
  }
  return out;
}

/**
 * SEALANT_* variables (documented in the README) plus the cluster's env with the host's on
 * top. Lists are space-separated IPs, ordered as in the cluster spec.
 */
export function hookEnv(step: LifecycleStep, host: RuntimeHost, ctx: RuntimeContext): Record<string, string> {
  const ips = (pred: (h: PlannedHost) => boolean) =>
    ctx.hosts
      .filter(pred)
      .map((h) => h.ip)
      .join(" ");
  const masters = ctx.hosts.filter(isMaster);
  return {
    ...ctx.env,
    ...(host.env ?? {}),
    SEALANT_CLUSTER: ctx.cluster,
    SEALANT_ACTION: ctx.action,
    SEALANT_STEP: step,
    SEALANT_HOST_IP: host.ip,
    SEALANT_ROLES: host.roles.join(","),
    SEALANT_HOSTS: ips(() => true),
    SEALANT_MASTERS: ips(isMaster),
    // A host without a role is no worker (sealer joins role node only); it is in SEALANT_HOSTS.
    SEALANT_WORKERS: ips((h) => !isMaster(h) && hasRole(h)),
    SEALANT_FIRST_MASTER: masters[0]?.ip ?? "",
    SEALANT_ADDED: ctx.added.join(" "),
    SEALANT_REMOVED: ctx.removed.join(" "),
    SEALANT_ROOTFS: ctx.rootfs,
    SEALANT_DATA_ROOT: ctx.dataRoot,
  };
}
