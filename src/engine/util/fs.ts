import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { access, mkdir, open, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, basename } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";

/** A sibling temp name that readers never mistake for the real file (same dir = same filesystem = atomic rename). */
export function tempNameFor(path: string): string {
  return join(dirname(path), `.tmp-${basename(path)}-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/**
 * Writes a file so that readers see either the old content or the complete new one, never a
 * torn write. `sync: false` skips the fsync, for scratch trees that a crash discards anyway.
 */
export async function writeFileAtomic(path: string, data: string | Buffer, mode?: number, sync = true): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempNameFor(path);
  try {
    await writeFile(tmp, data, mode === undefined ? {} : { mode });
    if (sync) await fsyncFile(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Streams into a temp file; `commit` (given the temp file's path, after the stream ended)
 * decides by returning or throwing whether it is renamed into place.
 */
export async function writeStreamAtomic(path: string, source: Readable, commit: (tmp: string) => void | Promise<void> = () => undefined): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempNameFor(path);
  try {
    // 1 MiB writes: with the default 16 KiB, receiving and writing take turns instead of overlapping.
    await pipeline(source, createWriteStream(tmp, { highWaterMark: 1 << 20 }));
    await commit(tmp);
    await fsyncFile(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
