/**
 * OCI archives: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) packed
 * in one tar file — the format of `skopeo copy ... oci-archive:x.tar[:NAME]`, and how cluster
 * images travel to offline sites.
 *
 * Naming. `saveArchive` names every image in index.json by its fully qualified reference in
 * `org.opencontainers.image.ref.name` (e.g. `docker.io/library/app:1.0`; also in
 * `io.containerd.image.name`, which `ctr import` reads). skopeo selects an image of an OCI
 * archive by exact match of that annotation, so:
 *
 *     skopeo copy oci-archive:x.tar:docker.io/library/app:1.0 docker://registry.local/app:1.0
 *     skopeo inspect oci-archive:x.tar:docker.io/library/app:1.0
 *
 * (skopeo splits `oci-archive:PATH:NAME` at the first colon after the path, so the name may
 * itself contain colons; it must be written in full — `app:1.0` does not match). With a
 * single image in the archive `oci-archive:x.tar` alone selects it; with several, skopeo
 * refuses to guess and the name is required. `tar -xOf x.tar index.json` lists the names.
 *
 * `loadArchive` names what it loads by these rules, first match wins:
 *   1. `names[archiveName]` or `names[digest]` — an explicit mapping;
 *   2. `tag` — the archive must hold exactly one image, which is stored under this reference
 *      whatever the archive calls it (`sealant load --tag`);
 *   3. an archive name that is a reference (has a `/`, `:` or `@`: `docker.io/library/app:1.0`,
 *      `quay.io/x/y:2`, `app:1.0`) is normalised and kept (`app:1.0` → docker.io/library/app:1.0);
 *   4. a bare tag (`1.0`, what `skopeo copy ... oci-archive:x.tar:1.0` writes) has no
 *      repository: `io.containerd.image.name` is used when present (docker save writes it),
 *      else `repository` + `:` + tag, else the load fails asking for `--repository`/`--tag`;
 *   5. no name at all (`oci-archive:x.tar` without a name) likewise needs `tag` or `names`.
 * sealant never invents a repository: a guessed name would silently collide or mislead.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { PassThrough, Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pipeline as pipelineCb } from "node:stream";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";
import { DigestMismatchError, isDigest, parseDigest, type Digest } from "./digest";
import { isIndexMediaType, isManifestMediaType, MediaType } from "./media-types";
import { formatReference, parseReference } from "./reference";
import { REF_NAME_ANNOTATION, type ImageStore } from "./store";
import type { Descriptor, Index, Manifest } from "./types";
import { writeStreamAtomic } from "../util/fs";

/** Read by containerd (`ctr import`) and written by `docker save`: the full image name. */
export const CONTAINERD_IMAGE_NAME_ANNOTATION = "io.containerd.image.name";

/** index.json (and any manifest or nested index) larger than this is rejected. */
export const DEFAULT_MAX_INDEX_BYTES = 16 * 1024 * 1024;
const MAX_OCI_LAYOUT_BYTES = 64 * 1024;
const MAX_NESTING = 8;
const OCI_LAYOUT = JSON.stringify({ imageLayoutVersion: "1.0.0" });
/** Fixed entry time so the same images always give a byte-identical archive. */
const ENTRY_MTIME = new Date(0);
const BLOB_PATH = /^blobs\/sha256\/([a-f0-9]{64})$/;

type EntryHeader = Partial<tar.Header> & Pick<tar.Header, "name">;
/** One entry of the tar being read (tar-stream does not export the type). */
type TarEntry = tar.Extract extends AsyncIterable<infer S> ? S : never;

export interface ArchiveProgress {
  /** Blob bytes written (save) or stored (load) so far. */
  bytes: number;
  /** Blobs completed so far. */
  blobs: number;
  /** Known when saving. */
  totalBytes?: number;
  totalBlobs?: number;
  /** The blob being transferred. */
  current?: Digest;
}

export interface SaveArchiveOptions {
  onProgress?: (p: ArchiveProgress) => void;
  signal?: AbortSignal;
}

export interface SavedImage {
  /** The fully qualified reference written to the archive's ref.name annotation. */
  ref: string;
  descriptor: Descriptor;
}

export interface SaveArchiveResult {
  images: SavedImage[];
  /** Distinct blobs written (shared blobs once). */
  blobs: number;
  /** Sum of the blob sizes written. */
  bytes: number;
}

export interface LoadArchiveOptions {
  /**
   * Store the archive's only image under this reference, whatever name the archive gives it
   * (`sealant load --tag`). An error when the archive holds several images: use `names`.
   */
  tag?: string;
  /**
   * Repository for images the archive names by a bare tag (skopeo's `oci-archive:x.tar:1.0`):
   * `app` + `1.0` → docker.io/library/app:1.0. Must not carry a tag or digest itself.
   */
  repository?: string;
  /** Explicit names: key is the archive's ref.name (or the image digest), value the reference to store it under. */
  names?: Record<string, string>;
  /** How to call the archive in errors when `input` is a stream (default "archive stream"). */
  label?: string;
  /** Cap for index.json and for every manifest/index blob that is parsed. Default 16 MiB. */
  maxIndexBytes?: number;
  onProgress?: (p: ArchiveProgress) => void;
  signal?: AbortSignal;
}

export interface LoadedImage {
  /** The fully qualified reference the image is now stored under. */
  ref: string;
  digest: Digest;
  mediaType: string;
  size: number;
  /** The image's ref.name in the archive, if it had one. */
  archiveName?: string;
}

/** A rejected or unreadable archive; names the archive and, when known, the offending entry. */
export class ArchiveError extends Error {
  constructor(
    readonly archive: string,
    readonly entry: string | undefined,
    readonly reason: string,
  ) {
    super(entry === undefined ? `archive ${archive}: ${reason}` : `archive ${archive}: entry "${entry}": ${reason}`);
    this.name = "ArchiveError";
  }
}

// ---------------------------------------------------------------------------------------
// save

/**
 * Writes the images named by `refs` (any spelling the store resolves: `app:1.0`, a full
 * reference, a digest) as one OCI archive. Blobs are streamed from the store one at a time
 * and re-verified on the way (a corrupt local blob is never shipped); a blob shared by
 * several images is written once. When `out` is a path the archive is written to a temp name
 * beside it and renamed only when complete, so `out` is either absent/its old content or a
 * whole archive. When `out` is a stream it is ended on success and destroyed on failure.
 */
export async function saveArchive(
  store: ImageStore,
  refs: string[],
  out: string | Writable,
  opts: SaveArchiveOptions = {},
): Promise<SaveArchiveResult> {
  const target = typeof out === "string" ? out : "output stream";
  if (refs.length === 0) throw new Error(`saving archive ${target}: no images given`);
  opts.signal?.throwIfAborted();

  // Everything is resolved and checked before a byte is written.
  const images: SavedImage[] = [];
  const seenRefs = new Set<string>();
  const blobs = new Map<Digest, Descriptor>();
  for (const ref of refs) {
    const found = await store.resolve(ref);
    const name = archiveName(found.ref);
    if (seenRefs.has(name)) continue;
    seenRefs.add(name);
    images.push({ ref: name, descriptor: found.descriptor });
    let reachable: Descriptor[];
    try {
      reachable = await store.reachable(found.descriptor);
    } catch (err) {
      throw new Error(`saving ${name}: reading its manifests: ${(err as Error).message}`);
    }
    for (const d of reachable) {
      const digest = parseDigest(d.digest, `digest in image ${name}`);
      const known = blobs.get(digest);
      if (known && known.size !== d.size) {
        throw new Error(`saving ${name}: blob ${digest} is described with sizes ${known.size} and ${d.size}`);
      }
      if (known) continue;
      const size = await store.blobSize(digest);
      if (size === undefined) throw new Error(`saving ${name}: blob ${digest} is missing from the local store`);
      if (size !== d.size) {
        throw new Error(`saving ${name}: blob ${digest} is ${size} bytes in the local store, but its descriptor says ${d.size}`);
      }
      blobs.set(digest, d);
    }
  }

  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: images.map(({ ref, descriptor }) => ({
      ...descriptor,
      annotations: { ...descriptor.annotations, [REF_NAME_ANNOTATION]: ref, [CONTAINERD_IMAGE_NAME_ANNOTATION]: ref },
    })),
  };
  const totalBytes = [...blobs.values()].reduce((n, d) => n + d.size, 0);
  const progress: ArchiveProgress = { bytes: 0, blobs: 0, totalBytes, totalBlobs: blobs.size };

  const pack = tar.pack();
  pack.on("error", () => undefined); // reported through the output pipeline and `producer`
  const producer = (async () => {
    await writeEntry(pack, { name: "oci-layout", type: "file", mode: 0o644, mtime: ENTRY_MTIME }, Buffer.from(OCI_LAYOUT));
    await writeEntry(pack, { name: "index.json", type: "file", mode: 0o644, mtime: ENTRY_MTIME }, Buffer.from(JSON.stringify(index)));
    await writeEntry(pack, { name: "blobs/", type: "directory", mode: 0o755, mtime: ENTRY_MTIME });
    await writeEntry(pack, { name: "blobs/sha256/", type: "directory", mode: 0o755, mtime: ENTRY_MTIME });
    for (const [digest, desc] of blobs) {
      opts.signal?.throwIfAborted();
      progress.current = digest;
      const hash = createHash("sha256");
      let written = 0;
      await writeEntry(
        pack,
        { name: `blobs/sha256/${digest.slice("sha256:".length)}`, type: "file", size: desc.size, mode: 0o644, mtime: ENTRY_MTIME },
        store.openBlob(digest),
        (chunk) => {
          hash.update(chunk);
          written += chunk.length;
          progress.bytes += chunk.length;
          opts.onProgress?.({ ...progress });
        },
        () => {
          const actual = `sha256:${hash.digest("hex")}`;
          if (actual !== digest || written !== desc.size) {
            throw new Error(`blob ${digest} in the local store is corrupt (content hashes to ${actual}, ${written} bytes); run: sealant gc, then pull the image again`);
          }
        },
      );
      progress.blobs++;
      opts.onProgress?.({ ...progress });
    }
  })().then(
    () => pack.finalize(),
    (err: unknown) => pack.destroy(asError(err)),
  );
  const onAbort = (): void => pack.destroy(asError(opts.signal?.reason ?? new Error("aborted")));
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  // A Node stream over the tar stream: errors on either side tear down both.
  const source = Readable.from(pack as unknown as AsyncIterable<Buffer>, { objectMode: false });
  try {
    if (typeof out === "string") await writeStreamAtomic(out, source);
    else await pipeline(source, out);
  } catch (err) {
    pack.destroy(asError(err));
    await producer;
    throw new Error(`saving archive ${target}: ${(err as Error).message}`, { cause: err });
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
  await producer;
  return { images, blobs: blobs.size, bytes: totalBytes };
}

/** The name written to ref.name: `repo:tag@digest` (a pinned spelling) is saved as `repo:tag`. */
function archiveName(ref: string): string {
  const parsed = parseReference(ref);
  if (parsed.digest === undefined || parsed.tag === undefined) return ref;
  return formatReference({ registry: parsed.registry, repository: parsed.repository, tag: parsed.tag });
}

/**
 * Adds one entry to the pack and resolves when the pack has taken all of it, honouring
 * backpressure; rejects if the pack is destroyed meanwhile.
 */
async function writeEntry(
  pack: tar.Pack,
  header: EntryHeader,
  body?: Buffer | AsyncIterable<Buffer>,
  onChunk?: (chunk: Buffer) => void,
  beforeEnd?: () => void,
): Promise<void> {
  if (Buffer.isBuffer(body)) header.size = body.length;
  let settle!: (err?: Error | null) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  const sink = pack.entry(header, (err) => settle(err));
  sink.on("error", () => undefined); // reported through `done`
  done.catch(() => undefined); // observed below; never unhandled
  if (header.type === "directory") return done;
  try {
    if (Buffer.isBuffer(body)) {
      sink.write(body);
    } else if (body) {
      for await (const chunk of body) {
        onChunk?.(chunk);
        if (!sink.write(chunk)) await Promise.race([drained(sink), done]);
      }
    }
    beforeEnd?.();
  } catch (err) {
    sink.destroy(asError(err));
    await done.catch(() => undefined);
    throw err;
  }
  sink.end(undefined);
  return done;
}

/** Resolves on 'drain' or 'close' of a (streamx or Node) writable. */
function drained(w: { once(ev: string, fn: () => void): unknown; removeListener(ev: string, fn: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      w.removeListener("drain", done);
      w.removeListener("close", done);
      resolve();
    };
    w.once("drain", done);
    w.once("close", done);
  });
}

// ---------------------------------------------------------------------------------------
// load

interface EntryRecord {
  /** sha256 of the entry's content: duplicates must match it. */
  content: Digest;
}

interface LoadState {
  label: string;
  entries: Map<string, EntryRecord>;
  /** Blobs that came in this archive, verified against their names and now in the store. */
  blobs: Map<Digest, number>;
  indexJson?: Buffer;
  layoutSeen: boolean;
  progress: ArchiveProgress;
}

/**
 * Reads an OCI archive (plain or gzip-compressed tar; from sealant, skopeo or docker save) in
 * one pass and stores its images. Each blob is streamed into the store and verified against
 * its `blobs/sha256/<hex>` name; index.json may come before or after the blobs. Only when the
 * whole tar has been read, every blob that index.json reaches (through nested indexes and
 * manifests to configs and layers) is present with the right size, and every image has a
 * name (see the naming rules at the top of this file) are the names set. A rejected archive
 * leaves no new name in the store — at most unreferenced blobs that `gc` removes.
 *
 * Rejected: entries with `..` components, absolute paths or backslashes; links, devices and
 * fifos; names under blobs/ that aren't blobs/sha256/<64 hex>; content not matching its
 * digest; a path repeated with different content; a missing or unknown oci-layout; a missing,
 * malformed or oversize index.json; references to blobs the archive lacks.
 */
export async function loadArchive(store: ImageStore, input: string | Readable, opts: LoadArchiveOptions = {}): Promise<LoadedImage[]> {
  // Blobs land before the names: a lease keeps a concurrent gc away from them meanwhile.
  const release = await store.lease();
  try {
    return await loadLeased(store, input, opts);
  } finally {
    await release();
  }
}

async function loadLeased(store: ImageStore, input: string | Readable, opts: LoadArchiveOptions): Promise<LoadedImage[]> {
  const label = typeof input === "string" ? input : opts.label ?? "archive stream";
  const maxIndexBytes = opts.maxIndexBytes ?? DEFAULT_MAX_INDEX_BYTES;
  opts.signal?.throwIfAborted();
  if (opts.repository !== undefined) checkRepositoryOption(opts.repository);

  const source = typeof input === "string" ? createReadStream(input) : input;
  const extract = tar.extract();
  const feeding = feed(source, extract, label);
  const onAbort = (): void => extract.destroy(asError(opts.signal?.reason ?? new Error("aborted")));
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  const state: LoadState = { label, entries: new Map(), blobs: new Map(), layoutSeen: false, progress: { bytes: 0, blobs: 0 } };
  try {
    try {
      for await (const entry of extract) {
        await readEntry(store, entry, state, opts, maxIndexBytes);
      }
    } catch (err) {
      extract.destroy(asError(err));
      throw err;
    } finally {
      await feeding;
    }
  } catch (err) {
    source.destroy();
    if (opts.signal?.aborted) throw new ArchiveError(label, undefined, `load aborted: ${(opts.signal.reason as Error)?.message ?? "aborted"}`);
    throw asArchiveError(label, err);
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }

  // The whole tar is read and every blob in it verified. Now the graph and the names.
  if (!state.layoutSeen) throw new ArchiveError(label, undefined, "has no oci-layout file: it is not an OCI image layout archive");
  if (!state.indexJson) throw new ArchiveError(label, undefined, "has no index.json: it is not an OCI image layout archive");
  const index = parseIndexJson(state.indexJson, label);
  const planned = nameImages(index, label, opts);

  const visited = new Set<Digest>();
  for (const desc of index.manifests) await checkGraph(store, desc, state, "index.json", visited, 0, maxIndexBytes);

  const loaded: LoadedImage[] = [];
  for (const p of planned) {
    opts.signal?.throwIfAborted();
    const ref = await store.setTag(p.ref, stripNameAnnotations(p.descriptor));
    const img: LoadedImage = { ref, digest: p.descriptor.digest, mediaType: p.descriptor.mediaType, size: p.descriptor.size };
    if (p.archiveName !== undefined) img.archiveName = p.archiveName;
    loaded.push(img);
  }
  return loaded;
}

/**
 * Pushes the input into the tar parser, gunzipping it first when it starts with the gzip
 * magic. Never rejects: a read error destroys the parser, which the consumer then reports.
 */
async function feed(source: Readable, extract: tar.Extract, label: string): Promise<void> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  try {
    const head: Buffer[] = [];
    let headBytes = 0;
    let ended = false;
    while (headBytes < 2) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
      head.push(chunk);
      headBytes += chunk.length;
    }
    const first = Buffer.concat(head);
    const rest = Readable.from(
      (async function* () {
        if (first.length > 0) yield first;
        if (ended) return;
        for (;;) {
          const r = await it.next();
          if (r.done) return;
          yield r.value;
        }
      })(),
      { objectMode: false },
    );
    let chunks: AsyncIterable<Buffer> = rest;
    if (first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b) {
      const gunzip = createGunzip();
      pipelineCb(rest, gunzip, () => undefined);
      chunks = gunzipErrors(gunzip, label);
    }
    for await (const chunk of chunks) {
      if (extract.destroying || extract.destroyed) break;
      if (!extract.write(chunk)) await drained(extract);
    }
    if (!extract.destroying && !extract.destroyed) extract.end(undefined);
  } catch (err) {
    extract.destroy(asError(err));
  } finally {
    await it.return?.().catch(() => undefined);
  }
}

async function* gunzipErrors(gunzip: AsyncIterable<Buffer>, label: string): AsyncGenerator<Buffer> {
  try {
    yield* gunzip;
  } catch (err) {
    throw new ArchiveError(label, undefined, `is gzip-compressed, but the gzip stream is corrupt or truncated (${(err as Error).message})`);
  }
}

async function readEntry(
  store: ImageStore,
  entry: TarEntry,
  state: LoadState,
  opts: LoadArchiveOptions,
  maxIndexBytes: number,
): Promise<void> {
  const { header } = entry;
  const raw = header.name;
  const fail = (why: string): never => {
    throw new ArchiveError(state.label, raw, why);
  };
  const path = normaliseEntryPath(raw, fail);

  switch (header.type) {
    case "file":
    case "contiguous-file":
      break;
    case "directory":
      if (header.size > 0) fail("a directory entry with content");
      await drain(entry);
      return;
    case "link":
    case "symlink":
      return fail(`${header.type} entries are not allowed in an OCI archive (it points to "${header.linkname ?? ""}")`);
    case "block-device":
    case "character-device":
    case "fifo":
      return fail(`${header.type} entries are not allowed in an OCI archive`);
    default:
      return fail(`unsupported tar entry type "${String(header.type)}"`);
  }

  const previous = state.entries.get(path);
  const blob = BLOB_PATH.exec(path);
  if (path.startsWith("blobs/") && !blob) {
    fail("a blob's name must be blobs/sha256/ followed by 64 lowercase hex digits");
  }

  if (blob) {
    const digest = `sha256:${blob[1]}` as Digest;
    if (previous) {
      // Same name again: its content must be the same (i.e. match the name once more).
      const content = await hashEntry(entry);
      if (content !== previous.content) fail(`duplicate entry with different content (hashes to ${content})`);
      return;
    }
    await storeBlob(store, entry, digest, state, opts);
    state.entries.set(path, { content: digest });
    state.blobs.set(digest, header.size);
    return;
  }

  if (path === "index.json" || path === "oci-layout") {
    const cap = path === "index.json" ? maxIndexBytes : MAX_OCI_LAYOUT_BYTES;
    if (header.size > cap) fail(`is ${header.size} bytes, more than the ${cap} bytes allowed`);
    const data = await readSmall(entry, cap, fail);
    const content = sha256Of(data);
    if (previous) {
      if (previous.content !== content) fail("duplicate entry with different content");
      return;
    }
    state.entries.set(path, { content });
    if (path === "oci-layout") {
      checkOciLayout(data, fail);
      state.layoutSeen = true;
    } else {
      state.indexJson = data;
      // Fail fast on naming problems before gigabytes of blobs are read.
      nameImages(parseIndexJson(data, state.label), state.label, opts);
    }
    return;
  }

  // Anything else (docker save adds manifest.json and repositories) is not ours to read,
  // but a repeated path must still be consistent.
  const content = await hashEntry(entry);
  if (previous && previous.content !== content) fail("duplicate entry with different content");
  state.entries.set(path, { content });
}

/** Rejects traversal and absolute names; returns the path without `./` and trailing `/`. */
function normaliseEntryPath(raw: string, fail: (why: string) => never): string {
  if (raw.includes("\0")) fail("a NUL byte in the entry name");
  if (raw.includes("\\")) fail("a backslash in the entry name");
  if (raw.startsWith("/")) fail("an absolute path");
  if (/^[A-Za-z]:/.test(raw)) fail("an absolute (drive-letter) path");
  const parts = raw.split("/");
  if (parts.includes("..")) fail('a ".." path component (path traversal)');
  return parts.filter((p) => p !== "" && p !== ".").join("/");
}

function checkOciLayout(data: Buffer, fail: (why: string) => never): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString("utf8"));
  } catch (err) {
    fail(`is not valid JSON: ${(err as Error).message}`);
  }
  const version = (parsed as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
  if (typeof version !== "string" || !/^1\.0\.\d+$/.test(version)) {
    fail(`unsupported imageLayoutVersion ${JSON.stringify(version)} (sealant reads 1.0.x)`);
  }
}

async function storeBlob(store: ImageStore, entry: TarEntry, digest: Digest, state: LoadState, opts: LoadArchiveOptions): Promise<void> {
  const size = entry.header.size;
  state.progress.current = digest;
  // putBlobStream verifies digest and size before renaming into place. The entry is copied
  // into a Node stream by hand: if the tar breaks mid-entry the copy simply ends short,
  // which putBlobStream rejects (and cleans up), and the tar's own error is reported.
  const body = new PassThrough();
  const storing = store.putBlobStream(body, { digest, size, what: `blob ${digest}` });
  let settled = false;
  const storeSettled = storing.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  let readError: unknown;
  try {
    for await (const chunk of entry as AsyncIterable<Buffer>) {
      state.progress.bytes += chunk.length;
      opts.onProgress?.({ ...state.progress });
      if (!body.write(chunk)) await Promise.race([drained(body), storeSettled]);
      if (settled) break;
    }
  } catch (err) {
    readError = err;
  }
  body.end();
  try {
    await storing;
  } catch (err) {
    if (readError !== undefined) throw readError;
    if (err instanceof DigestMismatchError) {
      throw new ArchiveError(state.label, entry.header.name, `content does not match its name (digest mismatch: it hashes to ${err.actual})`);
    }
    if (err instanceof Error && /size mismatch/.test(err.message)) {
      throw new ArchiveError(state.label, entry.header.name, err.message);
    }
    throw new ArchiveError(state.label, entry.header.name, `storing the blob failed: ${(err as Error).message}`);
  }
  if (readError !== undefined) throw readError;
  state.progress.blobs++;
  opts.onProgress?.({ ...state.progress });
}

async function hashEntry(entry: TarEntry): Promise<Digest> {
  const hash = createHash("sha256");
  for await (const chunk of entry as AsyncIterable<Buffer>) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

async function readSmall(entry: TarEntry, cap: number, fail: (why: string) => never): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of entry as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > cap) fail(`is more than the ${cap} bytes allowed`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function drain(entry: TarEntry): Promise<void> {
  for await (const _chunk of entry as AsyncIterable<Buffer>) {
    // directories have no content; this only lets the parser move on
  }
}

function sha256Of(data: Buffer): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function parseIndexJson(data: Buffer, label: string): Index {
  const fail = (why: string): never => {
    throw new ArchiveError(label, "index.json", why);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString("utf8"));
  } catch (err) {
    return fail(`is not valid JSON: ${(err as Error).message}`);
  }
  const index = parsed as Partial<Index> | null;
  if (typeof index !== "object" || index === null || Array.isArray(index)) return fail("is not a JSON object");
  if (index.schemaVersion !== 2) fail(`has schemaVersion ${JSON.stringify(index.schemaVersion)}, expected 2`);
  if (!Array.isArray(index.manifests)) return fail('has no "manifests" array');
  if (index.manifests.length === 0) fail("lists no images");
  index.manifests.forEach((d, i) => checkDescriptor(d, `manifests[${i}]`, fail));
  return index as Index;
}

function checkDescriptor(d: unknown, where: string, fail: (why: string) => never): asserts d is Descriptor {
  const desc = d as Partial<Descriptor> | null;
  if (typeof desc !== "object" || desc === null) fail(`${where} is not a descriptor object`);
  if (typeof desc!.mediaType !== "string" || desc!.mediaType === "") fail(`${where} has no mediaType`);
  if (typeof desc!.digest !== "string" || !isDigest(desc!.digest)) {
    fail(`${where} has digest ${JSON.stringify(desc!.digest)}; expected sha256: followed by 64 lowercase hex digits`);
  }
  if (typeof desc!.size !== "number" || !Number.isSafeInteger(desc!.size) || desc!.size < 0) {
    fail(`${where} has an invalid size ${JSON.stringify(desc!.size)}`);
  }
  if (desc!.annotations !== undefined && (typeof desc!.annotations !== "object" || desc!.annotations === null)) {
    fail(`${where} has invalid annotations`);
  }
}

/**
 * Every descriptor must be an archive blob of the described size; manifests and indexes are
 * read (from the store, where they are now verified) and followed to their children.
 */
async function checkGraph(
  store: ImageStore,
  desc: Descriptor,
  state: LoadState,
  from: string,
  visited: Set<Digest>,
  depth: number,
  maxIndexBytes: number,
): Promise<void> {
  const size = state.blobs.get(desc.digest);
  if (size === undefined) {
    throw new ArchiveError(state.label, undefined, `${from} references blob ${desc.digest} (${desc.mediaType}), which is not in the archive`);
  }
  if (size !== desc.size) {
    throw new ArchiveError(state.label, `blobs/sha256/${desc.digest.slice(7)}`, `${from} says it is ${desc.size} bytes, the archive has ${size}`);
  }
  if (visited.has(desc.digest)) return;
  visited.add(desc.digest);
  const isIndex = isIndexMediaType(desc.mediaType);
  if (!isIndex && !isManifestMediaType(desc.mediaType)) {
    if (depth === 0) throw new ArchiveError(state.label, "index.json", `entry ${desc.digest} has media type ${desc.mediaType}, not an image manifest or index`);
    return; // a config, a layer or some other leaf
  }
  if (depth >= MAX_NESTING) throw new ArchiveError(state.label, undefined, `indexes nested more than ${MAX_NESTING} deep at ${desc.digest}`);
  const entryName = `blobs/sha256/${desc.digest.slice(7)}`;
  const fail = (why: string): never => {
    throw new ArchiveError(state.label, entryName, why);
  };
  if (desc.size > maxIndexBytes) fail(`${isIndex ? "index" : "manifest"} of ${desc.size} bytes is larger than the ${maxIndexBytes} bytes allowed`);
  let doc: Partial<Index & Manifest> | null;
  try {
    doc = JSON.parse((await store.readBlob(desc.digest)).toString("utf8")) as Partial<Index & Manifest> | null;
  } catch (err) {
    return fail(`${desc.mediaType} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null) return fail(`${desc.mediaType} is not a JSON object`);
  const children: Array<[Descriptor, string]> = [];
  if (isIndex) {
    if (!Array.isArray(doc.manifests)) return fail('index has no "manifests" array');
    doc.manifests.forEach((d, i) => {
      checkDescriptor(d, `manifests[${i}]`, fail);
      children.push([d, `index ${desc.digest}`]);
    });
  } else {
    if (doc.config === undefined) return fail('manifest has no "config"');
    if (!Array.isArray(doc.layers)) return fail('manifest has no "layers" array');
    checkDescriptor(doc.config, "config", fail);
    children.push([doc.config, `manifest ${desc.digest} (config)`]);
    doc.layers.forEach((d, i) => {
      checkDescriptor(d, `layers[${i}]`, fail);
      children.push([d, `manifest ${desc.digest} (layer ${i})`]);
    });
  }
  for (const [child, where] of children) await checkGraph(store, child, state, where, visited, depth + 1, maxIndexBytes);
}

interface PlannedName {
  ref: string;
  descriptor: Descriptor;
  archiveName?: string;
}

/** Applies the naming rules (top of file) to every image in index.json; throws if any has no usable name. */
function nameImages(index: Index, label: string, opts: LoadArchiveOptions): PlannedName[] {
  const fail = (why: string): never => {
    throw new ArchiveError(label, "index.json", why);
  };
  if (opts.tag !== undefined && index.manifests.length !== 1) {
    fail(
      `holds ${index.manifests.length} images (${index.manifests.map(describeEntry).join(", ")}); a single tag cannot name them all — map each archive name to a reference instead`,
    );
  }
  const planned: PlannedName[] = [];
  const byRef = new Map<string, Digest>();
  for (const desc of index.manifests) {
    const archiveName = desc.annotations?.[REF_NAME_ANNOTATION];
    const containerdName = desc.annotations?.[CONTAINERD_IMAGE_NAME_ANNOTATION];
    const mapped = lookupName(opts.names, archiveName, desc.digest);
    let ref: string;
    if (mapped !== undefined) {
      ref = normaliseGiven(mapped, "name mapping", fail);
    } else if (opts.tag !== undefined) {
      ref = normaliseGiven(opts.tag, "tag", fail);
    } else if (archiveName !== undefined && archiveName !== "" && /[/:@]/.test(archiveName)) {
      ref = normaliseArchived(archiveName, desc.digest, fail);
    } else if (containerdName !== undefined && containerdName !== "") {
      ref = normaliseArchived(containerdName, desc.digest, fail);
    } else if (archiveName !== undefined && archiveName !== "") {
      if (opts.repository === undefined) {
        return fail(
          `image ${desc.digest} is named only by the bare tag "${archiveName}", which has no repository; give a repository (--repository app → docker.io/library/app:${archiveName}) or a full name (--tag app:${archiveName})`,
        );
      }
      ref = normaliseGiven(`${opts.repository}:${archiveName}`, "repository + archive tag", fail);
    } else {
      return fail(`image ${desc.digest} has no name (no ${REF_NAME_ANNOTATION} annotation); give one with --tag`);
    }
    const other = byRef.get(ref);
    if (other !== undefined && other !== desc.digest) fail(`two different images (${other}, ${desc.digest}) would both be named ${ref}`);
    if (other !== undefined) continue;
    byRef.set(ref, desc.digest);
    const p: PlannedName = { ref, descriptor: desc };
    if (archiveName !== undefined) p.archiveName = archiveName;
    planned.push(p);
  }
  return planned;
}

/** `names` by exact archive name, by digest, or by another spelling of the same reference (`app:1`). */
function lookupName(names: Record<string, string> | undefined, archiveName: string | undefined, digest: Digest): string | undefined {
  if (!names) return undefined;
  if (archiveName !== undefined && Object.hasOwn(names, archiveName)) return names[archiveName];
  if (Object.hasOwn(names, digest)) return names[digest];
  if (archiveName === undefined || !/[/:@]/.test(archiveName)) return undefined;
  const wanted = tryNormalise(archiveName);
  if (wanted === undefined) return undefined;
  for (const [key, value] of Object.entries(names)) if (/[/:@]/.test(key) && tryNormalise(key) === wanted) return value;
  return undefined;
}

function tryNormalise(ref: string): string | undefined {
  try {
    return formatReference(parseReference(ref));
  } catch {
    return undefined;
  }
}

function describeEntry(d: Descriptor): string {
  return d.annotations?.[REF_NAME_ANNOTATION] ?? d.digest;
}

/** A reference the user gave; a digest in it is not allowed (the archive decides the digest). */
function normaliseGiven(value: string, what: string, fail: (why: string) => never): string {
  try {
    const ref = parseReference(value);
    if (ref.digest !== undefined) fail(`${what} "${value}" must not contain a digest`);
    return formatReference(ref);
  } catch (err) {
    if (err instanceof ArchiveError) throw err;
    return fail(`${what} "${value}" is not a valid image reference: ${(err as Error).message}`);
  }
}

/** A name from the archive; `name@digest` must match the image and is stored as `name:tag` (latest if none). */
function normaliseArchived(value: string, digest: Digest, fail: (why: string) => never): string {
  let ref;
  try {
    ref = parseReference(value);
  } catch (err) {
    return fail(`image ${digest} has the name "${value}", which is not a valid image reference: ${(err as Error).message}`);
  }
  if (ref.digest !== undefined && ref.digest !== digest) fail(`image ${digest} is named "${value}", whose digest differs`);
  return formatReference({ registry: ref.registry, repository: ref.repository, tag: ref.tag ?? "latest" });
}

function checkRepositoryOption(repository: string): void {
  const last = repository.slice(repository.lastIndexOf("/") + 1);
  if (repository.includes("@") || last.includes(":")) {
    throw new Error(`invalid repository "${repository}": give a repository without tag or digest, e.g. registry.local/team/app`);
  }
  parseReference(repository);
}

function stripNameAnnotations(d: Descriptor): Descriptor {
  const copy: Descriptor = { ...d };
  if (copy.annotations) {
    const { [REF_NAME_ANNOTATION]: _a, [CONTAINERD_IMAGE_NAME_ANNOTATION]: _b, ...rest } = copy.annotations;
    if (Object.keys(rest).length > 0) copy.annotations = rest;
    else delete copy.annotations;
  }
  return copy;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Turns parser and I/O errors into an ArchiveError that says what is wrong with the archive. */
function asArchiveError(label: string, err: unknown): ArchiveError {
  if (err instanceof ArchiveError) return err;
  const message = (err as Error)?.message ?? String(err);
  if (/Unexpected end of data/i.test(message)) {
    return new ArchiveError(label, undefined, `is truncated or not a tar archive (${message})`);
  }
  if (/Invalid tar header|Header exceeds|Invalid header|unknown format/i.test(message)) {
    return new ArchiveError(label, undefined, `is not a valid tar archive (${message})`);
  }
  if ((err as NodeJS.ErrnoException)?.code === "ENOENT") return new ArchiveError(label, undefined, "does not exist");
  return new ArchiveError(label, undefined, `cannot be read: ${message}`);
}
