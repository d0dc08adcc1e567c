import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { Application, ClusterImageMetadata } from "../../image/metadata";
import { detectAppType } from "../app-type";
import { BuildInputError, checkLayerPaths, copyEntries, joinLayerPath, resolveSources, type Where } from "../context";
import type { AppInstruction, AppSource, CniInstruction, CsiInstruction } from "../kubefile";
import type { LayerEntry } from "../layer-writer";
import { layerStep, withParents, type PlatformBuild } from "../platform-build";
import { downloadSource, type DownloadLimits } from "../remote-source";
import { refuseUnsafeNames } from "./copy";

/** APP, CNI and CSI: the sources go to application/apps/<name>/ and the app into the metadata. */
export async function appStep(
  build: PlatformBuild,
  context: string,
  ins: AppInstruction | CniInstruction | CsiInstruction,
  where: Where,
  meta: ClusterImageMetadata,
): Promise<boolean> {
  const download = { ...(build.opts.signal ? { signal: build.opts.signal } : {}), ...(build.opts.downloads ? { limits: build.opts.downloads } : {}) };
  const app = await appEntries(context, join(build.rootfs, ".."), ins.name, ins.sources, where, download);
  upsertApp(meta, { name: ins.name, type: app.type, files: app.files, ...(ins.kind === "APP" ? {} : { role: ins.kind === "CNI" ? "cni" : "csi" }) });
  checkLayerPaths(app.entries, where);
  refuseUnsafeNames(app.entries, where);
  return layerStep(build, `${ins.kind} ${ins.name}`, withParents(app.entries));
}

function upsertApp(meta: ClusterImageMetadata, app: Application): void {
  const i = meta.applications.findIndex((a) => a.name === app.name);
  if (i >= 0) meta.applications[i] = app;
  else meta.applications.push(app);
}

async function appEntries(
  context: string,
  scratch: string,
  name: string,
  sources: readonly AppSource[],
  where: Where,
  download: { signal?: AbortSignal; limits?: DownloadLimits },
): Promise<{ entries: LayerEntry[]; type: Application["type"]; files: string[] }> {
  const local = sources.filter((s): s is { type: "local"; path: string } => s.type === "local").map((s) => s.path);
  const paths = await resolveSources(context, local, where);
  for (const s of sources) if (s.type === "remote") paths.push(await downloadSource(s.url, scratch, where, download));
  const appDir = joinLayerPath("application/apps", name);
  const entries = await copyEntries(paths, `${appDir}/`, true);
  // A single chart directory becomes the app directory itself (helm install <app dir>).
  const detected = await detectAppType(paths);
  if (detected.type === "error") throw new BuildInputError(where.file, where.line, `${where.instruction} ${name}: ${detected.message}`);
  let final = entries;
  if (detected.type === "helm" && paths.length === 1 && (await stat(paths[0]!)).isDirectory()) {
    final = await copyEntries(paths, appDir, false);
  }
  const files = [...new Set(final.filter((e) => e.path.startsWith(`${appDir}/`)).map((e) => e.path.slice(appDir.length + 1).split("/")[0]!))].sort();
  return { entries: final, type: detected.type, files };
}
