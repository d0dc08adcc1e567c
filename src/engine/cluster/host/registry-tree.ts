/**
 * The container images a cluster image carries, read straight from its layers: every layer's
 * `registry/docker/registry/v2/` entries (the distribution registry's on-disk layout, see
 * image/distribution-layout.ts) indexed in one streaming pass — link files and small JSON blobs
 * (manifests, indexes, configs) kept in memory, every other blob only located (which layer,
 * what size) — so a blob can later be streamed out of its layer without unpacking anything.
 */
import { createReadStream } from "node:fs";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";
import { isDigest, sha256, type Digest } from "../../image/digest";
import type { ImageStore } from "../../image/store";
import type { ClusterImageLayer } from "./image";

const V2 = "registry/docker/registry/v2/";
/** Blobs up to this size that start like JSON are kept: manifests, indexes and configs (4 MiB: the registry client's document cap). */
const MAX_DOCUMENT = 4 * 1024 * 1024;

export interface TreeBlob {
  /** Layer that holds the blob (the last one, when several do). */
  layer: ClusterImageLayer;
  /** The entry's name in that layer's tar. */
  entry: string;
  size: number;
  /** The content, for small JSON blobs. */
  bytes?: Buffer;
}

export interface RegistryTree {
  /** By digest. */
  blobs: Map<Digest, TreeBlob>;
  /** repository -> tag -> manifest digest. */
  tags: Map<string, Map<string, Digest>>;
  /** repository -> manifests and indexes linked there (`_manifests/revisions`). */
  revisions: Map<string, Set<Digest>>;
}

/** Indexes the registry/ tree of `layers` (later layers win, as in the rootfs they make). */
export async function readRegistryTree(store: ImageStore, layers: readonly ClusterImageLayer[], signal?: AbortSignal): Promise<RegistryTree> {
  const tree: RegistryTree = { blobs: new Map(), tags: new Map(), revisions: new Map() };
  for (const layer of layers) {
    await eachEntry(store, layer, signal, async (name, size, body) => {
      const rel = name.slice(V2.length);
      const blob = /^blobs\/sha256\/[0-9a-f]{2}\/([0-9a-f]{64})\/data$/.exec(rel);
      if (blob) {
        const digest = `sha256:${blob[1]!}` as Digest;
        const head = size <= MAX_DOCUMENT ? await readAll(body) : undefined;
        if (head === undefined) body.resume();
        tree.blobs.set(digest, { layer, entry: name, size, ...(head !== undefined && head[0] === 0x7b ? { bytes: head } : {}) });
        return;
      }
      const tag = /^repositories\/(.+)\/_manifests\/tags\/([^/]+)\/current\/link$/.exec(rel);
      const revision = /^repositories\/(.+)\/_manifests\/revisions\/sha256\/[0-9a-f]{64}\/link$/.exec(rel);
      if ((tag || revision) && size < 200) {
        const link = (await readAll(body)).toString("utf8").trim();
        if (!isDigest(link)) return;
        if (tag) mapOf(tree.tags, tag[1]!).set(tag[2]!, link);
        else setOf(tree.revisions, revision![1]!).add(link);
        return;
      }
      body.resume();
    });
  }
  return tree;
}

/**
 * A blob's bytes out of its layer, checked against its digest by the caller's consumer (the
 * registry verifies what it is sent). The returned stream fills as the layer is read.
 */
export function openTreeBlob(store: ImageStore, blob: TreeBlob, signal?: AbortSignal): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  // Stops reading the layer once the blob is out (or the caller's signal fires).
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  let sent = false;
  eachEntry(store, blob.layer, stop.signal, async (name, _size, body) => {
    if (sent || name !== blob.entry) return void body.resume();
    await copyInto(body, out);
    sent = true;
    stop.abort();
  })
    .then(
      () => {
        if (!sent) out.destroy(new Error(`${blob.entry} is not in layer ${blob.layer.digest}`));
      },
      (err: Error) => {
        if (!sent) out.destroy(err);
      },
    )
    .finally(() => signal?.removeEventListener("abort", onAbort));
  return out;
}

/** Calls `each` for every regular file under registry/docker/registry/v2/ of a layer, in tar order; `each` must consume or resume `body`. */
export async function eachEntry(
  store: ImageStore,
  layer: ClusterImageLayer,
  signal: AbortSignal | undefined,
  each: (name: string, size: number, body: Readable) => Promise<void>,
): Promise<void> {
  const extract = tar.extract();
  // tar-stream hands out the next entry once this one is read (or resumed) to its end.
  const reading = (async () => {
    for await (const entry of extract) {
      const name = entry.header.name.replace(/^\.\//, "");
      if (entry.header.type !== "file" || !name.startsWith(V2)) entry.resume();
      else await each(name, entry.header.size ?? 0, entry as unknown as Readable);
    }
  })();
  const source = createReadStream(store.blobPath(layer.digest), { highWaterMark: 1 << 20 });
  const stages: NodeJS.ReadWriteStream[] = /gzip/.test(layer.mediaType) ? [createGunzip({ chunkSize: 1 << 20 })] : [];
  const feeding = pipeline([source, ...stages, extract], signal ? { signal } : {});
  feeding.catch(() => undefined); // awaited below, after the entries
  try {
    await reading;
  } catch (err) {
    extract.destroy();
    source.destroy();
    await feeding.catch(() => undefined);
    throw err;
  }
  await feeding;
}

/** Copies a tar entry into a Node stream, waiting when it is full (a streamx entry and Node's pipeline do not mix). */
async function copyInto(body: Readable, out: PassThrough): Promise<void> {
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (out.destroyed) throw new Error("the blob's reader went away");
    if (!out.write(chunk))
      await new Promise<void>((resolve, reject) => {
        out.once("drain", resolve);
        out.once("close", () => reject(new Error("the blob's reader went away")));
      });
  }
  out.end();
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

function mapOf<K, V>(m: Map<string, Map<K, V>>, key: string): Map<K, V> {
  let v = m.get(key);
  if (!v) m.set(key, (v = new Map()));
  return v;
}

function setOf<V>(m: Map<string, Set<V>>, key: string): Set<V> {
  let v = m.get(key);
  if (!v) m.set(key, (v = new Set()));
  return v;
}

/** A kept JSON blob's content, checked against its digest (the layer's bytes came from the store, verified there; this guards the indexing). */
export function documentOf(tree: RegistryTree, digest: Digest, what: string): Buffer {
  const b = tree.blobs.get(digest)?.bytes;
  if (!b) throw new Error(`${what}: ${digest} is not in the image's registry/ (or is not a JSON document)`);
  if (sha256(b) !== digest) throw new Error(`${what}: ${digest} in the image's registry/ does not match its digest`);
  return b;
}
