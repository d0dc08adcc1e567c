import { createHash } from "node:crypto";
import { createReadStream, type Stats } from "node:fs";
import { glob, lstat, readdir, readlink, realpath, stat } from "node:fs/promises";
import { basename, isAbsolute, join, relative, resolve, sep } from "node:path";
import type { LayerEntry } from "./layer-writer";

/** A build input error in the user's terms: the Kubefile line and what is wrong. */
export class BuildInputError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`);
    this.name = "BuildInputError";
  }
}

export interface Where {
  file: string;
  line: number;
  instruction: string;
}

/**
 * Resolves COPY/ADD/APP sources against the build context. A source is always relative to the
 * context (a leading / too, as in Docker); one that escapes it, directly or through a
 * symlink, is refused — a build must not read arbitrary files of the build machine.
 */
export async function resolveSources(context: string, sources: string[], where: Where): Promise<string[]> {
  const root = await realpath(context);
  const out: string[] = [];
  for (const src of sources) {
    const rel = src.replace(/^\/+/, "");
    const candidate = resolve(root, rel);
    if (!isInside(root, candidate)) {
      throw new BuildInputError(where.file, where.line, `${where.instruction} source "${src}" is outside the build context ${context}`);
    }
    const matches = /[*?[]/.test(rel) ? await expandGlob(root, rel) : [candidate];
    if (matches.length === 0) {
      throw new BuildInputError(where.file, where.line, `${where.instruction} source "${src}" matches no file in the build context ${context}`);
    }
    for (const m of matches) {
      let real: string;
      try {
        real = await realpath(m);
      } catch (err) {
        const why = (err as NodeJS.ErrnoException).code === "ELOOP" ? "is a symlink loop" : "does not exist";
        throw new BuildInputError(where.file, where.line, `${where.instruction} source "${src}" ${why} in the build context ${context}`);
      }
      if (!isInside(root, real)) {
        throw new BuildInputError(where.file, where.line, `${where.instruction} source "${src}" resolves to ${real}, outside the build context ${context}`);
      }
      await refuseSpecialFiles(root, real, where);
      out.push(m);
    }
  }
  return out;
}

/**
 * A FIFO, socket or device is no file a layer can hold, and opening a FIFO blocks until some
 * writer appears (for ever): refuse them by their path in the context before anything reads the
 * source. A directory source is walked for them (symlinks inside it are kept as links, never
 * followed, so a link loop costs nothing).
 */
async function refuseSpecialFiles(root: string, path: string, where: Where): Promise<void> {
  const st = await lstat(path);
  const kind = specialFileKind(st);
  if (kind !== undefined) {
    throw new BuildInputError(
      where.file,
      where.line,
      `${where.instruction} source "${relative(root, path) || "."}" in the build context is a ${kind}: only files, directories and symlinks can be copied`,
    );
  }
  if (!st.isDirectory()) return;
  for (const name of (await readdir(path)).sort()) await refuseSpecialFiles(root, join(path, name), where);
}

/** "FIFO", "socket", "character device" or "block device"; undefined for files, directories and symlinks. */
export function specialFileKind(st: Stats): string | undefined {
  if (st.isFIFO()) return "FIFO";
  if (st.isSocket()) return "socket";
  if (st.isCharacterDevice()) return "character device";
  if (st.isBlockDevice()) return "block device";
  return undefined;
}

async function expandGlob(root: string, pattern: string): Promise<string[]> {
  const found: string[] = [];
  for await (const m of glob(pattern, { cwd: root })) found.push(join(root, m));
  return found.sort();
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

/**
 * The layer entries that copying `sources` to `dest` produces, Docker's rules: a directory
 * source copies its contents; several sources or a dest ending in / (or an existing directory
 * in the image) make dest a directory; a single file source otherwise names the target file.
 */
export async function copyEntries(sources: string[], dest: string, destIsDirectory: boolean): Promise<LayerEntry[]> {
  const destPath = normaliseDest(dest);
  const entries: LayerEntry[] = [];
  const intoDir = destIsDirectory || sources.length > 1 || dest.endsWith("/") || destPath === "";
  for (const src of sources) {
    const st = await stat(src);
    if (st.isDirectory()) {
      if (destPath !== "") entries.push({ type: "directory", path: destPath, mode: st.mode & 0o7777 });
      await walkInto(src, destPath, entries);
    } else {
      const target = intoDir ? joinLayerPath(destPath, basename(src)) : destPath;
      entries.push({ type: "file", path: target, mode: st.mode & 0o7777, size: st.size, source: src });
    }
  }
  return dedupeLastWins(entries);
}

async function walkInto(dir: string, prefix: string, out: LayerEntry[]): Promise<void> {
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const path = join(dir, name);
    const layerPath = joinLayerPath(prefix, name);
    const st = await lstat(path);
    if (st.isSymbolicLink()) out.push({ type: "symlink", path: layerPath, mode: 0o777, target: await readlink(path) });
    else if (st.isDirectory()) {
      out.push({ type: "directory", path: layerPath, mode: st.mode & 0o7777 });
      await walkInto(path, layerPath, out);
    } else if (st.isFile()) out.push({ type: "file", path: layerPath, mode: st.mode & 0o7777, size: st.size, source: path });
  }
}

/**
 * A destination as a path in the image, relative to its root: Docker's rule that the
 * destination is resolved from / and `..` at the root stays at the root (`COPY a ../../x`
 * writes /x), so no layer entry ever starts with `..`.
 */
export function normaliseDest(dest: string): string {
  const parts: string[] = [];
  for (const p of dest.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return parts.join("/");
}

/** Linux's limits (NAME_MAX, PATH_MAX less room for the directory a host unpacks into). */
const MAX_NAME_BYTES = 255;
const MAX_PATH_BYTES = 3900;

/**
 * Every path a COPY/ADD/APP layer would hold must be creatable on the build machine and the
 * hosts: a name over 255 bytes failed later with a raw ENAMETOOLONG, and a destination
 * thousands of directories deep took minutes to write and unpack.
 */
export function checkLayerPaths(entries: LayerEntry[], where: Where): void {
  for (const e of entries) {
    const long = e.path.split("/").find((part) => Buffer.byteLength(part) > MAX_NAME_BYTES);
    if (long !== undefined) {
      throw new BuildInputError(where.file, where.line, `${where.instruction} would create "${clipMiddle(long)}": a name longer than ${MAX_NAME_BYTES} bytes`);
    }
    if (Buffer.byteLength(e.path) > MAX_PATH_BYTES) {
      throw new BuildInputError(
        where.file,
        where.line,
        `${where.instruction} would create "${clipMiddle(e.path)}": a path longer than ${MAX_PATH_BYTES} bytes`,
      );
    }
  }
}

function clipMiddle(text: string): string {
  return text.length <= 120 ? text : `${text.slice(0, 60)}...${text.slice(-60)}`;
}

export function joinLayerPath(a: string, b: string): string {
  return a === "" ? b : `${a}/${b}`;
}

function dedupeLastWins(entries: LayerEntry[]): LayerEntry[] {
  const byPath = new Map<string, LayerEntry>();
  for (const e of entries) byPath.set(e.path, e);
  return [...byPath.values()];
}

/**
 * A digest of what a set of entries would put in a layer: paths, types, modes, link targets
 * and file contents. Equal digests mean an identical layer, so the cache can reuse it.
 * File hashes are memoised in `fileDigests` by (path, size, mtime, inode): the caller owns the
 * memo (one build), so a long-lived process (a Pulumi provider) keeps nothing between builds.
 */
export async function entriesDigest(entries: LayerEntry[], fileDigests = new Map<string, string>(), signal?: AbortSignal): Promise<string> {
  const h = createHash("sha256");
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    switch (e.type) {
      case "file":
        h.update(`f ${e.path} ${e.mode} ${e.uid ?? 0}:${e.gid ?? 0} ${e.size} ${await fileDigest(e.source, fileDigests, signal)}\n`);
        break;
      case "directory":
        h.update(`d ${e.path} ${e.mode} ${e.uid ?? 0}:${e.gid ?? 0}\n`);
        break;
      case "symlink":
        h.update(`l ${e.path} ${e.uid ?? 0}:${e.gid ?? 0} ${e.target}\n`);
        break;
      case "whiteout":
        h.update(`w ${e.path}\n`);
        break;
    }
  }
  return h.digest("hex");
}

/** A file's sha256, remembered in `memo` while the file's size, mtime and inode stay the same. */
export async function fileDigest(path: string, memo: Map<string, string>, signal?: AbortSignal): Promise<string> {
  const st = await stat(path, { bigint: true });
  const key = `${path}\0${st.size}\0${st.mtimeNs}\0${st.ino}`;
  const known = memo.get(key);
  if (known) return known;
  const h = createHash("sha256");
  // Hashing a large COPY source takes a while: an interrupted build must not wait for it.
  for await (const chunk of createReadStream(path, signal ? { signal } : {})) h.update(chunk as Buffer);
  const digest = h.digest("hex");
  memo.set(key, digest);
  return digest;
}

/**
 * COPY/ADD --chmod and --chown, applied to every entry the instruction adds, once its paths are
 * checked (checkLayerPaths). Owners must be numeric (uid[:gid]) or root: a cluster image has no
 * user database to resolve names from.
 */
export function applyCopyFlags(entries: LayerEntry[], flags: { chmod?: string; chown?: string }, where: Where): LayerEntry[] {
  checkLayerPaths(entries, where);
  let mode: number | undefined;
  if (flags.chmod !== undefined) {
    if (!/^[0-7]{3,4}$/.test(flags.chmod)) {
      throw new BuildInputError(where.file, where.line, `${where.instruction} --chmod=${flags.chmod}: expected an octal mode such as 644 or 0755`);
    }
    mode = parseInt(flags.chmod, 8);
  }
  let owner: { uid: number; gid: number } | undefined;
  if (flags.chown !== undefined) {
    const m = /^(\d+|root)(?::(\d+|root))?$/.exec(flags.chown);
    if (!m) {
      throw new BuildInputError(
        where.file,
        where.line,
        `${where.instruction} --chown=${flags.chown}: expected a numeric uid[:gid] (or root); names cannot be resolved in a cluster image`,
      );
    }
    const uid = m[1] === "root" ? 0 : Number(m[1]);
    const gid = m[2] === undefined ? uid : m[2] === "root" ? 0 : Number(m[2]);
    owner = { uid, gid };
  }
  if (mode === undefined && owner === undefined) return entries;
  return entries.map((e) => (e.type === "whiteout" ? e : { ...e, ...(mode !== undefined && e.type !== "symlink" ? { mode } : {}), ...owner }));
}
