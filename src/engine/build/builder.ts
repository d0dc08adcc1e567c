import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Digest } from "../image/digest";
import { MediaType } from "../image/media-types";
import { emptyMetadata, metadataAnnotations, readMetadata, type Application, type ClusterImageMetadata } from "../image/metadata";
import { normaliseReference } from "../image/reference";
import type { ImageSourceFactory } from "../image/source";
import type { ImageStore } from "../image/store";
import { hostPlatform, platformString, type Descriptor, type ImageConfig, type Index, type Manifest, type Platform } from "../image/types";
import { detectAppType } from "./app-type";
import { applyCopyFlags, BuildInputError, copyEntries, entriesDigest, joinLayerPath, normaliseDest, resolveSources, type Where } from "./context";
import { archiveEntries, isArchive } from "./add-archive";
import { cacheImages } from "./image-cache";
import { discoverImages } from "./discovery";
import { checkBaseAppRefs, KubefileSyntaxError, parseKubefileOrThrow, type AppSource, type Instruction, type Kubefile } from "./kubefile";
import { extractLayer } from "./layer-extract";
import { writeLayer, parentDirectories, type LayerEntry } from "./layer-writer";
import { downloadSource, isRemoteSource } from "./remote-source";
import { runBuildCommand } from "./run-command";
import { diffSnapshots, takeSnapshot } from "./snapshot";

export interface BuildOptions {
  store: ImageStore;
  /** The build context directory. */
  context: string;
  /** Path of the Kubefile (default: <context>/Kubefile), or its text. */
  kubefile?: string | { text: string; file?: string };
  tag: string;
  buildArgs?: Record<string, string>;
  /** Default: this machine's platform. Several produce an OCI index. */
  platforms?: Platform[];
  noCache?: boolean;
  imageListFiles?: string[];
  ignoredImageListFiles?: string[];
  /** Registry access for caching container images. */
  sourceFor: ImageSourceFactory;
  /** Makes a FROM image available in the store (pulling it when missing). */
  resolveBase: (ref: string) => Promise<Descriptor>;
  /** Parallel container-image pulls. */
  concurrency?: number;
  signal?: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
}

export type BuildEvent =
  /** `cached` is null for steps that only set metadata and make no layer. */
  | { type: "step"; platform: string; index: number; total: number; text: string; cached: boolean | null }
  | { type: "output"; platform: string; text: string }
  | { type: "images"; platform: string; images: string[]; cached: boolean }
  | { type: "warning"; platform: string; text: string }
  /** Caching one container image: its bytes so far, and whether it is complete. */
  | { type: "image-progress"; platform: string; image: string; bytes: number; done: boolean }
  | { type: "image-retry"; platform: string; image: string; text: string };

export interface BuiltLayer {
  digest: Digest;
  size: number;
  cached: boolean;
  createdBy: string;
}

export interface BuildResult {
  ref: string;
  digest: Digest;
  descriptor: Descriptor;
  platforms: Array<{ platform: string; manifest: Digest; layers: BuiltLayer[] }>;
  metadata: ClusterImageMetadata;
}

/** A build step's cached outcome: the layer it produced plus anything the step learned. */
interface CacheRecord {
  digests: Digest[];
  layer: Descriptor;
  diffId: Digest;
}

const IMAGES_STEP = "cache container images";

/**
 * Builds a cluster image from a Kubefile: one layer per COPY/ADD/RUN/APP/CNI/CSI and one for
 * the container images the result needs, each reused from the cache when its parent chain
 * and inputs are unchanged. The working rootfs is only materialised when a step must run,
 * so a fully cached rebuild extracts nothing.
 */
export async function buildImage(opts: BuildOptions): Promise<BuildResult> {
  const context = resolve(opts.context);
  const st = await stat(context).catch(() => undefined);
  if (!st?.isDirectory()) throw new Error(`build context ${context} ${st ? "is not a directory" : "does not exist"}`);
  const { text, file } = await readKubefile(context, opts.kubefile);
  const platforms = opts.platforms && opts.platforms.length > 0 ? opts.platforms : [hostPlatform()];
  // Every platform's Kubefile is checked before any work starts (${ARCH} differs per platform).
  const kubefiles = platforms.map((p) => parseKubefileOrThrow(text, { file, buildArgs: opts.buildArgs ?? {}, arch: p.architecture }));
  const workRoot = join(dirname(opts.store.root), "tmp");
  await mkdir(workRoot, { recursive: true });
  const release = await opts.store.lease();
  try {
    const built: Array<{ platform: Platform; manifest: Descriptor; layers: BuiltLayer[]; metadata: ClusterImageMetadata }> = [];
    for (const [i, platform] of platforms.entries()) {
      const work = await mkdtemp(join(workRoot, "build-"));
      try {
        built.push({ platform, ...(await buildPlatform(opts, context, kubefiles[i]!, platform, work)) });
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    }
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

function indexOf(built: Array<{ platform: Platform; manifest: Descriptor }>): Index {
  return { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: built.map((b) => ({ ...b.manifest, platform: b.platform })) };
}

async function readKubefile(context: string, kubefile: BuildOptions["kubefile"]): Promise<{ text: string; file: string }> {
  if (kubefile && typeof kubefile === "object") return { text: kubefile.text, file: kubefile.file ?? "Kubefile" };
  const path = kubefile ? resolve(kubefile) : join(context, "Kubefile");
  try {
    return { text: await readFile(path, "utf8"), file: path };
  } catch (err) {
    throw new Error(`cannot read Kubefile ${path}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
}

class PlatformBuild {
  readonly layers: Array<{ descriptor: Descriptor; diffId: Digest; createdBy: string; cached: boolean }> = [];
  readonly history: NonNullable<ImageConfig["history"]> = [];
  /** Layers already in the image but not yet extracted into the working rootfs. */
  private pending: Digest[] = [];
  private materialised = false;
  cacheKey: string;

  constructor(
    readonly opts: BuildOptions,
    readonly rootfs: string,
    readonly platform: Platform,
    baseKey: string,
  ) {
    this.cacheKey = baseKey;
  }

  /** Brings the working rootfs up to date with every layer so far. */
  async rootfsReady(): Promise<string> {
    if (!this.materialised) {
      await mkdir(this.rootfs, { recursive: true });
      this.materialised = true;
    }
    for (const digest of this.pending) await extractLayer(this.opts.store, digest, this.rootfs);
    this.pending = [];
    return this.rootfs;
  }

  nextKey(step: string): string {
    return createHash("sha256").update(`${this.cacheKey}\n${platformString(this.platform)}\n${step}`).digest("hex");
  }

  async cached(key: string): Promise<CacheRecord | undefined> {
    if (this.opts.noCache) return undefined;
    const record = await this.opts.store.readPin<CacheRecord & { digests: Digest[] }>(`build:${key}`);
    if (!record || !(await this.opts.store.hasBlob(record.layer.digest))) return undefined;
    return record;
  }

  addLayer(key: string, layer: Descriptor, diffId: Digest, createdBy: string, cached: boolean, extracted: boolean): void {
    this.layers.push({ descriptor: layer, diffId, createdBy, cached });
    this.history.push({ created_by: createdBy });
    if (!extracted) this.pending.push(layer.digest);
    this.cacheKey = key;
  }

  /** A step that changes no file: it still moves the cache chain so later steps see it. */
  addEmpty(step: string, createdBy: string): void {
    this.cacheKey = this.nextKey(step);
    this.history.push({ created_by: createdBy, empty_layer: true });
  }
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
  const unknownApps = kubefile.from.image === "scratch" ? [] : checkBaseAppRefs(kubefile, base.metadata.applications.map((a) => a.name));
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
    const text = describe(ins);
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
    case "ADD": {
      const remote = ins.kind === "ADD" ? ins.sources.filter(isRemoteSource) : [];
      const local = ins.sources.filter((src) => !remote.includes(src));
      const sources = await resolveSources(context, local, where);
      for (const url of remote) sources.push(await downloadSource(url, join(build.rootfs, ".."), where, build.opts.signal));
      const destIsDir = await destIsDirectory(build, ins.dest);
      let entries: LayerEntry[];
      if (ins.kind === "ADD") {
        entries = [];
        for (const src of sources) {
          // Docker unpacks local archives only; a downloaded file is added as it is.
          if (!src.startsWith(join(build.rootfs, "..")) && (await isArchive(src))) entries.push(...(await archiveEntries(src, normaliseDest(ins.dest), join(build.rootfs, "..", "add"))));
          else entries.push(...(await copyEntries([src], ins.dest, destIsDir || sources.length > 1)));
        }
      } else {
        entries = await copyEntries(sources, ins.dest, destIsDir);
      }
      const flags = { ...(ins.chmod !== undefined ? { chmod: ins.chmod } : {}), ...(ins.chown !== undefined ? { chown: ins.chown } : {}) };
      return layerStep(build, `${ins.kind} ${ins.sources.join(" ")} ${ins.dest}`, withParents(applyCopyFlags(entries, flags, where)));
    }
    case "APP":
    case "CNI":
    case "CSI": {
      const app = await appEntries(context, join(build.rootfs, ".."), ins.name, ins.sources, where, build.opts.signal);
      upsertApp(meta, { name: ins.name, type: app.type, files: app.files, ...(ins.kind === "APP" ? {} : { role: ins.kind === "CNI" ? "cni" : "csi" }) });
      return layerStep(build, `${ins.kind} ${ins.name}`, withParents(app.entries));
    }
    case "RUN":
      if (ins.flags.length > 0) {
        // Build-machine isolation flags (--network, --mount, --security) have no meaning here:
        // RUN already uses the build machine's shell. Refuse rather than silently ignore.
        throw new BuildInputError(where.file, where.line, `RUN ${ins.flags.join(" ")}: RUN takes no flags in a Kubefile (it runs with the build machine's shell)`);
      }
      return runStep(build, ins.command, { ...env, ...ins.env }, where);
    case "ENV":
      Object.assign(env, ins.pairs);
      build.addEmpty(`ENV ${JSON.stringify(ins.pairs)}`, `ENV ${Object.entries(ins.pairs).map(([k, v]) => `${k}=${v}`).join(" ")}`);
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

function upsertApp(meta: ClusterImageMetadata, app: Application): void {
  const i = meta.applications.findIndex((a) => a.name === app.name);
  if (i >= 0) meta.applications[i] = app;
  else meta.applications.push(app);
}

async function layerStep(build: PlatformBuild, step: string, entries: LayerEntry[]): Promise<boolean> {
  const key = build.nextKey(`${step}\n${await entriesDigest(entries)}`);
  const hit = await build.cached(key);
  if (hit) {
    build.addLayer(key, hit.layer, hit.diffId, step, true, false);
    return true;
  }
  const written = await writeLayer(build.opts.store, entries);
  await build.opts.store.pin(`build:${key}`, { digests: [written.descriptor.digest], layer: written.descriptor, diffId: written.diffId });
  build.addLayer(key, written.descriptor, written.diffId, step, false, false);
  return false;
}

async function runStep(build: PlatformBuild, command: string | readonly string[], env: Record<string, string>, where: Where): Promise<boolean> {
  const text = typeof command === "string" ? command : JSON.stringify(command);
  const key = build.nextKey(`RUN ${text}\n${JSON.stringify(Object.entries(env).sort())}`);
  const hit = await build.cached(key);
  if (hit) {
    build.addLayer(key, hit.layer, hit.diffId, `RUN ${text}`, true, false);
    return true;
  }
  const rootfs = await build.rootfsReady();
  const before = await takeSnapshot(rootfs);
  const pf = platformString(build.platform);
  const result = await runBuildCommand(command, {
    cwd: rootfs,
    env,
    ...(build.opts.signal ? { signal: build.opts.signal } : {}),
    onOutput: (t) => build.opts.onEvent?.({ type: "output", platform: pf, text: t }),
  });
  if (result.code !== 0) {
    const tail = result.stderrTail ? `:\n${result.stderrTail}` : " (no stderr)";
    throw new BuildInputError(where.file, where.line, `RUN ${text} exited ${result.code}${tail}`);
  }
  const entries = diffSnapshots(rootfs, before, await takeSnapshot(rootfs));
  const written = await writeLayer(build.opts.store, entries);
  await build.opts.store.pin(`build:${key}`, { digests: [written.descriptor.digest], layer: written.descriptor, diffId: written.diffId });
  build.addLayer(key, written.descriptor, written.diffId, `RUN ${text}`, false, true);
  return false;
}

async function cacheContainerImages(
  build: PlatformBuild,
  opts: BuildOptions,
  pf: string,
  apps: Application[],
): Promise<{ images: string[]; cached: boolean | null }> {
  const lists = [];
  for (const f of [...(opts.imageListFiles ?? []), ...(opts.ignoredImageListFiles ?? [])]) lists.push(`${f}\n${await readFile(f, "utf8")}`);
  const key = build.nextKey(`${IMAGES_STEP}\n${JSON.stringify(lists)}`);
  const hit = opts.noCache ? undefined : await opts.store.readPin<ImagesRecord>(`build:${key}`);
  if (hit && (!hit.layer || (await opts.store.hasBlob(hit.layer.digest)))) {
    if (hit.layer && hit.diffId) build.addLayer(key, hit.layer, hit.diffId, IMAGES_STEP, true, false);
    else build.addEmpty(IMAGES_STEP, IMAGES_STEP);
    opts.onEvent?.({ type: "images", platform: pf, images: hit.containerImages, cached: true });
    return { images: hit.containerImages, cached: hit.layer ? true : null };
  }
  const rootfs = await build.rootfsReady();
  const found = await discoverImages(rootfs, {
    apps: apps.map((a) => ({ name: a.name, dir: `application/apps/${a.name}` })),
    ...(opts.imageListFiles ? { imageListFiles: opts.imageListFiles } : {}),
    ...(opts.ignoredImageListFiles ? { ignoredImageListFiles: opts.ignoredImageListFiles } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  for (const w of found.warnings) opts.onEvent?.({ type: "warning", platform: pf, text: w });
  const images = found.images.map((i) => i.image).sort();
  opts.onEvent?.({ type: "images", platform: pf, images, cached: false });
  if (images.length === 0) {
    // Nothing to cache: no layer, but remember that so a rebuild need not look again.
    await opts.store.pin(`build:${key}`, { digests: [], containerImages: [] });
    build.addEmpty(IMAGES_STEP, IMAGES_STEP);
    return { images: [], cached: null };
  }
  const before = await takeSnapshot(rootfs);
  await cacheImages(images, join(rootfs, "registry"), {
    sourceFor: opts.sourceFor,
    platform: build.platform,
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    onProgress: (e) => {
      if (e.type === "bytes") opts.onEvent?.({ type: "image-progress", platform: pf, image: e.image, bytes: e.imageBytes, done: false });
      else if (e.type === "done") opts.onEvent?.({ type: "image-progress", platform: pf, image: e.image, bytes: e.downloadedBytes, done: true });
      else if (e.type === "retry") opts.onEvent?.({ type: "image-retry", platform: pf, image: e.image, text: `${e.what}: ${e.error} (retry ${e.attempt} in ${e.delayMs} ms)` });
      else if (e.type === "warning") opts.onEvent?.({ type: "warning", platform: pf, text: `${e.image}: ${e.message}` });
    },
  });
  const entries = diffSnapshots(rootfs, before, await takeSnapshot(rootfs));
  const written = await writeLayer(opts.store, entries);
  await opts.store.pin(`build:${key}`, { digests: [written.descriptor.digest], layer: written.descriptor, diffId: written.diffId, containerImages: images });
  build.addLayer(key, written.descriptor, written.diffId, IMAGES_STEP, false, true);
  return { images, cached: false };
}

interface ImagesRecord {
  digests: Digest[];
  layer?: Descriptor;
  diffId?: Digest;
  containerImages: string[];
}

async function destIsDirectory(build: PlatformBuild, dest: string): Promise<boolean> {
  if (dest.endsWith("/") || normaliseDest(dest) === "") return true;
  // Docker's rule: an existing directory in the image is copied into.
  const rootfs = await build.rootfsReady();
  const st = await stat(join(rootfs, normaliseDest(dest))).catch(() => undefined);
  return st?.isDirectory() ?? false;
}

async function appEntries(
  context: string,
  scratch: string,
  name: string,
  sources: readonly AppSource[],
  where: Where,
  signal?: AbortSignal,
): Promise<{ entries: LayerEntry[]; type: Application["type"]; files: string[] }> {
  const local = sources.filter((s): s is { type: "local"; path: string } => s.type === "local").map((s) => s.path);
  const paths = await resolveSources(context, local, where);
  for (const s of sources) if (s.type === "remote") paths.push(await downloadSource(s.url, scratch, where, signal));
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

function withParents(entries: LayerEntry[]): LayerEntry[] {
  const have = new Set(entries.map((e) => e.path));
  const parents: LayerEntry[] = parentDirectories(have)
    .filter((d) => !have.has(d))
    .map((d) => ({ type: "directory", path: d, mode: 0o755 }));
  return [...parents, ...entries];
}

function describe(ins: Instruction): string {
  switch (ins.kind) {
    case "COPY":
    case "ADD":
      return `${ins.kind} ${ins.sources.join(" ")} ${ins.dest}`;
    case "RUN":
      return `RUN ${typeof ins.command === "string" ? ins.command : JSON.stringify(ins.command)}`;
    case "APP":
    case "CNI":
    case "CSI":
      return `${ins.kind} ${ins.name} ${ins.sources.map((s) => (s.type === "local" ? `local://${s.path}` : s.url)).join(" ")}`;
    case "ENV":
    case "LABEL":
      return `${ins.kind} ${Object.entries(ins.pairs).map(([k, v]) => `${k}=${v}`).join(" ")}`;
    case "APPENV":
      return `APPENV ${ins.app} ${Object.entries(ins.pairs).map(([k, v]) => `${k}=${v}`).join(" ")}`;
    case "APPCMDS":
      return `APPCMDS ${ins.app} ${JSON.stringify(ins.commands)}`;
    case "LAUNCH":
      return `LAUNCH ${JSON.stringify(ins.apps)}`;
    case "CMDS":
    case "CMD":
      return `${ins.kind} ${JSON.stringify(ins.commands)}`;
    case "KUBEVERSION":
      return `KUBEVERSION ${ins.version}`;
    case "MAINTAINER":
      return `MAINTAINER ${ins.maintainer}`;
    case "FROM":
      return `FROM ${ins.image}`;
    case "ARG":
      return `ARG ${ins.args.map((a) => a.name).join(" ")}`;
  }
}
