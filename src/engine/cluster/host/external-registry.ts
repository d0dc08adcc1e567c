/**
 * External registry mode (`registry.external`): the cluster runs no registry of its own. The
 * image's container images are pushed from this machine into the user's registry (Harbor, a
 * cloud registry) with the engine's registry client — verified TLS with the given CA, the
 * given login — as `<namespace>/<source registry>/<path>`, the repository names the local
 * registry uses, so every host's containerd is pointed at it the same way (see
 * external-registry-clients.ts) and pods keep their original image names.
 *
 * The push is idempotent and resumes: blobs and manifests the registry has are skipped (a HEAD
 * each), a blob that another of the pushed repositories holds there is mounted, and only what
 * is missing is streamed out of the image's layers.
 */
import { createHmac } from "node:crypto";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { resolve } from "node:path";
import { sha256, type Digest } from "../../image/digest";
import { staticCredentials, type CredentialSource } from "../../image/credentials";
import { RegistryClient, RegistryError } from "../../image/registry";
import { parseManifestDocument } from "../../image/schemas";
import type { ImageStore } from "../../image/store";
import type { ExternalRegistryConfig } from "../spec";
import type { ClusterImage, ClusterImageLayer } from "./image";
import type { ExternalClientSetup } from "./external-registry-clients";
import { registryDomains } from "./registry";
import { documentOf, openTreeBlob, readRegistryTree, type RegistryTree } from "./registry-tree";

/** `domain[:port]`: the registry's name, in hosts.toml, containerd's auth table and repository URLs. */
export function externalEndpoint(ext: Pick<ExternalRegistryConfig, "domain" | "port">): string {
  return ext.port === undefined ? ext.domain : `${ext.domain}:${ext.port}`;
}

/** The repository an image of the image's registry/ gets in the external registry. */
export function externalRepository(ext: Pick<ExternalRegistryConfig, "namespace">, repository: string): string {
  return ext.namespace ? `${ext.namespace}/${repository}` : repository;
}

/**
 * What makes the hosts' configuration for the external registry differ (plan step versions):
 * its name, namespace, user and CA as written, and the password only as a keyed hash (as the
 * spec digest in the record holds it), so a rotated password reaches the hosts.
 */
export function externalRegistryVersion(ext: ExternalRegistryConfig, cluster: string): string {
  const mac = createHmac("sha256", `sealant-external-registry\0${cluster}`);
  mac.update(JSON.stringify([externalEndpoint(ext), ext.namespace ?? "", ext.username ?? "", ext.password ?? "", ext.ca ?? ""]));
  return mac.digest("hex").slice(0, 8);
}

/** The CA as PEM text: `ca` itself, or the file it names (`~/` expanded, relative to the working directory). */
export async function externalCa(ext: Pick<ExternalRegistryConfig, "ca">): Promise<string | undefined> {
  const ca = ext.ca;
  if (ca === undefined) return undefined;
  if (ca.includes("-----BEGIN")) return ca;
  const path = ca === "~" || ca.startsWith("~/") ? resolve(homedir(), ca.slice(2)) : resolve(ca);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      `registry.external.ca: cannot read "${path}": ${code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (err as Error).message}`,
    );
  }
  if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(text)) {
    throw new Error(`registry.external.ca: "${path}" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  return text;
}

/** A client of the external registry: HTTPS only, its CA trusted besides the system's, its login (or sealant login's for it). */
export async function externalClient(ext: ExternalRegistryConfig, stored: CredentialSource, opts: { timeoutMs?: number } = {}): Promise<RegistryClient> {
  const ca = await externalCa(ext);
  const credentials = ext.username !== undefined && ext.password !== undefined ? staticCredentials({ username: ext.username, password: ext.password }) : stored;
  return new RegistryClient(externalEndpoint(ext), {
    scheme: "https",
    ...(ca !== undefined ? { ca } : {}),
    credentials,
    ...(opts.timeoutMs !== undefined ? { operationTimeoutMs: opts.timeoutMs } : {}),
  });
}

export interface PushResult {
  /** Tagged images (repository:tag) in the registry now. */
  images: number;
  blobsUploaded: number;
  blobsMounted: number;
  blobsPresent: number;
  bytesUploaded: number;
  manifestsPut: number;
}

export interface PushOptions {
  store: ImageStore;
  image: ClusterImage;
  client: RegistryClient;
  ext: Pick<ExternalRegistryConfig, "namespace">;
  /** A line per thing done, for progress output (never a credential). */
  log?(line: string): void;
  signal?: AbortSignal;
}

interface Wanted {
  repo: string;
  digest: Digest;
  size: number;
}

/**
 * Pushes every tagged image of the cluster image's registry/ (all platforms' layers) into the
 * external registry: blobs first, then child manifests by digest, then each tag.
 */
export async function pushImageRegistry(o: PushOptions): Promise<PushResult> {
  const { client, signal } = o;
  const sig = signal ? { signal } : {};
  const layers = uniqueLayers(o.image);
  const tree = await readRegistryTree(o.store, layers, signal);
  const result: PushResult = { images: 0, blobsUploaded: 0, blobsMounted: 0, blobsPresent: 0, bytesUploaded: 0, manifestsPut: 0 };
  const notes: string[] = [];
  const plans = [...tree.tags].sort(([a], [b]) => a.localeCompare(b)).map(([repo, tags]) => ({ repo, tags, ...documentsOf(tree, repo, tags, notes) }));
  for (const n of notes) o.log?.(n);

  try {
    // Blobs: present ones skipped; one that another repository here already has is mounted; the rest uploaded, each once.
    const holder = new Map<Digest, string>();
    const upload: Wanted[] = [];
    for (const p of plans) {
      const target = externalRepository(o.ext, p.repo);
      for (const b of p.blobs) {
        if (await client.hasBlob(target, b.digest, signal)) {
          result.blobsPresent++;
          if (!holder.has(b.digest)) holder.set(b.digest, target);
        } else upload.push({ repo: target, digest: b.digest, size: b.size });
      }
    }
    for (const w of upload) {
      const from = holder.get(w.digest);
      const blob = tree.blobs.get(w.digest);
      if (!blob) throw new Error(`${w.digest} (${w.repo}) is listed by a manifest but missing from the image's registry/`);
      const how = await client.pushBlob(w.repo, { digest: w.digest, size: w.size }, () => openTreeBlob(o.store, blob, signal), {
        ...(from ? { mountFrom: [from] } : {}),
        ...sig,
      });
      if (how === "uploaded") {
        result.blobsUploaded++;
        result.bytesUploaded += w.size;
        o.log?.(`uploaded ${w.digest.slice(0, 19)} (${w.size} bytes) to ${w.repo}`);
      } else if (how === "mounted") result.blobsMounted++;
      else result.blobsPresent++;
      if (!holder.has(w.digest)) holder.set(w.digest, w.repo);
    }

    // Manifests: children by digest before the index naming them, then the tags.
    for (const p of plans) {
      const target = externalRepository(o.ext, p.repo);
      for (const m of p.children) {
        if (await sameManifest(client, target, m.digest, m.digest, signal)) continue;
        await client.putManifest(target, m.digest, m.bytes, m.mediaType, signal);
        result.manifestsPut++;
      }
      for (const [tag, m] of p.tagged) {
        if (!(await sameManifest(client, target, tag, m.digest, signal))) {
          await client.putManifest(target, tag, m.bytes, m.mediaType, signal);
          result.manifestsPut++;
          o.log?.(`pushed ${target}:${tag}`);
        }
        result.images++;
      }
    }
  } catch (err) {
    throw inRegistryTerms(err, client.registry);
  }
  return result;
}

interface Doc {
  digest: Digest;
  bytes: Buffer;
  mediaType: string;
}

/** What one repository needs: its blobs (configs, layers), child manifests, and tagged documents. */
function documentsOf(
  tree: RegistryTree,
  repo: string,
  tags: Map<string, Digest>,
  notes: string[],
): { blobs: { digest: Digest; size: number }[]; children: Doc[]; tagged: [string, Doc][] } {
  const blobs = new Map<Digest, number>();
  const children = new Map<Digest, Doc>();
  const doc = (digest: Digest): Doc => {
    const what = `image registry/ ${repo}@${digest}`;
    const bytes = documentOf(tree, digest, what);
    return { digest, bytes, mediaType: parseManifestDocument(bytes, what).mediaType };
  };
  const walk = (d: Doc): void => {
    const parsed = parseManifestDocument(d.bytes, `${repo}@${d.digest}`, d.mediaType);
    if (parsed.kind === "index") {
      for (const m of parsed.index.manifests) {
        // Only the platforms the image carries: an index may list more than were cached.
        if (!tree.blobs.get(m.digest)?.bytes) continue;
        const child = doc(m.digest);
        walk(child);
        children.set(child.digest, child);
      }
      return;
    }
    blobs.set(parsed.manifest.config.digest, parsed.manifest.config.size);
    for (const l of parsed.manifest.layers) blobs.set(l.digest, l.size);
  };
  const tagged: [string, Doc][] = [...tags].sort(([a], [b]) => a.localeCompare(b)).map(([tag, digest]) => [tag, carried(tree, doc(digest), notes)]);
  for (const [, d] of tagged) walk(d);
  return { blobs: [...blobs].map(([digest, size]) => ({ digest, size })), children: [...children.values()], tagged };
}

/**
 * A tagged index as a registry takes it: the image cache keeps an upstream index byte for byte
 * with only the cluster's platforms present (so the local registry serves the upstream digest),
 * but a registry refuses an index whose manifests it does not have. Such an index is pushed
 * with only the platforms carried — a new digest, which `notes` says.
 */
function carried(tree: RegistryTree, d: Doc, notes: string[]): Doc {
  const parsed = parseManifestDocument(d.bytes, d.digest, d.mediaType);
  if (parsed.kind !== "index") return d;
  const present = parsed.index.manifests.filter((m) => tree.blobs.get(m.digest)?.bytes !== undefined);
  if (present.length === parsed.index.manifests.length) return d;
  const json = JSON.parse(d.bytes.toString("utf8")) as { manifests: unknown[] };
  const keep = new Set(present.map((m) => m.digest));
  json.manifests = json.manifests.filter((m) => keep.has((m as { digest: Digest }).digest));
  const bytes = Buffer.from(JSON.stringify(json));
  const digest = sha256(bytes);
  notes.push(
    `${d.digest}: the image carries ${present.length} of its ${parsed.index.manifests.length} platforms; pushed as an index of those, ${digest} (references by the upstream digest do not resolve there)`,
  );
  return { digest, bytes, mediaType: d.mediaType };
}

/** Whether the registry already has `reference` as exactly `digest`. */
async function sameManifest(client: RegistryClient, repo: string, reference: string, digest: Digest, signal?: AbortSignal): Promise<boolean> {
  return (await client.headManifest(repo, reference, undefined, signal))?.digest === digest;
}

/** Every layer of every platform once (a layer shared by platforms is read once). */
function uniqueLayers(image: ClusterImage): ClusterImageLayer[] {
  const seen = new Map<string, ClusterImageLayer>();
  for (const p of image.platforms.values()) for (const l of p.layers) if (!seen.has(l.digest)) seen.set(l.digest, l);
  return [...seen.values()];
}

/** A refused login or push, said in the user's terms: which registry, and what to check. */
function inRegistryTerms(err: unknown, registry: string): unknown {
  if (err instanceof RegistryError && err.unauthorized) {
    const what = err.status === 401 ? "refused the login" : "refused access";
    err.message = `pushing the image's container images to ${registry}: the registry ${what} (${err.status}): check registry.external.username and password, and that the user may push there — ${err.message}`;
  }
  return err;
}

/** What every host is given for the external registry (the CA read once here). */
export async function externalClientSetup(ext: ExternalRegistryConfig, image: ClusterImage, dataRoot: string): Promise<ExternalClientSetup> {
  const ca = await externalCa(ext);
  return {
    endpoint: externalEndpoint(ext),
    namespace: ext.namespace ?? "",
    domains: registryDomains(image.metadata.containerImages.map((c) => c.image)),
    ...(ca !== undefined ? { ca } : {}),
    ...(ext.username !== undefined && ext.password !== undefined ? { username: ext.username, password: ext.password } : {}),
    dataRoot,
  };
}

/** The planner's view of the external registry: where, how many images, and the settings' version. */
export function externalRegistryPlan(ext: ExternalRegistryConfig, image: ClusterImage, cluster: string): { endpoint: string; images: number; version: string } {
  return { endpoint: externalEndpoint(ext), images: image.metadata.containerImages.length, version: externalRegistryVersion(ext, cluster) };
}
