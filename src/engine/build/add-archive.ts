import { createReadStream } from "node:fs";
import { mkdir, open } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";
import { createWriteStream } from "node:fs";
import { joinLayerPath } from "./context";
import type { LayerEntry } from "./layer-writer";

/** Whether ADD should unpack this file: a tar, optionally gzip-compressed (by content, not name). */
export async function isArchive(path: string): Promise<boolean> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    if (bytesRead >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return true;
    return bytesRead >= 262 && buf.subarray(257, 262).toString("latin1") === "ustar";
  } catch {
    return false;
  } finally {
    await fh.close();
  }
}

/**
 * Unpacks an archive for ADD into a scratch dir and describes its contents as layer entries
 * under `dest`. Entries escaping the archive root and links are refused.
 */
export async function archiveEntries(archive: string, dest: string, scratch: string): Promise<LayerEntry[]> {
  const root = join(scratch, String(Date.now()) + Math.random().toString(16).slice(2));
  await mkdir(root, { recursive: true });
  const entries: LayerEntry[] = [];
  const extract = tar.extract();
  const gz = await isGzip(archive);
  const reading = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      const name = h.name.replace(/^\.?\/+/, "").replace(/\/+$/, "");
      if (name === "" || name === ".") {
        entry.resume();
        continue;
      }
      if (name.split("/").includes("..")) throw new Error(`ADD ${archive}: entry "${h.name}" escapes the archive root`);
      const path = joinLayerPath(dest, name);
      const mode = (h.mode ?? 0o644) & 0o7777;
      if (h.type === "directory") {
        entries.push({ type: "directory", path, mode });
        entry.resume();
      } else if (h.type === "symlink") {
        entries.push({ type: "symlink", path, mode: 0o777, target: h.linkname ?? "" });
        entry.resume();
      } else if (h.type === "file" || h.type === "contiguous-file") {
        const file = join(root, String(entries.length));
        await pipeline(entry, createWriteStream(file));
        entries.push({ type: "file", path, mode, size: h.size ?? 0, source: file });
      } else {
        throw new Error(`ADD ${archive}: entry "${h.name}" is a ${h.type}, which a cluster image cannot hold`);
      }
    }
  })();
  const src = createReadStream(archive);
  await Promise.all([gz ? pipeline(src, createGunzip(), extract) : pipeline(src, extract), reading]);
  return entries;
}

async function isGzip(path: string): Promise<boolean> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(2);
    await fh.read(buf, 0, 2, 0);
    return buf[0] === 0x1f && buf[1] === 0x8b;
  } finally {
    await fh.close();
  }
}
