import type { Digest } from "./digest";
import { isIndexMediaType } from "./media-types";
import { formatReference, parseReference, referenceSelector, type Reference } from "./reference";
import type { RegistryClient } from "./registry";
import type { ImageStore } from "./store";
import { platformString, type Descriptor, type Index, type Manifest, type Platform } from "./types";
import { mapLimit } from "../util/concurrency";
import { countBytes } from "../util/streams";

export type ClientFactory = (registry: string) => RegistryClient;

export type TransferEvent =
  | { type: "blob"; digest: Digest; size: number; state: "start" | "done" | "skipped" | "mounted"; bytes?: number }
  | { type: "blob-progress"; digest: Digest; bytes: number; size: number }
  | { type: "manifest"; digest: Digest; platform?: string };

export interface TransferOptions {
  clientFor: ClientFactory;
  /** Parallel blob transfers. @default 4 */
  concurrency?: number;
  /** Only this platform of a multi-platform image (default: all of them). */
  platform?: Platform;
  signal?: AbortSignal;
  onEvent?: (e: TransferEvent) => void;
}

export interface TransferResult {
  ref: string;
  digest: Digest;
  /** Bytes actually sent or received (blobs already present are not counted). */
  bytes: number;
  blobs: { transferred: number; skipped: number };
}

/**
 * Pulls an image (all platforms of an index unless one is chosen) into the store. Blobs are
 * verified while streaming and only then renamed into place; the name is set last, so an
 * interrupted pull leaves nothing that looks like an image.
 */
export async function pullImage(store: ImageStore, refText: string, opts: TransferOptions): Promise<TransferResult> {
  const release = await store.lease();
  try {
    return await pullLeased(store, refText, opts);
  } finally {
    await release();
  }
}

async function pullLeased(store: ImageStore, refText: string, opts: TransferOptions): Promise<TransferResult> {
  const ref = parseReference(refText);
  const client = opts.clientFor(ref.registry);
  const top = await client.getManifest(ref.repository, referenceSelector(ref), undefined, opts.signal);
  const manifests: Array<{ bytes: Buffer; digest: Digest }> = [{ bytes: top.bytes, digest: top.descriptor.digest }];
  let children: Descriptor[] = [];
  let topDescriptor: Descriptor = { ...top.descriptor, mediaType: top.mediaType };
  const blobs = new Map<Digest, Descriptor>();
  if (isIndexMediaType(top.mediaType)) {
    const index = JSON.parse(top.bytes.toString("utf8")) as Index;
    children = opts.platform ? index.manifests.filter((m) => m.platform && platformMatches(m.platform, opts.platform!)) : index.manifests;
    if (opts.platform && children.length === 0) {
      throw new Error(
        `${refText} has no manifest for ${platformString(opts.platform)} (available: ${index.manifests.map((m) => (m.platform ? platformString(m.platform) : "?")).join(", ")})`,
      );
    }
    for (const child of children) {
      const got = await client.getManifest(ref.repository, child.digest, undefined, opts.signal);
      manifests.push({ bytes: got.bytes, digest: got.descriptor.digest });
      collectBlobs(JSON.parse(got.bytes.toString("utf8")) as Manifest, blobs);
      opts.onEvent?.({ type: "manifest", digest: child.digest, ...(child.platform ? { platform: platformString(child.platform) } : {}) });
    }
    if (opts.platform && children.length === 1) {
      // A single platform chosen: store that platform's manifest, not a partial index.
      topDescriptor = { mediaType: children[0]!.mediaType, digest: children[0]!.digest, size: children[0]!.size };
      manifests.shift();
    }
  } else {
    collectBlobs(JSON.parse(top.bytes.toString("utf8")) as Manifest, blobs);
  }
  let bytes = 0;
  let transferred = 0;
  let skipped = 0;
  await mapLimit([...blobs.values()], opts.concurrency ?? 4, async (desc) => {
    if (await store.hasBlob(desc.digest)) {
      skipped++;
      opts.onEvent?.({ type: "blob", digest: desc.digest, size: desc.size, state: "skipped" });
      return;
    }
    opts.onEvent?.({ type: "blob", digest: desc.digest, size: desc.size, state: "start" });
    // The store hashes while writing and renames only on a match: no second hash here.
    const stream = await client.openBlob(ref.repository, desc.digest, { size: desc.size, verify: false, ...(opts.signal ? { signal: opts.signal } : {}) });
    const onEvent = opts.onEvent;
    const counted = onEvent ? countBytes(stream, (_n, seen) => onEvent({ type: "blob-progress", digest: desc.digest, bytes: seen, size: desc.size })) : stream;
    await store.putBlobStream(counted, { digest: desc.digest, size: desc.size, what: `${refText} blob ${desc.digest}` });
    bytes += desc.size;
    transferred++;
    opts.onEvent?.({ type: "blob", digest: desc.digest, size: desc.size, state: "done" });
  });
  for (const m of manifests) await store.putBlob(m.bytes, m.digest);
  const name = await store.setTag(formatReference(ref), topDescriptor);
  return { ref: name, digest: topDescriptor.digest, bytes, blobs: { transferred, skipped } };
}

/**
 * Pushes a stored image: blobs first (skipping what the registry has, mounting from other
 * repositories of the same registry when they hold it), then platform manifests by digest,
 * then the top manifest or index under the tag.
 */
export async function pushImage(
  store: ImageStore,
  localRef: string,
  opts: TransferOptions & { destination?: string; mountFrom?: string[] },
): Promise<TransferResult> {
  const image = await store.resolve(localRef);
  const dest: Reference = parseReference(opts.destination ?? image.ref);
  const client = opts.clientFor(dest.registry);
  const top = image.descriptor;
  const manifests: Descriptor[] = [];
  const blobs = new Map<Digest, Descriptor>();
  if (isIndexMediaType(top.mediaType)) {
    const index = await store.readIndexBlob(top.digest);
    for (const child of index.manifests) {
      manifests.push(child);
      collectBlobs(await store.readManifest(child.digest), blobs);
    }
  } else {
    collectBlobs(await store.readManifest(top.digest), blobs);
  }
  let bytes = 0;
  let transferred = 0;
  let skipped = 0;
  await mapLimit([...blobs.values()], opts.concurrency ?? 4, async (desc) => {
    opts.onEvent?.({ type: "blob", digest: desc.digest, size: desc.size, state: "start" });
    const result = await client.pushBlob(dest.repository, desc, () => store.openBlob(desc.digest), {
      ...(opts.mountFrom ? { mountFrom: opts.mountFrom } : {}),
      onProgress: (b) => opts.onEvent?.({ type: "blob-progress", digest: desc.digest, bytes: b, size: desc.size }),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (result === "uploaded") {
      bytes += desc.size;
      transferred++;
    } else skipped++;
    opts.onEvent?.({
      type: "blob",
      digest: desc.digest,
      size: desc.size,
      state: result === "uploaded" ? "done" : result === "mounted" ? "mounted" : "skipped",
    });
  });
  for (const m of manifests) {
    await client.putManifest(dest.repository, m.digest, await store.readBlob(m.digest), m.mediaType, opts.signal);
  }
  const topBytes = await store.readBlob(top.digest);
  await client.putManifest(dest.repository, dest.tag ?? top.digest, topBytes, top.mediaType, opts.signal);
  return { ref: formatReference({ ...dest, digest: top.digest }), digest: top.digest, bytes, blobs: { transferred, skipped } };
}

function collectBlobs(manifest: Manifest, into: Map<Digest, Descriptor>): void {
  into.set(manifest.config.digest, manifest.config);
  for (const l of manifest.layers) into.set(l.digest, l);
}

function platformMatches(have: Platform, want: Platform): boolean {
  return have.os === want.os && have.architecture === want.architecture && (!want.variant || have.variant === want.variant);
}
