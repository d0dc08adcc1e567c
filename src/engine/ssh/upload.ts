/**
 * Uploading a tree to a host as one tar stream over one exec: `tar -x` into a temp directory
 * beside the target, then — only when the whole stream was sent and extracted cleanly — a
 * second command swaps it into place. Works over any Connection's `exec`.
 */
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, open, readdir, readlink } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { join, posix } from "node:path";
import { performance } from "node:perf_hooks";
import { pipeline, Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";
import { countBytes } from "../util/streams";
import type { ExecOptions, ExecResult, UploadEntry, UploadOptions, UploadProgress, UploadResult, UploadSource, UploadTar, UploadTarFile } from "./connection";
import { failureOf } from "./connection";
import { SshError, errorMessage } from "./errors";
import { shellQuote } from "./shell";

type Exec = (command: string, opts?: ExecOptions) => Promise<ExecResult>;

/** Runs `command` with a local file (gunzipped when asked) as its stdin: the bulk path (bulk.ts). */
export type SendFile = (
  command: string,
  file: string,
  opts: { gunzip: boolean; growsTo?: number; sudo?: boolean; timeoutMs?: number; signal?: AbortSignal; onBytes(total: number): void },
) => Promise<ExecResult>;

/** Checks a remote target directory: absolute, normalised, not `/`. */
export function checkTargetDir(dir: string): string {
  const trimmed = dir.length > 1 ? dir.replace(/\/+$/, "") : dir;
  if (!trimmed.startsWith("/") || posix.normalize(trimmed) !== trimmed || trimmed === "/" || /[\n\0]/.test(trimmed)) {
    throw new Error(`upload target ${JSON.stringify(dir)} must be an absolute, normalised directory path other than /`);
  }
  return trimmed;
}

export function isTarSource(source: UploadSource): source is UploadTar {
  return !Array.isArray(source) && "tar" in source;
}

export function isTarFileSource(source: UploadSource): source is UploadTarFile {
  return !Array.isArray(source) && "tarFile" in source;
}

/** 1 MiB reads and gunzip output chunks: ~40 % less CPU per byte on the way to ssh2 than the 64/16 KiB defaults. */
const FILE_CHUNK = 1 << 20;

/** A tar file source as a stream (for connections that send on their own thread). */
export function tarFileStream(source: UploadTarFile): UploadTar {
  if (source.growsTo !== undefined) {
    const grown = Readable.from(followFile(source.tarFile, source.growsTo), { objectMode: false });
    return { tar: grown, ...(source.gzip ? { gzip: true } : {}), ...(source.exclude ? { exclude: source.exclude } : {}) };
  }
  const file = createReadStream(source.tarFile, { highWaterMark: FILE_CHUNK });
  // An error of either stream destroys the gunzip with it, which fails the upload.
  const tarStream = source.gunzip ? pipeline(file, createGunzip({ chunkSize: FILE_CHUNK }), () => undefined) : file;
  return { tar: tarStream, ...(source.gzip ? { gzip: true } : {}), ...(source.exclude ? { exclude: source.exclude } : {}) };
}

/** A file another task is still writing, read as it grows (polled) until it holds `size` bytes. */
async function* followFile(path: string, size: number): AsyncGenerator<Buffer> {
  const fh = await open(path, "r");
  try {
    let pos = 0;
    let grewAt = Date.now();
    while (pos < size) {
      const buf = Buffer.allocUnsafe(Math.min(FILE_CHUNK, size - pos));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) {
        if (Date.now() - grewAt > 120_000) throw new Error(`${path} stopped growing at ${pos} of ${size} bytes`);
        await sleep(5);
        continue;
      }
      grewAt = Date.now();
      pos += bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/**
 * `secrets`: the connection's (its passwords), kept out of the error when tar or the swap fails.
 * `sendFile`: how the connection streams a tar file source, when it has a bulk path.
 */
export async function uploadWith(
  exec: Exec,
  host: string,
  targetDir: string,
  given: UploadSource,
  opts: UploadOptions = {},
  secrets: readonly string[] = [],
  sendFile?: SendFile,
): Promise<UploadResult> {
  const target = checkTargetDir(targetDir);
  const tmp = posix.join(posix.dirname(target), `.${posix.basename(target)}.upload-${randomBytes(6).toString("hex")}`);
  const bulk = isTarFileSource(given) && sendFile ? given : undefined;
  const source: readonly UploadEntry[] | UploadTar | undefined = bulk ? undefined : isTarFileSource(given) ? tarFileStream(given) : given;
  const tarLike = bulk ?? (source && isTarSource(source) ? source : undefined);
  const gzip = tarLike?.gzip === true;
  const started = performance.now();
  const interval = opts.progressIntervalMs ?? 250;
  let bytes = 0;
  let lastReport = 0;
  const progress = (): UploadProgress => {
    const elapsedMs = performance.now() - started;
    return { bytes, elapsedMs, mibPerSec: elapsedMs > 0 ? bytes / (1 << 20) / (elapsedMs / 1000) : 0 };
  };
  const onBytes = (total: number): void => {
    bytes = total;
    const now = performance.now();
    if (opts.onProgress && now - lastReport >= interval) {
      lastReport = now;
      opts.onProgress(progress());
    }
  };
  const counted = source ? countBytes(isTarSource(source) ? source.tar : packEntries(source), (_n, total) => onBytes(total)) : undefined;
  const base = { ...(opts.sudo !== undefined ? { sudo: opts.sudo } : {}), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) };
  const fail = async (err: unknown): Promise<never> => {
    // Best effort, without the caller's signal (it may be what stopped us).
    await exec(`rm -rf ${shellQuote(tmp)}`, { ...base, timeoutMs: 30_000 }).catch(() => undefined);
    const why = err instanceof SshError && err.host === host ? err.reason : errorMessage(err);
    throw new SshError(host, `uploading to ${target}: ${why}`, { cause: err });
  };

  const q = shellQuote(tmp);
  const excludes = (tarLike?.exclude ?? []).flatMap((p) => [`--exclude=${shellQuote(p)}`, `--exclude=${shellQuote(`./${p}`)}`]);
  const extract = `rm -rf ${q} && mkdir -p ${q} && tar -x${gzip ? "z" : ""}f - -C ${q}${excludes.length ? ` --anchored ${excludes.join(" ")}` : ""}`;
  try {
    const signal = opts.signal ? { signal: opts.signal } : {};
    const r =
      bulk && sendFile
        ? await sendFile(extract, bulk.tarFile, {
            ...base,
            ...signal,
            gunzip: bulk.gunzip === true,
            ...(bulk.growsTo !== undefined ? { growsTo: bulk.growsTo } : {}),
            onBytes,
          })
        : await exec(extract, { ...base, stdin: counted!, ...signal });
    const failure = failureOf(host, extract, r, secrets);
    if (failure) throw failure;
  } catch (err) {
    counted?.destroy();
    return fail(err);
  }

  const t = shellQuote(target);
  const swap =
    `set -e; t=${t}; n=${q}; ` +
    `if [ -e "$t" ] || [ -L "$t" ]; then o="$n.old"; mv -T "$t" "$o"; ` +
    `if ! mv -T "$n" "$t"; then mv -T "$o" "$t"; exit 1; fi; rm -rf "$o"; ` +
    `else mv -T "$n" "$t"; fi`;
  try {
    const r = await exec(swap, { ...base, ...(opts.signal ? { signal: opts.signal } : {}) });
    const failure = failureOf(host, `moving ${tmp} to ${target}`, r, secrets);
    if (failure) throw failure;
  } catch (err) {
    return fail(err);
  }
  const done = progress();
  opts.onProgress?.(done);
  return { ...done, target };
}

/** Checks an entry's path inside the target: relative, no `..`, normalised; "." is the root. */
function entryPath(path: string): string {
  const p = posix.normalize(path.replace(/\\/g, "/")).replace(/\/+$/, "");
  if (p === "." || p === "") return "";
  if (p.startsWith("/") || p === ".." || p.startsWith("../")) {
    throw new Error(`upload entry path ${JSON.stringify(path)} must be relative and stay inside the target directory`);
  }
  return p;
}

/**
 * One tar stream (root-owned entries) of local files and directories and inline contents.
 * Directories are walked in sorted order; symlinks are kept as links; other special files fail.
 */
export function packEntries(entries: readonly UploadEntry[]): Readable {
  const pack = tar.pack();
  const add = async (header: Partial<tar.Header> & { name: string }, body?: Readable | Buffer): Promise<void> => {
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry({ uid: 0, gid: 0, ...header }, (err) => (err ? reject(err) : resolve()));
      if (body === undefined) return;
      if (Buffer.isBuffer(body)) {
        sink.end(body);
        return;
      }
      body.on("error", (err) => {
        sink.destroy(err);
        reject(err);
      });
      body.pipe(sink as unknown as NodeJS.WritableStream);
    });
  };
  const addLocal = async (local: string, name: string, mode: number | undefined): Promise<void> => {
    const st = await lstat(local);
    const m = mode ?? st.mode & 0o7777;
    if (st.isDirectory()) {
      if (name !== "") await add({ name: `${name}/`, type: "directory", mode: m, mtime: st.mtime });
      for (const child of (await readdir(local)).sort()) {
        await addLocal(join(local, child), name === "" ? child : `${name}/${child}`, undefined);
      }
    } else if (name === "") {
      throw new Error(`upload entry ${local}: a file needs a path inside the target, not "."`);
    } else if (st.isFile()) {
      await add({ name, type: "file", size: st.size, mode: m, mtime: st.mtime }, createReadStream(local, { highWaterMark: 1 << 20 }));
    } else if (st.isSymbolicLink()) {
      await add({ name, type: "symlink", linkname: await readlink(local), mode: m, mtime: st.mtime });
    } else {
      throw new Error(`upload entry ${local}: not a regular file, directory or symlink`);
    }
  };
  (async () => {
    for (const e of entries) {
      const name = entryPath(e.path);
      if ("local" in e) {
        await addLocal(e.local, name, e.mode);
      } else {
        if (name === "") throw new Error(`upload entry with content needs a file path, not "."`);
        const body = Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content);
        await add({ name, type: "file", size: body.length, mode: e.mode ?? 0o644, mtime: new Date() }, body);
      }
    }
  })().then(
    () => pack.finalize(),
    (err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))),
  );
  return Readable.from(pack as unknown as AsyncIterable<Buffer>, { objectMode: false });
}
