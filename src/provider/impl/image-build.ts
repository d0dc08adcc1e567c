/**
 * The `ImageBuild` dynamic provider's implementation: plain functions over the engine, loaded
 * with `require("sealant/provider/impl/image-build")` by the thin provider object (which is
 * serialised into Pulumi state and so may capture nothing). No Pulumi import here.
 *
 * Deleting an ImageBuild removes nothing: built images are a cache that other stacks, other
 * resources or the user may share (same tag, same layers), and a pushed image belongs to its
 * registry. `sealant rmi` / `sealant prune` (store gc) clean up explicitly.
 */
import { createHash, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, readFile, readlink, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { buildImage, type BuildEvent, type BuildOptions } from "../../engine/build";
import { resolveClusterImage } from "../../engine/cluster/image";
import { formatKubefileError, parseKubefile } from "../../engine/build/kubefile";
import { formatReference, parseReference, referenceSelector } from "../../engine/image/reference";
import { ImageNotFoundError } from "../../engine/image/store";
import { pullImage, pushImage } from "../../engine/image/transfer";
import { hostPlatform, parsePlatform, platformString, type Platform } from "../../engine/image/types";
import {
  authOf,
  checkReference,
  checkRegistryAuth,
  describeValue,
  logger,
  normalisedRef,
  openRegistries,
  plain,
  sameJson,
  type Failure,
  type ProviderHooks,
  type Registries,
  type RegistryAuth,
} from "./cluster-image";
import { containsUnknown, isUnknown, UNKNOWN } from "./unknown";

export interface ImageBuildInputs {
  /** The build context directory (relative paths: to the Pulumi program's directory). */
  context: string;
  /** A path relative to the context (default: Kubefile), or the Kubefile's text. */
  kubefile?: string | { text: string };
  /** The local name, e.g. registry.example.com/team/etcd:3.4 */
  tag: string;
  buildArgs?: Record<string, string>;
  /** e.g. ["linux/amd64", "linux/arm64"]; default: this machine's. */
  platforms?: string[];
  /** Push after building: true pushes to `tag`, a reference pushes there. */
  push?: boolean | string;
  /** Credentials for the push registry (or `registry`): FROM pulls and the push use them. */
  registryAuth?: RegistryAuth;
  /** Build every layer afresh. Not part of the diff: it says how to build, not what. */
  noCache?: boolean;
  /** Computed by check: the hash of the whole context, the Kubefile, the build args and platforms. */
  contextHash?: string;
}

export interface ImageBuildLayer {
  platform: string;
  digest: string;
  size: number;
  createdBy: string;
}

export interface ImageBuildOutputs extends ImageBuildInputs {
  buildArgs: Record<string, string>;
  platforms: string[];
  contextHash: string;
  /** The normalised local reference, e.g. docker.io/library/etcd:3.4 */
  ref: string;
  digest: string;
  /** `ref@digest` (in the local store). */
  repoDigest: string;
  /** `pushed-ref@digest`, when pushed. */
  pushedRepoDigest?: string;
  labels: Record<string, string>;
  kind: string;
  runtime?: string;
  runtimeVersion?: string;
  containerImages: string[];
  layers: ImageBuildLayer[];
}

/** The properties whose change is a rebuild. */
const DIFF_KEYS = ["contextHash", "tag", "buildArgs", "platforms", "push"] as const;

// ------------------------------------------------------------------ check

/**
 * Validates the inputs (each failure names its property) and adds `contextHash`. Values not
 * known yet (preview) are neither validated nor read: the hash is then unknown too.
 */
export async function check(_olds: Record<string, unknown>, news: Record<string, unknown>): Promise<{ inputs: Record<string, unknown>; failures: Failure[] }> {
  const failures: Failure[] = [];
  const inputs: Record<string, unknown> = { ...news };
  delete inputs["contextHash"];

  checkReference(news["tag"], "tag", failures, { allowDigest: false, required: true });
  const push = news["push"];
  if (push !== undefined && push !== null && typeof push !== "boolean" && !isUnknown(push)) {
    if (typeof push === "string") checkReference(push, "push", failures, { allowDigest: false, required: true });
    else failures.push({ property: "push", reason: `expected true (push to the tag) or a reference to push to, got ${describeValue(push)}` });
  }
  checkRegistryAuth(news["registryAuth"], failures);
  const noCache = news["noCache"];
  if (noCache !== undefined && noCache !== null && typeof noCache !== "boolean" && !isUnknown(noCache)) failures.push({ property: "noCache", reason: `expected true or false, got ${describeValue(noCache)}` });

  const hashFailures: Failure[] = [];
  const buildArgs = checkBuildArgs(news["buildArgs"], hashFailures);
  const platforms = checkPlatforms(news["platforms"], hashFailures);
  const context = await checkContext(news["context"], hashFailures);
  const kubefile = context === undefined || containsUnknown(news["kubefile"]) ? undefined : await checkKubefile(context, news["kubefile"], hashFailures);
  failures.push(...hashFailures);
  const unknown = ["context", "kubefile", "buildArgs", "platforms"].some((k) => containsUnknown(news[k]));
  if (unknown) {
    inputs["contextHash"] = UNKNOWN;
  } else if (hashFailures.length === 0 && context !== undefined && kubefile !== undefined && buildArgs && platforms) {
    for (const p of platforms.length > 0 ? platforms : [hostPlatform()]) {
      const parsed = parseKubefile(kubefile.text, { file: kubefile.file, buildArgs, arch: p.architecture });
      if (!parsed.ok) {
        failures.push({ property: "kubefile", reason: `${kubefile.file} is invalid:\n${parsed.errors.map((e) => `  ${formatKubefileError(e)}`).join("\n")}` });
        break;
      }
    }
    inputs["contextHash"] = await hashContext(context, kubefile.text, buildArgs, platforms);
  }
  return { inputs, failures };
}

async function checkContext(value: unknown, failures: Failure[]): Promise<string | undefined> {
  if (isUnknown(value)) return undefined;
  if (typeof value !== "string" || value === "") {
    failures.push({ property: "context", reason: `the build context directory is required (a path), got ${describeValue(value)}` });
    return undefined;
  }
  const dir = resolve(value);
  const st = await stat(dir).catch(() => undefined);
  if (!st) failures.push({ property: "context", reason: `the build context ${dir} does not exist` });
  else if (!st.isDirectory()) failures.push({ property: "context", reason: `the build context ${dir} is not a directory` });
  else return dir;
  return undefined;
}

/** The Kubefile's text and the name its errors use; undefined (with a failure) when it cannot be had. */
async function checkKubefile(context: string, value: unknown, failures: Failure[]): Promise<{ text: string; file: string } | undefined> {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const text = (value as Record<string, unknown>)["text"];
    const extra = Object.keys(value).filter((k) => k !== "text");
    if (typeof text !== "string" || extra.length > 0) {
      failures.push({ property: "kubefile", reason: `expected a path relative to the context or { text: "..." }${extra.length ? ` (unknown: ${extra.join(", ")})` : ""}` });
      return undefined;
    }
    return { text, file: "Kubefile (inline)" };
  }
  if (value !== undefined && value !== null && (typeof value !== "string" || value === "")) {
    failures.push({ property: "kubefile", reason: `expected a path relative to the context or { text: "..." }, got ${describeValue(value)}` });
    return undefined;
  }
  const path = resolve(context, (value as string | undefined) ?? "Kubefile");
  try {
    return { text: await readFile(path, "utf8"), file: path };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    failures.push({ property: "kubefile", reason: `cannot read the Kubefile ${path}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : (err as Error).message}` });
    return undefined;
  }
}

function checkBuildArgs(value: unknown, failures: Failure[]): Record<string, string> | undefined {
  if (value === undefined || value === null) return {};
  if (isUnknown(value)) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) {
    failures.push({ property: "buildArgs", reason: `expected a map of NAME to string value, got ${describeValue(value)}` });
    return undefined;
  }
  const out: Record<string, string> = {};
  let ok = true;
  for (const [k, v] of Object.entries(value)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) {
      failures.push({ property: `buildArgs.${k}`, reason: "a build argument name is letters, digits and _, not starting with a digit" });
      ok = false;
    }
    if (isUnknown(v)) continue;
    if (typeof v !== "string") {
      failures.push({ property: `buildArgs.${k}`, reason: `expected a string, got ${describeValue(v)}` });
      ok = false;
    } else out[k] = v;
  }
  return ok ? out : undefined;
}

function checkPlatforms(value: unknown, failures: Failure[]): Platform[] | undefined {
  if (value === undefined || value === null) return [];
  if (isUnknown(value)) return undefined;
  if (!Array.isArray(value)) {
    failures.push({ property: "platforms", reason: `expected a list such as ["linux/amd64", "linux/arm64"], got ${describeValue(value)}` });
    return undefined;
  }
  const out: Platform[] = [];
  const seen = new Set<string>();
  let ok = true;
  for (const [i, p] of value.entries()) {
    if (isUnknown(p)) continue;
    try {
      if (typeof p !== "string") throw new Error(`expected os/arch such as linux/amd64, got ${describeValue(p)}`);
      const parsed = parsePlatform(p);
      const key = platformString(parsed);
      if (seen.has(key)) throw new Error(`${key} is listed twice`);
      seen.add(key);
      out.push(parsed);
    } catch (err) {
      failures.push({ property: `platforms[${i}]`, reason: (err as Error).message });
      ok = false;
    }
  }
  return ok ? out : undefined;
}

/**
 * sha256 over every entry of the context (path, type, permission bits, and the content of
 * files or the target of symlinks; directories walked in byte order, symlinks not followed),
 * then the Kubefile text, the build args and the platforms: editing, adding, removing,
 * renaming or chmod-ing any file changes it. Owners and times do not count.
 */
export async function hashContext(context: string, kubefile: string, buildArgs: Record<string, string>, platforms: Platform[]): Promise<string> {
  const h = createHash("sha256");
  const record = (r: unknown[]): void => void h.update(`${JSON.stringify(r)}\n`);
  record(["sealant-context", 1]);
  const walk = async (dir: string, rel: string): Promise<void> => {
    const names = (await readdir(dir)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) {
      const abs = join(dir, name);
      const path = rel === "" ? name : `${rel}/${name}`;
      const st = await lstat(abs);
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        record(["dir", path, mode]);
        await walk(abs, path);
      } else if (st.isFile()) {
        record(["file", path, mode, st.size, await fileHash(abs)]);
      } else if (st.isSymbolicLink()) {
        record(["symlink", path, await readlink(abs)]);
      } else {
        record(["other", path, mode]);
      }
    }
  };
  await walk(context, "");
  record(["kubefile", kubefile]);
  record(["buildArgs", Object.entries(buildArgs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
  record(["platforms", platforms.map(platformString)]);
  return `sha256:${h.digest("hex")}`;
}

async function fileHash(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

// ------------------------------------------------------------------ diff

/**
 * A changed context (any file, the Kubefile), tag, build args, platforms or push target is an
 * update: a rebuild that reuses cached layers, then the push. Nothing forces a replacement (a
 * new tag is a rebuild under the new name; the old name stays in the store). Credentials and
 * noCache are not part of the image. Unknown values (preview) count as changes.
 */
export async function diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }> {
  const changed = DIFF_KEYS.filter((k) => containsUnknown(news[k]) || !sameJson(normalised(k, olds), normalised(k, news)));
  return { changes: changed.length > 0, replaces: [], deleteBeforeReplace: false };
}

function normalised(key: (typeof DIFF_KEYS)[number], props: Record<string, unknown>): unknown {
  const v = props[key];
  switch (key) {
    case "tag":
      return normalisedRef(v);
    case "push":
      return v === undefined || v === null || v === false ? null : v === true ? normalisedRef(props["tag"]) : normalisedRef(v);
    case "buildArgs":
      return v && typeof v === "object" ? Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : [];
    case "platforms":
      return Array.isArray(v)
        ? v.map((p) => {
            try {
              return platformString(parsePlatform(String(p)));
            } catch {
              return p;
            }
          })
        : [];
    default:
      return v ?? null;
  }
}

// ------------------------------------------------------------------ create / update

export async function create(inputs: Record<string, unknown>, hooks?: ProviderHooks): Promise<{ id: string; outs: ImageBuildOutputs }> {
  return { id: randomUUID(), outs: await buildAndPush(inputs, hooks) };
}

export async function update(_id: string, _olds: Record<string, unknown>, news: Record<string, unknown>, hooks?: ProviderHooks): Promise<{ outs: ImageBuildOutputs }> {
  return { outs: await buildAndPush(news, hooks) };
}

function pushTarget(inputs: Record<string, unknown>): string | undefined {
  const push = inputs["push"];
  if (push === true) return inputs["tag"] as string;
  return typeof push === "string" && push !== "" ? push : undefined;
}

async function buildAndPush(inputs: Record<string, unknown>, hooks?: ProviderHooks): Promise<ImageBuildOutputs> {
  const tag = inputs["tag"] as string;
  const log = logger(hooks, `ImageBuild ${tag}`);
  const target = pushTarget(inputs);
  const auth = authOf(inputs["registryAuth"]);
  const regs = await openRegistries(auth, parseReference(target ?? tag).registry);
  try {
    const context = resolve(inputs["context"] as string);
    const kf = inputs["kubefile"];
    const kubefile: BuildOptions["kubefile"] =
      kf && typeof kf === "object" ? { text: String((kf as Record<string, unknown>)["text"]), file: "Kubefile (inline)" } : resolve(context, typeof kf === "string" && kf !== "" ? kf : "Kubefile");
    const platforms = ((inputs["platforms"] as string[] | undefined) ?? []).map(parsePlatform);
    const multi = platforms.length > 1;
    const result = await buildImage({
      store: regs.session.store,
      context,
      kubefile,
      tag,
      buildArgs: (inputs["buildArgs"] as Record<string, string> | undefined) ?? {},
      ...(platforms.length > 0 ? { platforms } : {}),
      noCache: inputs["noCache"] === true,
      sourceFor: regs.sourceFor,
      resolveBase: (ref) => resolveBase(regs, ref),
      onEvent: (e) => logEvent(e, multi, log),
    });
    log(`built ${result.ref} ${result.digest}`);
    let pushed: string | undefined;
    if (target) {
      log(`pushing to ${formatReference(parseReference(target))}`);
      const r = await pushImage(regs.session.store, result.ref, { clientFor: regs.clientFor, destination: target });
      log(`pushed ${r.ref}: ${r.blobs.transferred} blob(s) sent, ${r.blobs.skipped} already there`);
      pushed = r.ref;
    }
    // The metadata as a Cluster will read it (runtime from labels included).
    const meta = (await resolveClusterImage(regs.session, `${result.ref}@${result.digest}`)).metadata;
    return plain({
      context: inputs["context"] as string,
      ...(kf !== undefined && kf !== null ? { kubefile: kf as ImageBuildInputs["kubefile"] } : {}),
      tag,
      buildArgs: (inputs["buildArgs"] as Record<string, string> | undefined) ?? {},
      platforms: (inputs["platforms"] as string[] | undefined) ?? [],
      ...(inputs["push"] !== undefined && inputs["push"] !== null ? { push: inputs["push"] as boolean | string } : {}),
      ...(auth ? { registryAuth: auth } : {}),
      ...(typeof inputs["noCache"] === "boolean" ? { noCache: inputs["noCache"] } : {}),
      contextHash: String(inputs["contextHash"] ?? ""),
      ref: result.ref,
      digest: result.digest,
      repoDigest: `${result.ref}@${result.digest}`,
      ...(pushed ? { pushedRepoDigest: pushed } : {}),
      labels: meta.labels,
      kind: meta.kind,
      ...(meta.runtime?.type ? { runtime: meta.runtime.type } : {}),
      ...(meta.runtime?.version ? { runtimeVersion: meta.runtime.version } : {}),
      containerImages: [...new Set(meta.containerImages.map((c) => c.image))].sort(),
      layers: result.platforms.flatMap((p) => p.layers.map((l) => ({ platform: p.platform, digest: l.digest, size: l.size, createdBy: l.createdBy }))),
    });
  } finally {
    regs.close();
  }
}

/** As the engine's build(): a FROM image missing from the store is pulled (with the resource's credentials). */
async function resolveBase(regs: Registries, ref: string) {
  try {
    return (await regs.session.store.resolve(ref)).descriptor;
  } catch (err) {
    if (!(err instanceof ImageNotFoundError)) throw err;
  }
  const pulled = await pullImage(regs.session.store, ref, { clientFor: regs.clientFor });
  return (await regs.session.store.resolve(pulled.ref)).descriptor;
}

function logEvent(e: BuildEvent, multi: boolean, log: (line: string) => void): void {
  const pf = multi ? `${e.platform} ` : "";
  if (e.type === "step") log(`${pf}[${e.index}/${e.total}] ${e.text}${e.cached === true ? " (cached)" : ""}`);
  else if (e.type === "warning") log(`${pf}warning: ${e.text}`);
  else if (e.type === "images" && e.images.length > 0) log(`${pf}${e.images.length} container image(s)${e.cached ? " (cached)" : ""}`);
  else if (e.type === "image-retry") log(`${pf}${e.image}: ${e.text}`);
}

// ------------------------------------------------------------------ read / delete

/**
 * Refresh: the image still exists when the local store's tag still names the built digest, or
 * (when pushed) the registry's tag does. Otherwise it is gone (empty id), and the next
 * `pulumi up` builds it again. A registry that cannot be asked is an error, not "gone".
 */
export async function read(id: string, props: Record<string, unknown> | undefined): Promise<{ id: string; props: Record<string, unknown> }> {
  if (!props || typeof props["ref"] !== "string" || typeof props["digest"] !== "string") return { id: "", props: {} };
  const pushed = typeof props["pushedRepoDigest"] === "string" ? props["pushedRepoDigest"] : undefined;
  const regs = await openRegistries(authOf(props["registryAuth"]), parseReference(pushed ?? props["ref"]).registry);
  try {
    const local = await regs.session.store.resolve(props["ref"]).catch((err: Error) => {
      if (err instanceof ImageNotFoundError) return undefined;
      throw err;
    });
    if (local && local.descriptor.digest === props["digest"] && (await regs.session.store.hasBlob(local.descriptor.digest))) return { id, props };
    if (pushed) {
      const ref = parseReference(pushed);
      let remote;
      try {
        // By tag when pushed under one: a tag pushed over since is what "gone" means here.
        remote = await regs.clientFor(ref.registry).headManifest(ref.repository, ref.tag ?? referenceSelector(ref));
      } catch (err) {
        throw new Error(`ImageBuild ${String(props["tag"])}: cannot check the pushed image ${pushed}: ${(err as Error).message}`, { cause: err });
      }
      if (remote?.digest === props["digest"]) return { id, props };
    }
    return { id: "", props: {} };
  } finally {
    regs.close();
  }
}

/** Removes nothing (see the module comment): images are a shared cache. */
export async function del(_id: string, _props: Record<string, unknown>): Promise<void> {}
export { del as delete };
