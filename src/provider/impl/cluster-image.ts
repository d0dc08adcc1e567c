/**
 * The `ClusterImage` dynamic provider's implementation: plain functions over the engine, loaded
 * with `require("sealant/provider/impl/cluster-image")` by the thin provider object (which is
 * serialised into Pulumi state and so may capture nothing). No Pulumi import here.
 *
 * Also holds what the ImageBuild implementation shares with it: registry auth validation and
 * a session whose clients use the resource's registry credentials.
 */
import { randomUUID } from "node:crypto";
import { resolveClusterImage } from "../../engine/cluster/image";
import { registryKey, type Credentials } from "../../engine/image/credentials";
import type { Digest } from "../../engine/image/digest";
import { isIndexMediaType } from "../../engine/image/media-types";
import { readMetadata, type ClusterImageMetadata } from "../../engine/image/metadata";
import { formatReference, parseReference, referenceSelector, withDigest, type Reference } from "../../engine/image/reference";
import { RegistryClient } from "../../engine/image/registry";
import type { ImageSource } from "../../engine/image/source";
import { pullImage } from "../../engine/image/transfer";
import { platformString, type Descriptor, type ImageConfig, type Index, type Manifest } from "../../engine/image/types";
import { Session } from "../../engine/session";
import { containsUnknown, isUnknown } from "./unknown";

// ------------------------------------------------------------------ shared with image-build

/** One validation failure, as Pulumi's CheckFailure. */
export interface Failure {
  property: string;
  reason: string;
}

/** Credentials for one registry. `registry` defaults to the registry of the image concerned. */
export interface RegistryAuth {
  registry?: string;
  username: string;
  password: string;
}

/** What every provider method may be given besides its Pulumi arguments (tests pass a quiet log). */
export interface ProviderHooks {
  /** Progress lines. Default: stderr, which `pulumi up` shows while the step runs. */
  log?: (line: string) => void;
}

export function logger(hooks: ProviderHooks | undefined, prefix: string): (line: string) => void {
  const log = hooks?.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  return (line) => log(`${prefix}: ${line}`);
}

/** A copy that is plain JSON (no undefined, no class instances): what `outs` must be. */
export function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return `"${value}"`;
  return `${typeof value} ${String(value)}`;
}

/** Validates an optional registryAuth input (unknown parts are accepted); never echoes the password. */
export function checkRegistryAuth(value: unknown, failures: Failure[], property = "registryAuth"): void {
  if (value === undefined || value === null || isUnknown(value)) return;
  if (typeof value !== "object" || Array.isArray(value)) {
    failures.push({ property, reason: `expected { registry?, username, password }, got ${Array.isArray(value) ? "a list" : typeof value}` });
    return;
  }
  const auth = value as Record<string, unknown>;
  for (const key of Object.keys(auth)) {
    if (!["registry", "username", "password"].includes(key)) failures.push({ property: `${property}.${key}`, reason: `unknown property (allowed: registry, username, password)` });
  }
  if (auth["registry"] !== undefined && !isUnknown(auth["registry"])) {
    if (typeof auth["registry"] !== "string" || registryKey(auth["registry"]) === "") {
      failures.push({ property: `${property}.registry`, reason: `expected a registry host[:port] such as "registry.example.com:5000", got ${describeValue(auth["registry"])}` });
    }
  }
  if (!isUnknown(auth["username"])) {
    if (typeof auth["username"] !== "string" || auth["username"] === "") failures.push({ property: `${property}.username`, reason: "a non-empty string is required" });
    else if (auth["username"].includes(":")) failures.push({ property: `${property}.username`, reason: 'must not contain ":"' });
  }
  if (!isUnknown(auth["password"]) && (typeof auth["password"] !== "string" || auth["password"] === "")) {
    failures.push({ property: `${property}.password`, reason: "a non-empty string is required (the value is not shown: it is a secret)" });
  }
}

/** Validates an image reference input; returns it parsed, or undefined (with a failure) when invalid. */
export function checkReference(value: unknown, property: string, failures: Failure[], opts: { allowDigest: boolean; required: boolean }): Reference | undefined {
  if (isUnknown(value)) return undefined;
  if (value === undefined || value === null || value === "") {
    if (opts.required) failures.push({ property, reason: "an image reference is required, e.g. registry.example.com/team/app:1.0" });
    return undefined;
  }
  if (typeof value !== "string") {
    failures.push({ property, reason: `expected an image reference string, got ${describeValue(value)}` });
    return undefined;
  }
  try {
    const ref = parseReference(value);
    if (ref.digest && !opts.allowDigest) {
      failures.push({ property, reason: `"${value}" has a digest; a tag is needed here (e.g. registry.example.com/team/app:1.0)` });
      return undefined;
    }
    return ref;
  } catch (err) {
    failures.push({ property, reason: (err as Error).message });
    return undefined;
  }
}

/** `registry/repo:tag` normalised, or the text as is when it does not parse (so a diff still sees it). */
export function normalisedRef(value: unknown): unknown {
  if (typeof value !== "string" || isUnknown(value)) return value;
  try {
    return formatReference(parseReference(value));
  } catch {
    return value;
  }
}

export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * A session ($SEALANT_HOME, SEALANT_REGISTRY_MIRRORS) whose registry clients use `auth` for its
 * registry and the user's stored credentials (sealant login, docker config) elsewhere. The
 * password is only held in memory: it is never written to the credential store.
 */
export interface Registries {
  session: Session;
  clientFor: (registry: string) => RegistryClient;
  sourceFor: (registry: string) => ImageSource;
  close(): void;
}

export async function openRegistries(auth: RegistryAuth | undefined, defaultRegistry: string): Promise<Registries> {
  const session = await Session.open();
  if (!auth) return { session, clientFor: session.clientFor, sourceFor: session.sourceFor, close: () => session.close() };
  const key = registryKey(auth.registry ?? defaultRegistry);
  const credentials: Credentials = { username: auth.username, password: auth.password };
  const own = new Map<string, RegistryClient>();
  const clientFor = (source: string): RegistryClient => {
    if (registryKey(source) !== key) return session.clientFor(source);
    const registry = session.mirrors[source] ?? source;
    let client = own.get(registry);
    if (!client) {
      client = new RegistryClient(registry, { credentials: { get: async () => credentials } });
      own.set(registry, client);
    }
    return client;
  };
  const sourceFor = (registry: string): ImageSource => {
    const client = clientFor(registry);
    return {
      getManifest: (repo, ref) => client.getManifest(repo, ref),
      openBlob: (repo, digest, o) => client.openBlob(repo, digest, { ...(o?.size !== undefined ? { size: o.size } : {}), ...(o?.verify !== undefined ? { verify: o.verify } : {}) }),
    };
  };
  return {
    session,
    clientFor,
    sourceFor,
    close: () => {
      for (const c of own.values()) c.close();
      session.close();
    },
  };
}

/** The registryAuth input as the engine wants it, or undefined. */
export function authOf(value: unknown): RegistryAuth | undefined {
  if (!value || typeof value !== "object") return undefined;
  const a = value as Record<string, unknown>;
  if (typeof a["username"] !== "string" || typeof a["password"] !== "string") return undefined;
  return { ...(typeof a["registry"] === "string" ? { registry: a["registry"] } : {}), username: a["username"], password: a["password"] };
}

/** Whether the store holds an image with this digest (under any name). */
async function storedName(session: Session, digest: Digest): Promise<string | undefined> {
  const hit = (await session.store.list()).find((i) => i.descriptor.digest === digest);
  if (!hit || !(await session.store.hasBlob(digest))) return undefined;
  return hit.ref;
}

// ------------------------------------------------------------------ ClusterImage

export interface ClusterImageInputs {
  /** Any image reference: `registry/repo:tag`, `repo@sha256:...`, `registry/repo:tag@sha256:...`. */
  ref: string;
  registryAuth?: RegistryAuth;
  /** Pull into the local store when missing there. @default true */
  pull?: boolean;
}

export interface ClusterImageOutputs extends ClusterImageInputs {
  pull: boolean;
  /** The digest the reference resolves to (an index for a multi-platform image). */
  digest: string;
  /** `registry/repo:tag@digest`: what a Cluster should be given, so a moved tag changes nothing behind its back. */
  repoDigest: string;
  labels: Record<string, string>;
  /** kube-installer or app-installer. */
  kind: string;
  /** The runtime the image declares (e.g. kubernetes, hooks), when it declares one. */
  runtime?: string;
  runtimeVersion?: string;
  /** The container images cached inside. */
  containerImages: string[];
  /** e.g. ["linux/amd64", "linux/arm64"]. */
  platforms: string[];
  /** Where the digest was resolved: the image's registry, or the local store (registry without it, or unreachable). */
  source: "registry" | "store";
}

interface Resolved {
  digest: Digest;
  repoDigest: string;
  metadata: ClusterImageMetadata;
  labels: Record<string, string>;
  platforms: string[];
  source: "registry" | "store";
}

export async function check(_olds: Record<string, unknown>, news: Record<string, unknown>): Promise<{ inputs: Record<string, unknown>; failures: Failure[] }> {
  const failures: Failure[] = [];
  checkReference(news["ref"], "ref", failures, { allowDigest: true, required: true });
  checkRegistryAuth(news["registryAuth"], failures);
  const pull = news["pull"];
  if (pull !== undefined && pull !== null && !isUnknown(pull) && typeof pull !== "boolean") failures.push({ property: "pull", reason: `expected true or false, got ${describeValue(pull)}` });
  return { inputs: news, failures };
}

/** A new reference (any spelling that normalises differently) or turning pull on is an update; credentials are not part of the image. */
export async function diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }> {
  const changed: string[] = [];
  if (containsUnknown(news["ref"]) || !sameJson(normalisedRef(olds["ref"]), normalisedRef(news["ref"]))) changed.push("ref");
  if (containsUnknown(news["pull"]) || (news["pull"] ?? true) !== (olds["pull"] ?? true)) changed.push("pull");
  return { changes: changed.length > 0, replaces: [], deleteBeforeReplace: false };
}

export async function create(inputs: Record<string, unknown>, hooks?: ProviderHooks): Promise<{ id: string; outs: ClusterImageOutputs }> {
  return { id: randomUUID(), outs: await resolveOuts(inputs, true, hooks) };
}

export async function update(_id: string, _olds: Record<string, unknown>, news: Record<string, unknown>, hooks?: ProviderHooks): Promise<{ outs: ClusterImageOutputs }> {
  return { outs: await resolveOuts(news, true, hooks) };
}

/**
 * Refresh: re-resolves the reference, never pulling. A tag moved in the registry (or, for an
 * image only in the local store, there) comes back with the new digest; an image found
 * nowhere is gone (empty id). A registry that cannot be asked, for an image not in the local
 * store, is an error rather than "gone".
 */
export async function read(id: string, props: Record<string, unknown> | undefined, hooks?: ProviderHooks): Promise<{ id: string; props: Record<string, unknown> }> {
  if (!props || typeof props["ref"] !== "string") return { id: "", props: {} };
  const regs = await openRegistries(authOf(props["registryAuth"]), registryOf(props["ref"]));
  try {
    const resolved = await resolveImage(regs, props["ref"], { pull: false }, logger(hooks, `ClusterImage ${props["ref"]}`));
    if (!resolved) return { id: "", props: {} };
    return { id, props: { ...outsOf(props, resolved) } };
  } finally {
    regs.close();
  }
}

/** Nothing to delete: a reference is not owned by the stack; what was pulled stays in the local store (a cache). */
export async function del(_id: string, _props: Record<string, unknown>): Promise<void> {}
export { del as delete };

async function resolveOuts(inputs: Record<string, unknown>, allowPull: boolean, hooks?: ProviderHooks): Promise<ClusterImageOutputs> {
  const ref = inputs["ref"] as string;
  const pull = allowPull && inputs["pull"] !== false;
  const regs = await openRegistries(authOf(inputs["registryAuth"]), registryOf(ref));
  try {
    const resolved = await resolveImage(regs, ref, { pull }, logger(hooks, `ClusterImage ${ref}`));
    if (!resolved) throw new Error(`ClusterImage ${ref}: not found in its registry nor in the local store (${regs.session.home})`);
    return outsOf(inputs, resolved);
  } finally {
    regs.close();
  }
}

function registryOf(ref: unknown): string {
  try {
    return parseReference(String(ref)).registry;
  } catch {
    return "docker.io";
  }
}

function outsOf(inputs: Record<string, unknown>, r: Resolved): ClusterImageOutputs {
  const auth = authOf(inputs["registryAuth"]);
  return plain({
    ref: inputs["ref"] as string,
    ...(auth ? { registryAuth: auth } : {}),
    pull: inputs["pull"] !== false,
    digest: r.digest,
    repoDigest: r.repoDigest,
    labels: r.labels,
    kind: r.metadata.kind,
    ...(r.metadata.runtime?.type ? { runtime: r.metadata.runtime.type } : {}),
    ...(r.metadata.runtime?.version ? { runtimeVersion: r.metadata.runtime.version } : {}),
    containerImages: [...new Set(r.metadata.containerImages.map((c) => c.image))].sort(),
    platforms: r.platforms,
    source: r.source,
  });
}

/**
 * Resolves a reference: a digest-pinned image already in the store needs no registry; else the
 * registry says what the tag points at (pulling it when asked and missing locally); an image
 * its registry does not have, or cannot be asked about, is looked up in the local store.
 * Undefined: found nowhere.
 */
export async function resolveImage(regs: Registries, refText: string, opts: { pull: boolean }, log: (line: string) => void): Promise<Resolved | undefined> {
  const ref = parseReference(refText);
  const { session } = regs;
  if (ref.digest && (await storedName(session, ref.digest))) return fromStore(session, ref, ref.digest, "store");
  let remote: Descriptor | undefined;
  let remoteError: Error | undefined;
  try {
    remote = await regs.clientFor(ref.registry).headManifest(ref.repository, referenceSelector(ref));
  } catch (err) {
    remoteError = err as Error;
  }
  if (remote) {
    if (await storedName(session, remote.digest)) return fromStore(session, ref, remote.digest, "registry");
    if (!opts.pull) return fromRegistry(regs, ref, remote);
    log(`pulling ${formatReference(ref)}`);
    const pulled = await pullImage(session.store, formatReference(ref), { clientFor: regs.clientFor });
    log(`pulled ${pulled.ref} ${pulled.digest}: ${pulled.blobs.transferred} blob(s) fetched, ${pulled.blobs.skipped} already present`);
    return fromStore(session, ref, pulled.digest, "registry");
  }
  let stored;
  try {
    stored = await session.store.resolve(formatReference(ref));
  } catch {
    if (remoteError) throw new Error(`image ${refText} is not in the local store (${session.home}) and its registry could not be asked: ${remoteError.message}`, { cause: remoteError });
    return undefined;
  }
  if (remoteError) log(`registry ${ref.registry} could not be asked (${remoteError.message}); using the local store's ${stored.ref}`);
  return fromStore(session, ref, stored.descriptor.digest, "store");
}

async function fromStore(session: Session, ref: Reference, digest: Digest, source: Resolved["source"]): Promise<Resolved> {
  const pinned = formatReference(withDigest(ref, digest));
  const image = await resolveClusterImage(session, pinned);
  const first = [...image.platforms.values()][0];
  return {
    digest: image.digest,
    repoDigest: pinned,
    metadata: image.metadata,
    labels: { ...(first?.config.config?.Labels ?? {}), ...image.metadata.labels },
    platforms: [...image.platforms.values()].map((p) => platformString(p.platform)).sort(),
    source,
  };
}

/** The metadata straight from the registry (manifests and configs only, no layers): refresh never pulls. */
async function fromRegistry(regs: Registries, ref: Reference, top: Descriptor): Promise<Resolved> {
  const client = regs.clientFor(ref.registry);
  const got = await client.getManifest(ref.repository, top.digest);
  const entries: Array<{ digest: Digest; platform?: string }> = [];
  if (isIndexMediaType(got.mediaType)) {
    const index = JSON.parse(got.bytes.toString("utf8")) as Index;
    for (const m of index.manifests) entries.push({ digest: m.digest, ...(m.platform ? { platform: platformString(m.platform) } : {}) });
  } else {
    entries.push({ digest: got.descriptor.digest });
  }
  let metadata: ClusterImageMetadata | undefined;
  let labels: Record<string, string> = {};
  const platforms: string[] = [];
  for (const e of entries) {
    const manifest = e.digest === got.descriptor.digest ? (JSON.parse(got.bytes.toString("utf8")) as Manifest) : (JSON.parse((await client.getManifest(ref.repository, e.digest)).bytes.toString("utf8")) as Manifest);
    const config = JSON.parse((await client.getBlob(ref.repository, manifest.config.digest, { size: manifest.config.size })).toString("utf8")) as ImageConfig;
    platforms.push(e.platform ?? platformString({ os: config.os ?? "linux", architecture: config.architecture ?? "amd64", ...(config.variant ? { variant: config.variant } : {}) }));
    if (!metadata) {
      metadata = readMetadata(manifest, config);
      labels = { ...(config.config?.Labels ?? {}), ...metadata.labels };
    }
  }
  if (!metadata) throw new Error(`image ${formatReference(ref)} has no manifests`);
  return { digest: got.descriptor.digest, repoDigest: formatReference(withDigest(ref, got.descriptor.digest)), metadata, labels, platforms: platforms.sort(), source: "registry" };
}
