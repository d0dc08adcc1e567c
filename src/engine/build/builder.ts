import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Digest } from "../image/digest";
import { MediaType } from "../image/media-types";
import { emptyMetadata, metadataAnnotations, readMetadata, type ClusterImageMetadata } from "../image/metadata";
import { normaliseReference } from "../image/reference";
import { platformString, type Descriptor, type ImageConfig, type Index, type Manifest, type Platform } from "../image/types";
import { BuildInputError, type Where } from "./context";
import { describe } from "./describe";
import { buildPlatforms, contextDir, parseKubefiles, readKubefile } from "./inputs";
import { checkBaseAppRefs, formatKubefileError, isSecretName, KubefileSyntaxError, type Instruction, type Kubefile } from "./kubefile";
import type { BuildOptions, BuildResult, BuiltLayer } from "./options";
import { PlatformBuild } from "./platform-build";
import { appStep } from "./steps/app";
import { copyStep } from "./steps/copy";
import { cacheContainerImages, IMAGES_STEP } from "./steps/images";
import { runStep } from "./steps/run";

export type { BuildEvent, BuildOptions, BuildResult, BuiltLayer } from "./options";

/**
 * Builds a cluster image from a Kubefile: one layer per COPY/ADD/RUN/APP/CNI/CSI and one for
 * the container images the result needs, each reused from the cache when its parent chain
 * and inputs are unchanged. The working rootfs is only materialised when a step must run,
 * so a fully cached rebuild extracts nothing.
 */
export async function buildImage(opts: BuildOptions): Promise<BuildResult> {
  const context = await contextDir(opts.context);
  const { text, file } = await readKubefile(context, opts.kubefile, opts.signal);
  const platforms = buildPlatforms(opts.platforms);
  const kubefiles = parseKubefiles({ text, file }, opts.buildArgs ?? {}, platforms);
  for (const w of kubefiles[0]!.warnings) opts.onEvent?.({ type: "warning", platform: platformString(platforms[0]!), text: formatKubefileError(w) });
  await checkImageLists([...(opts.imageListFiles ?? []), ...(opts.ignoredImageListFiles ?? [])]);
  const workRoot = join(dirname(opts.store.root), "tmp");
  await mkdir(workRoot, { recursive: true });
  await removeDeadBuildsScratch(workRoot);
  const release = await opts.store.lease();
  try {
    const built: Array<{ platform: Platform; manifest: Descriptor; layers: BuiltLayer[]; metadata: ClusterImageMetadata }> = [];
    for (const [i, platform] of platforms.entries()) {
      const work = await mkdtemp(join(workRoot, `build-${process.pid}-`));
      try {
        built.push({ platform, ...(await buildPlatform(opts, context, kubefiles[i]!, platform, work)) });
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    }
    // An interrupted build names nothing, even when its last step had just finished.
    opts.signal?.throwIfAborted();
    const descriptor = built.length === 1 ? built[0]!.manifest : await opts.store.putJson(indexOf(built), MediaType.ociIndex);
    const ref = await opts.store.setTag(opts.tag, descriptor);
    return {
      ref,
      digest: descriptor.digest,
      descriptor,
      platforms: built.map((b) => ({ platform: platformString(b.platform), manifest: b.manifest.digest, layers: b.layers })),
      metadata: built[0]!.metadata,
    };
  } finally {
    await release();
  }
}

/**
 * A step's progress line with the values of secret-named build args (DB_PASSWORD=...) shown as
 * ***: ENV/LABEL lines print expanded values, and a build log is no place for a password.
 */
function hideSecretArgs(text: string, buildArgs: Record<string, string> | undefined): string {
  const values = Object.entries(buildArgs ?? {})
    .filter(([name, value]) => value !== "" && isSecretName(name))
    .map(([, value]) => value)
    .sort((a, b) => b.length - a.length);
  return values.reduce((out, v) => out.split(v).join("***"), text);
}

/**
 * A build killed outright (SIGKILL, a power cut) cannot remove its scratch directory: the next
 * build removes those whose process is gone. The pid is in the name; a live process keeps its own.
 */
async function removeDeadBuildsScratch(workRoot: string): Promise<void> {
  for (const name of await readdir(workRoot).catch(() => [])) {
    const pid = Number(/^build-(\d+)-/.exec(name)?.[1]);
    if (pid > 0 && !processAlive(pid)) await rm(join(workRoot, name), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The image lists are read only at the end of a build: a wrong path must fail before any work. */
async function checkImageLists(files: string[]): Promise<void> {
  for (const f of files) {
    const st = await stat(f).catch(() => undefined);
    if (!st) throw new Error(`cannot read the image list ${f}: no such file`);
    if (!st.isFile()) throw new Error(`cannot read the image list ${f}: not a regular file`);
  }
}

function indexOf(built: Array<{ platform: Platform; manifest: Descriptor }>): Index {
  return { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: built.map((b) => ({ ...b.manifest, platform: b.platform })) };
}

async function buildPlatform(
  opts: BuildOptions,
  context: string,
  kubefile: Kubefile,
  platform: Platform,
  work: string,
): Promise<{ manifest: Descriptor; layers: BuiltLayer[]; metadata: ClusterImageMetadata }> {
  const pf = platformString(platform);
  const base = await loadBase(opts, kubefile, platform);
  const unknownApps =
    kubefile.from.image === "scratch"
      ? []
      : checkBaseAppRefs(
          kubefile,
          base.metadata.applications.map((a) => a.name),
        );
  if (unknownApps.length > 0) throw new KubefileSyntaxError(unknownApps);
  const build = new PlatformBuild(opts, join(work, "rootfs"), platform, base.key);
  for (const l of base.layers) build.addLayer(build.cacheKey, l.descriptor, l.diffId, "base", true, false);
  build.history.splice(0, build.history.length, ...base.history);
  const meta = base.metadata;
  const env: Record<string, string> = { ...base.env };
  const labels: Record<string, string> = { ...base.labels };
  const steps = kubefile.instructions.filter((i) => i.kind !== "FROM" && i.kind !== "ARG");
  const total = steps.length + 1;
  let index = 0;
  for (const ins of steps) {
    index++;
    opts.signal?.throwIfAborted();
    const where: Where = { file: kubefile.file, line: ins.line, instruction: ins.kind };
    const text = hideSecretArgs(describe(ins), opts.buildArgs);
    const cached = await applyInstruction(build, context, ins, where, meta, env, labels);
    opts.onEvent?.({ type: "step", platform: pf, index, total, text, cached });
  }
  applyKubefileSummary(kubefile, meta, labels);
  // Container images: discovered on the final rootfs and cached into its registry/.
  const { images, cached } = await cacheContainerImages(build, opts, pf, meta.applications);
  meta.containerImages = images.map((image) => ({ image, platforms: [pf] }));
  opts.onEvent?.({ type: "step", platform: pf, index: total, total, text: IMAGES_STEP, cached });

  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: Object.entries(env).map(([k, v]) => `${k}=${v}`), Labels: labels },
    rootfs: { type: "layers", diff_ids: build.layers.map((l) => l.diffId) },
    history: build.history,
  };
  if (kubefile.maintainer) config.author = kubefile.maintainer;
  meta.env = env;
  meta.labels = labels;
  const configDesc = await opts.store.putJson(config, MediaType.ociConfig);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: configDesc,
    layers: build.layers.map((l) => l.descriptor),
    annotations: metadataAnnotations(meta),
  };
  const manifestDesc = await opts.store.putJson(manifest, MediaType.ociManifest);
  return {
    manifest: manifestDesc,
    layers: build.layers.map((l) => ({ digest: l.descriptor.digest, size: l.descriptor.size, cached: l.cached, createdBy: l.createdBy })),
    metadata: meta,
  };
}

interface BaseState {
  key: string;
  layers: Array<{ descriptor: Descriptor; diffId: Digest }>;
  history: NonNullable<ImageConfig["history"]>;
  env: Record<string, string>;
  labels: Record<string, string>;
  metadata: ClusterImageMetadata;
}

async function loadBase(opts: BuildOptions, kubefile: Kubefile, platform: Platform): Promise<BaseState> {
  const from = kubefile.from.image;
  if (from === "scratch") {
    return { key: "scratch", layers: [], history: [], env: {}, labels: {}, metadata: emptyMetadata("kube-installer") };
  }
  let desc: Descriptor;
  try {
    desc = await opts.resolveBase(from);
  } catch (err) {
    throw new BuildInputError(kubefile.file, kubefile.from.line, `FROM ${from}: ${(err as Error).message}`);
  }
  const { descriptor, manifest } = await opts.store.manifestFor(desc, platform).catch((err: Error) => {
    throw new BuildInputError(kubefile.file, kubefile.from.line, `FROM ${from}: ${err.message}`);
  });
  const config = await opts.store.readJson<ImageConfig>(manifest.config.digest);
  const metadata = readMetadata(manifest, config);
  const env: Record<string, string> = {};
  for (const kv of config.config?.Env ?? []) {
    const eq = kv.indexOf("=");
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  Object.assign(env, metadata.env);
  return {
    key: `from ${normaliseReference(from)} ${descriptor.digest}`,
    layers: manifest.layers.map((l, i) => ({ descriptor: l, diffId: config.rootfs.diff_ids[i]! })),
    history: config.history ?? [],
    env,
    labels: { ...(config.config?.Labels ?? {}) },
    metadata,
  };
}

/** Runs one instruction; returns whether its layer came from the cache (null: no layer). */
async function applyInstruction(
  build: PlatformBuild,
  context: string,
  ins: Instruction,
  where: Where,
  meta: ClusterImageMetadata,
  env: Record<string, string>,
  labels: Record<string, string>,
): Promise<boolean | null> {
  switch (ins.kind) {
    case "COPY":
    case "ADD":
      return copyStep(build, context, ins, where);
    case "APP":
    case "CNI":
    case "CSI":
      return appStep(build, context, ins, where, meta);
    case "RUN":
      if (ins.flags.length > 0) {
        // Build-machine isolation flags (--network, --mount, --security) have no meaning here:
        // RUN already uses the build machine's shell. Refuse rather than silently ignore.
        throw new BuildInputError(
          where.file,
          where.line,
          `RUN ${ins.flags.join(" ")}: RUN takes no flags in a Kubefile (it runs with the build machine's shell)`,
        );
      }
      return runStep(build, ins.command, { ...env, ...ins.env }, where);
    case "ENV":
      Object.assign(env, ins.pairs);
      build.addEmpty(
        `ENV ${JSON.stringify(ins.pairs)}`,
        `ENV ${Object.entries(ins.pairs)
          .map(([k, v]) => `${k}=${v}`)
          .join(" ")}`,
      );
      return null;
    case "LABEL":
      Object.assign(labels, ins.pairs);
      build.addEmpty(`LABEL ${JSON.stringify(ins.pairs)}`, `LABEL ${Object.keys(ins.pairs).join(" ")}`);
      return null;
    default:
      // MAINTAINER, APPCMDS, APPENV, LAUNCH, CMDS, CMD, KUBEVERSION: metadata only.
      build.addEmpty(`${ins.kind} ${describe(ins)}`, describe(ins));
      return null;
  }
}

/** Folds what the parser aggregated (launch, cmds, app cmds/env, derived labels) into the metadata. */
function applyKubefileSummary(kubefile: Kubefile, meta: ClusterImageMetadata, labels: Record<string, string>): void {
  Object.assign(labels, kubefile.labels);
  for (const [name, cmds] of Object.entries(kubefile.appCmds)) {
    const app = meta.applications.find((a) => a.name === name);
    if (app) app.cmds = [...cmds];
  }
  for (const [name, pairs] of Object.entries(kubefile.appEnv)) {
    const app = meta.applications.find((a) => a.name === name);
    if (app) app.env = { ...(app.env ?? {}), ...pairs };
  }
  if (kubefile.launch) meta.launch = { apps: [...kubefile.launch] };
  else if (kubefile.cmds.length > 0) meta.launch = { cmds: [...kubefile.cmds] };
  if (kubefile.from.image !== "scratch" && (kubefile.apps.length > 0 || kubefile.launch)) meta.kind = "app-installer";
}
