import { createWriteStream } from "node:fs";
import { chmod, link, lstat, mkdir, readdir, readlink, rm, symlink, utimes } from "node:fs/promises";
import { dirname, join, normalize } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";
import type { Digest } from "../image/digest";
import type { ImageStore } from "../image/store";

/**
 * Applies an OCI layer onto a directory: whiteouts delete, opaque markers empty a directory,
 * everything else is written. Paths that would land outside the directory are refused, and a
 * symlink met on the way to an entry (this layer's or an earlier one's) is followed inside the
 * directory, as if it were the root — the way a container runtime applies layers — so no entry,
 * whiteout or hard link reaches the build machine's own files through a link such as
 * `esc -> /etc` or `up -> ../../..`. The links themselves are kept as written: they are data.
 * Whiteouts and opaque markers remove only what earlier layers made (the OCI rule), whatever
 * the order of the tar: `.wh.-x` sorts after `-x`, and must not delete this layer's `-x`.
 */
export async function extractLayer(store: ImageStore, digest: Digest, rootfs: string): Promise<void> {
  const extract = tar.extract();
  /** The paths this layer wrote and their directories (resolved inside rootfs): its own whiteouts leave them alone. */
  const written = new Set<string>();
  const done = (async () => {
    for await (const entry of extract) {
      const header = entry.header;
      const rel = safeRelativePath(header.name, digest);
      if (rel === "") {
        entry.resume();
        continue;
      }
      const base = rel.split("/").pop()!;
      const parent = await resolveInRoot(rootfs, dirname(rel) === "." ? "" : dirname(rel), `layer ${digest}`);
      if (base === ".wh..wh..opq") {
        await emptyDirectory(parent, written);
        entry.resume();
        continue;
      }
      if (base.startsWith(".wh.")) {
        const gone = join(parent, base.slice(4));
        if (!written.has(gone)) await rm(gone, { recursive: true, force: true });
        entry.resume();
        continue;
      }
      const target = join(parent, base);
      for (let p = target; p.length > rootfs.length && !written.has(p); p = dirname(p)) written.add(p);
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
          const from = safeRelativePath(header.linkname ?? "", digest);
          const source = join(await resolveInRoot(rootfs, dirname(from) === "." ? "" : dirname(from), `layer ${digest}`), from.split("/").pop()!);
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

/** Symlinks followed on the way to one entry before the layer is refused (as the kernel's ELOOP). */
const MAX_LINK_HOPS = 40;

/**
 * The real path for `rel` (a cleaned relative path) under `root`, every symlink on the way
 * resolved with `root` as `/`: an absolute target starts again at `root`, `..` stops at it.
 * `what` names the caller in the error for a link loop.
 */
export async function resolveInRoot(root: string, rel: string, what: string): Promise<string> {
  let todo = rel === "" ? [] : rel.split("/");
  const done: string[] = [];
  let hops = 0;
  while (todo.length > 0) {
    const part = todo.shift()!;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      done.pop();
      continue;
    }
    const here = join(root, ...done, part);
    const st = await lstat(here).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      if (++hops > MAX_LINK_HOPS) throw new Error(`${what}: more than ${MAX_LINK_HOPS} symlinks on the way to "${rel}"`);
      const target = await readlink(here);
      if (target.startsWith("/")) done.length = 0;
      todo = [...target.split("/"), ...todo];
      continue;
    }
    done.push(part);
  }
  return join(root, ...done);
}

async function emptyDirectory(dir: string, keep: Set<string>): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  await Promise.all(names.filter((n) => !keep.has(join(dir, n))).map((n) => rm(join(dir, n), { recursive: true, force: true })));
}
