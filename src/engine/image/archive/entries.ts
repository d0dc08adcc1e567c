/**
 * Reading an archive's tar entries one by one: paths and entry types are vetted (no traversal,
 * links or devices), each blob is streamed into the store and verified against its name, and
 * oci-layout and index.json are kept for the checks that follow the whole tar.
 */
import { createHash } from "node:crypto";
import { PassThrough } from "node:stream";
import type * as tar from "tar-stream";
import { DigestMismatchError, type Digest } from "../digest";
import type { ImageStore } from "../store";
import { ArchiveError } from "./errors";
import { parseIndexJson } from "./graph";
import { nameImages } from "./naming";
import type { LoadArchiveOptions } from "./options";
import type { LoadState } from "./state";
import { drained } from "../../util/streams";

const MAX_OCI_LAYOUT_BYTES = 64 * 1024;
const BLOB_PATH = /^blobs\/sha256\/([a-f0-9]{64})$/;

/** One entry of the tar being read (tar-stream does not export the type). */
type TarEntry = tar.Extract extends AsyncIterable<infer S> ? S : never;

export async function readEntry(store: ImageStore, entry: TarEntry, state: LoadState, opts: LoadArchiveOptions, maxIndexBytes: number): Promise<void> {
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
