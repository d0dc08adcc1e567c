import { createWriteStream } from "node:fs";
import { chmod, lstat, mkdir, readdir, rm, symlink, utimes } from "node:fs/promises";
import { dirname, join, normalize } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";
import type { Digest } from "../image/digest";
import type { ImageStore } from "../image/store";

/**
 * Applies an OCI layer onto a directory: whiteouts delete, opaque markers empty a directory,
 * everything else is written. Paths that would land outside the directory are refused.
 */
export async function extractLayer(store: ImageStore, digest: Digest, rootfs: string): Promise<void> {
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const header = entry.header;
      const rel = safeRelativePath(header.name, digest);
      if (rel === "") {
        entry.resume();
        continue;
      }
      const base = rel.split("/").pop()!;
      const parent = dirname(rel) === "." ? "" : dirname(rel);
      if (base === ".wh..wh..opq") {
        await emptyDirectory(join(rootfs, parent));
        entry.resume();
        continue;
      }
      if (base.startsWith(".wh.")) {
        await rm(join(rootfs, parent, base.slice(4)), { recursive: true, force: true });
        entry.resume();
        continue;
      }
      const target = join(rootfs, rel);
      await mkdir(dirname(target), { recursive: true });
      const mode = (header.mode ?? 0o644) & 0o7777;
      const existing = await lstat(target).catch(() => undefined);
      switch (header.type) {
        case "directory":
          if (existing && !existing.isDirectory()) await rm(target, { recursive: true, force: true });
          await mkdir(target, { recursive: true });
          await chmod(target, mode);
          entry.resume();
          break;
        case "file":
        case "contiguous-file":
          if (existing) await rm(target, { recursive: true, force: true });
          await pipeline(entry, createWriteStream(target, { mode }));
          await chmod(target, mode);
          if (header.mtime) await utimes(target, header.mtime, header.mtime);
          break;
        case "symlink":
          if (existing) await rm(target, { recursive: true, force: true });
          await symlink(header.linkname ?? "", target);
          entry.resume();
          break;
        case "link": {
          if (existing) await rm(target, { recursive: true, force: true });
          const source = join(rootfs, safeRelativePath(header.linkname ?? "", digest));
          const { link } = await import("node:fs/promises");
          await link(source, target);
          entry.resume();
          break;
        }
        default:
          // Devices and fifos have no place in a cluster image's files.
          entry.resume();
      }
    }
  })();
  await Promise.all([pipeline(store.openBlob(digest), createGunzip(), extract), done]);
}

function safeRelativePath(name: string, digest: Digest): string {
  const cleaned = normalize(name.replace(/^\.\//, "").replace(/^\/+/, "")).replace(/\/+$/, "");
  if (cleaned === "." || cleaned === "") return "";
  if (cleaned === ".." || cleaned.startsWith("../")) throw new Error(`layer ${digest}: entry "${name}" escapes the root`);
  return cleaned;
}

async function emptyDirectory(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  await Promise.all(names.map((n) => rm(join(dir, n), { recursive: true, force: true })));
}
