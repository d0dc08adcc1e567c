import { closeSync, createReadStream, mkdtempSync, openSync } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createGunzip } from "node:zlib";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import type { Digest } from "../../image/digest";
import type { ImageStore } from "../../image/store";
import { RemoteCommandError, SshError, shellQuote, type Connection, type UploadResult, type UploadTarFile } from "../../ssh";
import type { ClusterEvent, HostFacts } from "./context";
import type { ClusterImageLayer, PlatformImage } from "./image";
import { layerDirName, type HostLayout } from "./layout";
import { wireDirPrefix } from "./wire-leftovers";
import { fileSink } from "../../util/fs";

/** A layer as one host gets it: whole (registry hosts) or without registry/. */
export interface HostLayer extends ClusterImageLayer {
  withRegistry: boolean;
  dir: string;
}

/** The layers a host needs: registry-only layers go to registry hosts only. */
export function layersFor(image: PlatformImage, servesRegistry: boolean): HostLayer[] {
  return image.layers
    .filter((l) => servesRegistry || !l.registryOnly)
    .map((l) => ({ ...l, withRegistry: servesRegistry, dir: layerDirName(l.digest, servesRegistry) }));
}

/** The layers a host does not hold yet: only these are sent (re-applying an image sends nothing). */
export function missingLayers(layers: HostLayer[], facts: Pick<HostFacts, "layers">): HostLayer[] {
  return layers.filter((l) => !facts.layers.has(l.dir));
}

export interface DistributeOptions {
  store: ImageStore;
  layout: HostLayout;
  /** The image's manifest (or index) digest: names its rootfs directory. */
  imageDigest: Digest;
  layers: HostLayer[];
  facts: HostFacts;
  emit(e: ClusterEvent): void;
  signal?: AbortSignal;
}

/**
 * Sends the layers the host lacks, each as one tar stream into `tar -x` (extracted to a temp
 * directory, renamed into place when complete; gzip on the wire only for layers it shrinks),
 * then assembles the image's rootfs from hard links to its layers. Returns the bytes sent.
 */
export async function distributeTo(conn: Connection, opts: DistributeOptions): Promise<number> {
  distributing++;
  try {
    return await distributeLayers(conn, opts);
  } finally {
    distributing--;
  }
}

async function distributeLayers(conn: Connection, opts: DistributeOptions): Promise<number> {
  const { layout, facts } = opts;
  const missing = await Promise.all(missingLayers(opts.layers, facts).map(async (l) => ({ ...l, wire: await wireForm(opts.store, l) })));
  const total = missing.reduce((n, l) => n + l.wire.bytes, 0);
  let sentBefore = 0;
  const started = Date.now();
  for (const layer of missing) {
    // Alone, a host's send gunzips on its own worker thread, in step with the stream; while
    // other hosts are being sent the image too, every send reads one shared plain copy.
    const sharing = distributing > 1 || plainCopies.has(layer.digest);
    const plain = sharing && !layer.wire.gzip && /gzip/.test(layer.mediaType) ? plainCopy(opts.store, layer, layer.wire.bytes) : undefined;
    // A file source: the connection streams it from a worker thread of its own (ssh/bulk.ts).
    const blob = opts.store.blobPath(layer.digest);
    const source: UploadTarFile = plain
      ? { tarFile: plain.file, growsTo: plain.size }
      : layer.wire.gzip || !/gzip/.test(layer.mediaType)
        ? { tarFile: blob, gzip: layer.wire.gzip }
        : { tarFile: blob, gunzip: true };
    const signal = plain && opts.signal ? AbortSignal.any([opts.signal, plain.failed]) : (opts.signal ?? plain?.failed);
    const send = (): Promise<UploadResult> =>
      conn.upload(
        layout.layer(layer.digest, layer.withRegistry),
        { ...source, ...(layer.withRegistry ? {} : { exclude: ["registry"] }) },
        {
          sudo: true,
          onProgress: (p) => {
            const bytes = sentBefore + p.bytes;
            const secs = (Date.now() - started) / 1000;
            opts.emit({ type: "progress", host: conn.host, what: "image", bytes, total, mibPerSec: secs > 0 ? bytes / (1 << 20) / secs : 0 });
          },
          ...(signal ? { signal } : {}),
        },
      );
    let result: UploadResult;
    try {
      result = await sendWithRetry(conn.host, layer.digest, send, signal, (why) =>
        opts.emit({ type: "warning", host: conn.host, text: `sending layer ${layer.digest} failed (${why}); sending it again` }),
      );
    } catch (err) {
      if (plain?.failed.aborted) throw new SshError(conn.host, (plain.failed.reason as Error).message, { cause: err });
      throw err;
    } finally {
      await plain?.release();
    }
    sentBefore += result.bytes;
    facts.layers.add(layer.dir);
  }
  const hex = opts.imageDigest.replace(/^sha256:/, "");
  if (!facts.images.has(hex)) {
    await conn.run(
      assembleScript(
        layout,
        opts.imageDigest,
        opts.layers.map((l) => l.dir),
      ),
      { sudo: true, timeoutMs: 30 * 60_000, ...(opts.signal ? { signal: opts.signal } : {}) },
    );
    facts.images.add(hex);
  }
  return sentBefore;
}

/**
 * Builds images/<hex>/rootfs from the layers in order, applying OCI whiteouts, with hard
 * links (no data copied). Files in it are never changed in place (rendering replaces them),
 * so the layers stay intact for the next image that shares them. Built in a temp directory
 * and renamed, so a rootfs that exists is complete.
 */
export function assembleScript(layout: HostLayout, imageDigest: Digest, layerDirs: string[]): string {
  const img = layout.image(imageDigest);
  const tmp = `${img}.assemble`;
  return [
    "set -e",
    `tmp=${shellQuote(tmp)}; img=${shellQuote(img)}; layers=${shellQuote(layout.layers)}`,
    'rm -rf "$tmp"; mkdir -p "$tmp/rootfs"',
    `for l in ${layerDirs.map(shellQuote).join(" ")}; do`,
    '  (cd "$layers/$l" && find . -name ".wh.*") > "$tmp/whiteouts"',
    "  while IFS= read -r w; do",
    '    d=$(dirname "$w"); b=$(basename "$w")',
    '    if [ "$b" = ".wh..wh..opq" ]; then find "$tmp/rootfs/$d" -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null || true',
    '    else rm -rf "$tmp/rootfs/$d/${b#.wh.}"; fi',
    '  done < "$tmp/whiteouts"',
    '  cp -al --remove-destination "$layers/$l/." "$tmp/rootfs/"',
    '  while IFS= read -r w; do rm -f "$tmp/rootfs/$w"; done < "$tmp/whiteouts"',
    "done",
    'rm -f "$tmp/whiteouts"; rm -rf "$img"; mv -T "$tmp" "$img"',
  ].join("\n");
}

/**
 * A gzip layer that gzip does not shrink by more than this is sent as plain tar, gunzipped
 * here: its compression saves no bytes on the wire, and `tar -xz` on the host would spend
 * most of the host's CPU in GNU gzip (~100-200 MiB/s per core, several times slower than
 * zlib) for nothing. Such layers are common: registry/ holds container image layers that are
 * gzip already. Layers that do compress keep gzip on the wire.
 */
const INCOMPRESSIBLE = 1.05;
/** zlib's default 16 KiB output chunks make gunzip ~2.5x slower in Node; 1 MiB chunks run near zlib's speed. */
const GUNZIP_CHUNK = 1 << 20;
const READ_CHUNK = 1 << 20;

/** How a layer travels: gzip as stored, or plain tar (and how many bytes that is). */
export async function wireForm(store: ImageStore, layer: ClusterImageLayer): Promise<{ gzip: boolean; bytes: number }> {
  if (!/gzip/.test(layer.mediaType)) return { gzip: false, bytes: layer.size };
  const raw = await extractedSize(store, layer);
  return raw <= layer.size * INCOMPRESSIBLE ? { gzip: false, bytes: raw } : { gzip: true, bytes: layer.size };
}

export interface PlainCopy {
  file: string;
  size: number;
  /** Aborted when making the copy failed (its reason says why): the sends reading it stop. */
  failed: AbortSignal;
  /** Settled when the copy is whole (rejected when making it failed). */
  written: Promise<void>;
  /** Done with it; the last user's release stops the gunzip if still running and deletes the copy. */
  release(): Promise<void>;
}

/**
 * distributeTo calls running in this process. Counted on entry, before anything is awaited, so
 * the hosts of one phase (started together) all count before any of them sends a layer.
 */
let distributing = 0;

const plainCopies = new Map<Digest, { file: string; written: Promise<void>; users: number; stop: AbortController; failed: AbortController }>();

/**
 * A layer sent as plain tar to several hosts at once is gunzipped once, into a temp file every
 * host's send reads as it grows (ssh/upload.ts `growsTo`), instead of once per host:
 * ~0.7 s of CPU per 500 MiB per host (zlib), the largest cost on the sending side after the SSH
 * streams themselves. (One host alone gunzips in its own stream: writing and re-reading a copy
 * would only add work.) The copy lives while any host is being sent the layer from it, then is
 * deleted; private to this user (mode 0600 in a 0700 directory).
 */
export function plainCopy(store: ImageStore, layer: ClusterImageLayer, size: number): PlainCopy {
  let copy = plainCopies.get(layer.digest);
  if (!copy) {
    const dir = mkdtempSync(join(tmpdir(), wireDirPrefix()));
    const file = join(dir, "layer.tar");
    closeSync(openSync(file, "wx", 0o600)); // there before any reader opens it
    const stop = new AbortController();
    const failed = new AbortController();
    const written = pipeline(
      createReadStream(store.blobPath(layer.digest), { highWaterMark: READ_CHUNK }),
      createGunzip({ chunkSize: GUNZIP_CHUNK }),
      fileSink(file, 0o600), // 64 KiB writes: cheaper for this kernel than createWriteStream's large ones (util/fs.ts)
      { signal: stop.signal },
    ).then(async () => {
      const got = (await stat(file)).size;
      if (got !== size) throw new Error(`it holds ${got} bytes, ${size} expected`);
    });
    written.catch((err: unknown) => {
      if (!stop.signal.aborted)
        failed.abort(new Error(`unpacking layer ${layer.digest} for the wire: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
    });
    copy = { file, written, users: 0, stop, failed };
    plainCopies.set(layer.digest, copy);
  }
  const c = copy;
  c.users++;
  let released = false;
  return {
    file: c.file,
    size,
    failed: c.failed.signal,
    written: c.written,
    release: async () => {
      if (released) return;
      released = true;
      if (--c.users > 0) return;
      if (plainCopies.get(layer.digest) === c) plainCopies.delete(layer.digest);
      c.stop.abort();
      await c.written.catch(() => undefined);
      await rm(dirname(c.file), { recursive: true, force: true });
    },
  };
}

/** Attempts per layer: a send that failed (a lost connection, a worker thread that died) is tried once more. */
const LAYER_ATTEMPTS = 2;

/** Sends one layer, again after a failure that was not an abort; the error names host and layer. */
async function sendWithRetry(
  host: string,
  digest: Digest,
  send: () => Promise<UploadResult>,
  signal: AbortSignal | undefined,
  onRetry: (why: string) => void,
): Promise<UploadResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      const why = err instanceof SshError && err.host === host ? err.reason : err instanceof Error ? err.message : String(err);
      if (signal?.aborted || attempt >= LAYER_ATTEMPTS || !worthRetrying(err)) {
        const tried = attempt > 1 ? ` (${attempt} attempts)` : "";
        throw new SshError(host, `sending layer ${digest}${tried}: ${why}`, { cause: err });
      }
      onRetry(why);
    }
  }
}

/** Not an abort, nor a command that ran and failed by itself (tar's exit 2 on a full disk would fail again). */
function worthRetrying(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof RemoteCommandError) return !e.aborted && e.exitCode === null;
  }
  return true;
}

const sizeCache = new Map<string, number>();

/**
 * Bytes a layer takes once extracted (its uncompressed tar size: a close upper bound), for
 * the free-disk check before anything is sent. Measured once and remembered in the store.
 */
export async function extractedSize(store: ImageStore, layer: ClusterImageLayer): Promise<number> {
  const cached = sizeCache.get(layer.digest);
  if (cached !== undefined) return cached;
  const pin = await store.readPin<{ digests: Digest[]; size: number }>(`layer-size:${layer.digest}`);
  if (pin) {
    sizeCache.set(layer.digest, pin.size);
    return pin.size;
  }
  let size = 0;
  const counter = new Writable({
    write(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      cb();
    },
  });
  if (/gzip/.test(layer.mediaType))
    await pipeline(createReadStream(store.blobPath(layer.digest), { highWaterMark: READ_CHUNK }), createGunzip({ chunkSize: GUNZIP_CHUNK }), counter);
  else size = layer.size;
  sizeCache.set(layer.digest, size);
  await store.pin(`layer-size:${layer.digest}`, { digests: [layer.digest], size });
  return size;
}
