import type { Digest } from "./digest";
import { MediaType, isIndexMediaType } from "./media-types";
import { formatReference, parseReference, referenceSelector, type Reference } from "./reference";
import type { RegistryClient } from "./registry";
import { checkDocumentSize, parseImageConfig, parseIndex, parseManifest, parseManifestDocument } from "./schemas";
import type { ImageStore } from "./store";
import { platformString, type Descriptor, type Manifest, type Platform } from "./types";
import { abortError } from "../util/abort";
import { mapLimit } from "../util/concurrency";
import { countBytes } from "../util/streams";
import { startHashingWorkers } from "../util/worker-hash";

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
  /** Overall deadline of the whole pull or push in ms (0: none). @default the registry client's operationTimeoutMs (1 h) */
  timeoutMs?: number;
  onEvent?: (e: TransferEvent) => void;
}

/** A pull or push that did not finish within its deadline. */
export class TransferTimeoutError extends Error {
  constructor(
    readonly operation: "pull" | "push",
    readonly ref: string,
    readonly timeoutMs: number,
  ) {
    super(`${operation} ${ref}: not finished within ${formatDuration(timeoutMs)} (the deadline of one ${operation})`);
    this.name = "TransferTimeoutError";
  }
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
  const ref = parseReference(refText);
  const client = opts.clientFor(ref.registry);
  return withDeadline("pull", formatReference(ref), opts.timeoutMs ?? client.operationTimeoutMs, opts.signal, async (signal) => {
    const release = await store.lease();
    try {
      return await pullLeased(store, ref, client, { ...opts, signal });
    } finally {
      await release();
    }
  });
}

/**
 * Runs one pull or push under its deadline: on failure the error names the operation and the
 * reference once (`pull 127.0.0.1:5000/app:1: ...`); a passed deadline is a TransferTimeoutError.
 */
async function withDeadline<T>(
  operation: "pull" | "push",
  ref: string,
  timeoutMs: number,
  outer: AbortSignal | undefined,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const deadline = new AbortController();
  const timer = timeoutMs > 0 ? setTimeout(() => deadline.abort(new TransferTimeoutError(operation, ref, timeoutMs)), timeoutMs) : undefined;
  const signal = outer ? AbortSignal.any([outer, deadline.signal]) : deadline.signal;
  try {
    return await run(signal);
  } catch (err) {
    if (deadline.signal.aborted && !outer?.aborted) throw abortError(deadline.signal);
    if (outer?.aborted || !(err instanceof Error) || err.message.startsWith(`${operation} ${ref}: `)) throw err;
    throw new TransferError(`${operation} ${ref}: ${err.message}`, err);
  } finally {
    clearTimeout(timer);
  }
}

/** A failed pull or push: the message names the operation and reference; `cause` is the original error (its class kept for callers). */
export class TransferError extends Error {
  constructor(message: string, cause: Error) {
    super(message, { cause });
    this.name = "TransferError";
  }
}

async function pullLeased(store: ImageStore, ref: Reference, client: RegistryClient, opts: TransferOptions & { signal: AbortSignal }): Promise<TransferResult> {
  const refText = formatReference(ref);
  // Large blobs are hashed and written on worker threads; their start-up (0.1-0.3 s each on a busy
  // machine) overlaps the manifest's round trips instead of holding up the first blobs' data.
  startHashingWorkers();
  const top = await client.getManifest(ref.repository, referenceSelector(ref), undefined, opts.signal);
  const manifests: Array<{ bytes: Buffer; digest: Digest }> = [{ bytes: top.bytes, digest: top.descriptor.digest }];
  let children: Descriptor[] = [];
  let topDescriptor: Descriptor = { ...top.descriptor, mediaType: top.mediaType };
  const blobs = new Map<Digest, Descriptor>();
  const topDoc = parseManifestDocument(top.bytes, `manifest ${refText}`, top.mediaType);
  if (topDoc.kind === "index") {
    const index = topDoc.index;
    if (index.manifests.length === 0) throw new Error(`manifest ${refText}: manifests: an index that lists no image`);
    children = opts.platform ? index.manifests.filter((m) => m.platform && platformMatches(m.platform, opts.platform!)) : index.manifests;
    if (opts.platform && children.length === 0) {
      throw new Error(
        `${refText} has no manifest for ${platformString(opts.platform)} (available: ${index.manifests.map((m) => (m.platform ? platformString(m.platform) : "?")).join(", ")})`,
      );
    }
    for (const child of children) {
      const what = `manifest ${child.digest} of ${refText}`;
      checkDocumentSize(child.size, what);
      const got = await client.getManifest(ref.repository, child.digest, undefined, opts.signal);
      if (got.bytes.length !== child.size) throw new Error(`${what}: the index says ${child.size} bytes, the registry sent ${got.bytes.length}`);
      manifests.push({ bytes: got.bytes, digest: got.descriptor.digest });
      collectBlobs(parseManifest(got.bytes, what, child.mediaType), blobs);
      opts.onEvent?.({ type: "manifest", digest: child.digest, ...(child.platform ? { platform: platformString(child.platform) } : {}) });
    }
    if (opts.platform && children.length === 1) {
      // A single platform chosen: store that platform's manifest, not a partial index.
      topDescriptor = { mediaType: children[0]!.mediaType, digest: children[0]!.digest, size: children[0]!.size };
      manifests.shift();
    }
  } else {
    collectBlobs(topDoc.manifest, blobs);
  }
  let bytes = 0;
  let transferred = 0;
  let skipped = 0;
  // The first failed blob stops the others at once instead of letting them run to their end.
  const failed = new AbortController();
  const signal = AbortSignal.any([opts.signal, failed.signal]);
  await mapLimit(largestFirst(blobs.values()), opts.concurrency ?? 4, async (desc) => {
    try {
      const stored = await store.blobSize(desc.digest);
      if (stored !== undefined) {
        // A stored blob is verified content: a descriptor giving another size is wrong, and an
        // image naming it must not be recorded as if it were complete.
        if (stored !== desc.size) throw new Error(`blob ${desc.digest}: the manifest says ${desc.size} bytes, the stored blob with that digest has ${stored}`);
        skipped++;
        opts.onEvent?.({ type: "blob", digest: desc.digest, size: desc.size, state: "skipped" });
        return;
      }
      opts.onEvent?.({ type: "blob", digest: desc.digest, size: desc.size, state: "start" });
      const onEvent = opts.onEvent;
      // The store hashes while writing and renames only on a match: no second hash here. A
      // connection that breaks off is fetched again from the start (fetchBlob).
      await client.fetchBlob(ref.repository, desc.digest, { size: desc.size, verify: false, signal }, async (stream) => {
        const counted = onEvent
          ? countBytes(stream, (_n, seen) => onEvent({ type: "blob-progress", digest: desc.digest, bytes: seen, size: desc.size }))
          : stream;
        await store.putBlobStream(counted, { digest: desc.digest, size: desc.size, what: `blob ${desc.digest}` });
      });
      bytes += desc.size;
      transferred++;
      opts.onEvent?.({ type: "blob", digest: desc.digest, size: desc.size, state: "done" });
    } catch (err) {
      failed.abort(err);
      throw err;
    }
  });
  // The configs are stored now; an image whose config is not one must not get a name.
  for (const desc of blobs.values()) {
    if (desc.mediaType === MediaType.ociConfig || desc.mediaType === MediaType.dockerConfig) {
      parseImageConfig(await store.readBlob(desc.digest), `config ${desc.digest}`);
    }
  }
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
  const destText = formatReference(dest);
  return withDeadline("push", destText, opts.timeoutMs ?? client.operationTimeoutMs, opts.signal, (signal) =>
    pushStored(store, image.descriptor, dest, client, { ...opts, signal }),
  );
}

async function pushStored(
  store: ImageStore,
  top: Descriptor,
  dest: Reference,
  client: RegistryClient,
  opts: TransferOptions & { signal: AbortSignal; mountFrom?: string[] },
): Promise<TransferResult> {
  const manifests: Descriptor[] = [];
  const blobs = new Map<Digest, Descriptor>();
  const stored = async (desc: Descriptor, what: string): Promise<Buffer> => {
    checkDocumentSize(desc.size, what);
    return store.readBlob(desc.digest);
  };
  if (isIndexMediaType(top.mediaType)) {
    const index = parseIndex(await stored(top, `stored index ${top.digest}`), `stored index ${top.digest}`, top.mediaType);
    for (const child of index.manifests) {
      manifests.push(child);
      const what = `stored manifest ${child.digest}`;
      collectBlobs(parseManifest(await stored(child, what), what, child.mediaType), blobs);
    }
  } else {
    const what = `stored manifest ${top.digest}`;
    collectBlobs(parseManifest(await stored(top, what), what, top.mediaType), blobs);
  }
  let bytes = 0;
  let transferred = 0;
  let skipped = 0;
  const failed = new AbortController();
  const signal = AbortSignal.any([opts.signal, failed.signal]);
  await mapLimit([...blobs.values()], opts.concurrency ?? 4, async (desc) => {
    try {
      const size = await store.blobSize(desc.digest);
      if (size === undefined) throw new Error(`blob ${desc.digest} is missing from the local store`);
      if (size !== desc.size) throw new Error(`blob ${desc.digest}: the manifest says ${desc.size} bytes, the stored blob has ${size}`);
      opts.onEvent?.({ type: "blob", digest: desc.digest, size: desc.size, state: "start" });
      const result = await client.pushBlob(dest.repository, desc, () => store.openBlob(desc.digest), {
        ...(opts.mountFrom ? { mountFrom: opts.mountFrom } : {}),
        onProgress: (b) => opts.onEvent?.({ type: "blob-progress", digest: desc.digest, bytes: b, size: desc.size }),
        signal,
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
    } catch (err) {
      failed.abort(err);
      throw err;
    }
  });
  for (const m of manifests) {
    await client.putManifest(dest.repository, m.digest, await store.readBlob(m.digest), m.mediaType, opts.signal);
  }
  const topBytes = await store.readBlob(top.digest);
  await client.putManifest(dest.repository, dest.tag ?? top.digest, topBytes, top.mediaType, opts.signal);
  return { ref: formatReference({ ...dest, digest: top.digest }), digest: top.digest, bytes, blobs: { transferred, skipped } };
}

function collectBlobs(manifest: Manifest, into: Map<Digest, Descriptor>): void {
  // Whoever uses the image reads its config into memory: refuse an oversized one up front.
  checkDocumentSize(manifest.config.size, `config ${manifest.config.digest}`);
  for (const d of [manifest.config, ...manifest.layers]) {
    // One digest is one content: two sizes for it mean one descriptor lies.
    const seen = into.get(d.digest);
    if (seen && seen.size !== d.size) throw new Error(`blob ${d.digest} is described as ${seen.size} bytes and as ${d.size}`);
    into.set(d.digest, d);
  }
}

/**
 * The largest blobs first: the longest transfers decide when a pull ends, so they start at once
 * instead of after small ones that happen to come first in the manifest (the config always does).
 */
function largestFirst(blobs: Iterable<Descriptor>): Descriptor[] {
  return [...blobs].sort((a, b) => b.size - a.size);
}

function platformMatches(have: Platform, want: Platform): boolean {
  return have.os === want.os && have.architecture === want.architecture && (!want.variant || have.variant === want.variant);
}

/** 90 s, 5 min, 1 h 30 min */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h${s % 3600 >= 60 ? ` ${Math.round((s % 3600) / 60)} min` : ""}`;
}
