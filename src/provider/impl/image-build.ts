/**
 * The `ImageBuild` dynamic provider's implementation: plain functions over the engine, loaded
 * with `require("sealant/provider/impl/image-build")` by the thin provider object (which is
 * serialised into Pulumi state and so may capture nothing). No Pulumi import here.
 *
 * The work is the engine's: engine/build reads and hashes the context and builds (pulling a
 * FROM image with the resource's credentials, which the session holds), engine/image pushes
 * and reads the result. This validates and maps.
 *
 * Deleting an ImageBuild removes nothing: built images are a cache that other stacks, other
 * resources or the user may share (same tag, same layers), and a pushed image belongs to its
 * registry. `sealant rmi` / `sealant prune` (store gc) clean up explicitly.
 */
import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import {
  build,
  buildPlatforms,
  contextDir,
  hashContext,
  KubefileSyntaxError,
  parseKubefiles,
  readKubefile,
  type BuildEvent,
  type KubefileSource,
} from "../../engine/build";
import { readImage, storeReader } from "../../engine/image/read-image";
import { formatReference, parseReference } from "../../engine/image/reference";
import { registryDigest, storedDigest } from "../../engine/image/resolve";
import { pushImage } from "../../engine/image/transfer";
import { parsePlatform, platformString } from "../../engine/image/types";
import {
  authOf,
  failuresOf,
  logger,
  normalisedRef,
  openSession,
  plain,
  registryOf,
  sameJson,
  type Failure,
  type ProviderHooks,
  type RegistryAuth,
} from "./inputs";
import { imageBuildInputs } from "./image-build-inputs";
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
/** The inputs the context hash is made of. */
const HASHED = ["context", "kubefile", "buildArgs", "platforms"] as const;

// ------------------------------------------------------------------ check

/**
 * Validates the inputs (each failure names its property), then reads the context and the
 * Kubefile and adds `contextHash`. Values not known yet (preview) are neither validated nor
 * read: the hash is then unknown too.
 */
export async function check(_olds: Record<string, unknown>, news: Record<string, unknown>): Promise<{ inputs: Record<string, unknown>; failures: Failure[] }> {
  const inputs: Record<string, unknown> = { ...news };
  delete inputs["contextHash"];
  const parsed = imageBuildInputs.safeParse(inputs);
  const failures = parsed.success ? [] : failuresOf(parsed.error.issues);
  const bad = (key: string): boolean => failures.some((f) => f.property === key || f.property.startsWith(`${key}.`) || f.property.startsWith(`${key}[`));

  let context: string | undefined;
  if (!bad("context") && !isUnknown(news["context"])) {
    context = await contextDir(news["context"] as string).catch((err: Error) => void failures.push({ property: "context", reason: err.message }));
  }
  let kubefile: { text: string; file: string } | undefined;
  if (context !== undefined && !bad("kubefile") && !containsUnknown(news["kubefile"])) {
    kubefile = await readKubefile(context, kubefileSource(context, news["kubefile"])).catch(
      (err: Error) => void failures.push({ property: "kubefile", reason: err.message }),
    );
  }
  if (HASHED.some((k) => containsUnknown(news[k]))) {
    inputs["contextHash"] = UNKNOWN;
  } else if (context !== undefined && kubefile !== undefined && !HASHED.some(bad)) {
    const buildArgs = (news["buildArgs"] as Record<string, string> | null | undefined) ?? {};
    const platforms = ((news["platforms"] as string[] | null | undefined) ?? []).map(parsePlatform);
    try {
      parseKubefiles(kubefile, buildArgs, buildPlatforms(platforms));
    } catch (err) {
      if (!(err instanceof KubefileSyntaxError)) throw err;
      failures.push({ property: "kubefile", reason: err.message });
    }
    inputs["contextHash"] = await hashContext(context, kubefile.text, buildArgs, platforms);
  }
  return { inputs, failures };
}

/** The Kubefile input as the engine reads it: a path relative to the context, or inline text. */
function kubefileSource(context: string, value: unknown): KubefileSource {
  if (value && typeof value === "object") return { text: String((value as Record<string, unknown>)["text"]), file: "Kubefile (inline)" };
  return resolve(context, typeof value === "string" && value !== "" ? value : "Kubefile");
}

// ------------------------------------------------------------------ diff

/**
 * A changed context (any file, the Kubefile), tag, build args, platforms or push target is an
 * update: a rebuild that reuses cached layers, then the push. Nothing forces a replacement (a
 * new tag is a rebuild under the new name; the old name stays in the store). Credentials and
 * noCache are not part of the image. Unknown values (preview) count as changes.
 */
export async function diff(
  _id: string,
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }> {
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

export async function update(
  _id: string,
  _olds: Record<string, unknown>,
  news: Record<string, unknown>,
  hooks?: ProviderHooks,
): Promise<{ outs: ImageBuildOutputs }> {
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
  // FROM pulls and the push use the resource's credentials: the session holds them.
  const session = await openSession(auth, registryOf(target ?? tag));
  try {
    const context = resolve(inputs["context"] as string);
    const kf = inputs["kubefile"];
    const platforms = ((inputs["platforms"] as string[] | undefined) ?? []).map(parsePlatform);
    const buildArgs = (inputs["buildArgs"] as Record<string, string> | undefined) ?? {};
    const result = await build(session, {
      context,
      kubefile: kubefileSource(context, kf),
      tag,
      buildArgs,
      ...(platforms.length > 0 ? { platforms } : {}),
      noCache: inputs["noCache"] === true,
      onEvent: (e) => logEvent(e, platforms.length > 1, log),
    });
    log(`built ${result.ref} ${result.digest}`);
    let pushed: string | undefined;
    if (target) {
      log(`pushing to ${formatReference(parseReference(target))}`);
      const r = await pushImage(session.store, result.ref, { clientFor: session.clientFor, destination: target });
      log(`pushed ${r.ref}: ${r.blobs.transferred} blob(s) sent, ${r.blobs.skipped} already there`);
      pushed = r.ref;
    }
    // The metadata as a Cluster will read it (runtime from labels included).
    const meta = (await readImage(storeReader(session.store), result.descriptor)).parts[0]!.metadata;
    return plain({
      context: inputs["context"] as string,
      ...(kf !== undefined && kf !== null ? { kubefile: kf as ImageBuildInputs["kubefile"] } : {}),
      tag,
      buildArgs,
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
    session.close();
  }
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
  const session = await openSession(authOf(props["registryAuth"]), parseReference(pushed ?? props["ref"]).registry);
  try {
    if ((await storedDigest(session.store, props["ref"])) === props["digest"]) return { id, props };
    if (pushed) {
      let remote;
      try {
        // By tag when pushed under one: a tag pushed over since is what "gone" means here.
        remote = await registryDigest(session.clientFor, pushed);
      } catch (err) {
        throw new Error(`ImageBuild ${String(props["tag"])}: cannot check the pushed image ${pushed}: ${(err as Error).message}`, { cause: err });
      }
      if (remote === props["digest"]) return { id, props };
    }
    return { id: "", props: {} };
  } finally {
    session.close();
  }
}

/** Removes nothing (see the module comment): images are a shared cache. */
export async function del(_id: string, _props: Record<string, unknown>): Promise<void> {}
export { del as delete };
