import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip, gunzipSync } from "node:zlib";
import * as tar from "tar-stream";
import { BuildInputError, joinLayerPath, type Where } from "./context";
import type { LayerEntry } from "./layer-writer";

/** Whether ADD should unpack this file: a tar, optionally gzip-compressed (by content, not name). */
export async function isArchive(path: string): Promise<boolean> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    let head: Buffer = buf.subarray(0, bytesRead);
    // A gzip file is unpacked only when what it holds is a tar; a plain .gz is added as it is.
    if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) head = gunzipHead(head);
    return head.length >= 262 && head.subarray(257, 262).toString("latin1") === "ustar";
  } catch {
    return false;
  } finally {
    await fh.close();
  }
}

function gunzipHead(gz: Buffer): Buffer {
  try {
    return gunzipSync(gz, { finishFlush: 2 /* Z_SYNC_FLUSH: a prefix of the stream is enough */ });
  } catch {
    return Buffer.alloc(0);
  }
}

/**
 * Unpacks an archive for ADD into `scratch` and describes its contents as layer entries under
 * `dest`. What the layer may hold, and why (hosts unpack every layer as root with their own
 * `tar -x`: GNU tar 1.34 on most, busybox tar on some — both tried):
 *
 * - Names are relative and stay relative: a `..` component or an absolute name is refused.
 * - Symlinks are kept with their targets as written — a link is data, as COPY keeps it — but no
 *   other entry may be written through one of the archive's links (`esc -> /etc` then
 *   `esc/x`, or a hard link to `esc/x`). GNU tar turns a link with an absolute or `..` target
 *   into a placeholder until the end, so `esc/x` fails there; busybox 1.35 creates links last,
 *   so `esc/x` becomes a real directory and the link is lost; older busybox writes through.
 *   A layer with no entry under its own links unpacks the same with every tar, and only inside
 *   its directory.
 * - Hard links become copies of their source, which must be a file earlier in the same
 *   archive: busybox tar hard-links an absolute or through-a-link source to the host's own
 *   file (it linked /etc/hostname when tried), so a layer sealant writes holds no hard link.
 * - Devices, FIFOs and other special files are refused: a cluster image carries files, and a
 *   device node unpacked as root on every host is an open door.
 * - Setuid and setgid files are refused: every host would get a root-owned setuid program from
 *   someone else's archive. A Kubefile that means it sets the bit itself (`RUN chmod u+s`).
 * - Names starting `.wh.` are refused: in a layer they are whiteouts, which delete files; so
 *   are names with control characters (a newline splits a name in a host's `find | read`).
 * - The archive's owners are dropped (entries are root's, or `--chown`'s); a name that comes
 *   twice keeps its last content, but may not change type (a directory, then a link).
 */
export async function archiveEntries(archive: string, shown: string, dest: string, scratch: string, where: Where): Promise<LayerEntry[]> {
  const root = join(scratch, String(Date.now()) + Math.random().toString(16).slice(2));
  await mkdir(root, { recursive: true });
  const fail = (entry: string, why: string): never => {
    throw new BuildInputError(where.file, where.line, `${where.instruction} ${shown}: entry ${JSON.stringify(entry)} ${why}`);
  };
  const seen = new ArchiveTree(fail);
  let files = 0;
  const extract = tar.extract();
  const reading = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      const name = cleanName(h.name, fail);
      if (name === "") {
        entry.resume();
        continue;
      }
      const mode = (h.mode ?? 0o644) & 0o7777;
      switch (h.type) {
        case "directory":
          seen.add(name, h.name, { type: "directory", mode });
          entry.resume();
          break;
        case "symlink":
          if (!h.linkname) fail(h.name, "is a symlink with an empty target");
          seen.add(name, h.name, { type: "symlink", mode: 0o777, target: h.linkname! });
          entry.resume();
          break;
        case "link": {
          const from = cleanName(h.linkname ?? "", (_e, why) => fail(h.name, `is a hard link to "${h.linkname ?? ""}", which ${why}`));
          const source = seen.fileFor(from, h.name);
          seen.add(name, h.name, { ...source });
          entry.resume();
          break;
        }
        case "file":
        case "contiguous-file": {
          if (mode & 0o6000) {
            fail(
              h.name,
              `is ${mode & 0o4000 ? "setuid" : "setgid"} (mode ${mode.toString(8)}): ADD does not carry setuid/setgid bits from an archive onto every host; clear them, or set them on purpose with RUN chmod`,
            );
          }
          seen.checkPlace(name, h.name);
          const file = join(root, String(++files));
          await pipeline(entry, createWriteStream(file));
          seen.add(name, h.name, { type: "file", mode, size: h.size ?? 0, source: file });
          break;
        }
        default:
          fail(h.name, `is a ${h.type ?? "special file"}: only files, directories and symlinks can be added to a cluster image`);
      }
    }
  })();
  const src = createReadStream(archive);
  const gz = await isGzip(archive);
  const feeding = gz ? pipeline(src, createGunzip(), extract) : pipeline(src, extract);
  feeding.catch(() => undefined); // awaited below, after the entries
  try {
    await reading;
  } catch (err) {
    extract.destroy();
    src.destroy();
    await feeding.catch(() => undefined);
    if (err instanceof BuildInputError) throw err;
    throw unreadable(where, shown, gz, err);
  }
  await feeding.catch((err: unknown) => {
    throw unreadable(where, shown, gz, err);
  });
  return seen.entries().map((e) => ({ ...e, path: joinLayerPath(dest, e.path) }) as LayerEntry);
}

function unreadable(where: Where, shown: string, gz: boolean, err: unknown): BuildInputError {
  const message = (err as Error)?.message ?? String(err);
  return new BuildInputError(
    where.file,
    where.line,
    `${where.instruction} ${shown}: the ${gz ? "gzip'd " : ""}tar archive is truncated or corrupt (${message})`,
  );
}

/** An entry without its place in the layer yet. */
type Described =
  { type: "file"; mode: number; size: number; source: string } | { type: "directory"; mode: number } | { type: "symlink"; mode: number; target: string };

/** The archive as read so far: each clean name's latest entry, in first-seen order. */
class ArchiveTree {
  private readonly byName = new Map<string, Described>();
  /** Every directory some entry is inside of (named by an entry or not). */
  private readonly holding = new Set<string>();

  constructor(private readonly fail: (entry: string, why: string) => never) {}

  /** Refuses a name under a link or a file of this archive (nothing is written through a link). */
  checkPlace(name: string, raw: string): void {
    const parts = name.split("/");
    for (let i = 1; i < parts.length; i++) {
      const above = parts.slice(0, i).join("/");
      const there = this.byName.get(above);
      if (there?.type === "symlink") {
        this.fail(raw, `is under "${above}", a symlink to "${there.target}" in the same archive: ADD does not write through links`);
      }
      if (there?.type === "file") this.fail(raw, `is under "${above}", which the archive made a file`);
    }
  }

  add(name: string, raw: string, entry: Described): void {
    this.checkPlace(name, raw);
    if (name.split("/").pop()!.startsWith(".wh.")) this.fail(raw, "has a name starting with .wh., which a layer reserves for whiteouts (deletions)");
    const before = this.byName.get(name);
    if (before && before.type !== entry.type) this.fail(raw, `comes twice in the archive, as a ${before.type} and then as a ${entry.type}`);
    if (entry.type !== "directory" && this.holding.has(name)) this.fail(raw, `is a ${entry.type}, but earlier entries of the archive are inside it`);
    this.byName.set(name, entry);
    const parts = name.split("/");
    for (let i = 1; i < parts.length; i++) this.holding.add(parts.slice(0, i).join("/"));
  }

  /** A hard link's source: a file already read, not under a link. */
  fileFor(from: string, raw: string): Described {
    this.checkPlace(from, raw);
    const source = this.byName.get(from);
    if (source?.type !== "file") {
      this.fail(
        raw,
        `is a hard link to "${from}", which is not a file earlier in the archive (${source ? `it is a ${source.type}` : "no such entry before it"})`,
      );
    }
    return source!;
  }

  entries(): Array<Described & { path: string }> {
    return [...this.byName].map(([path, e]) => ({ ...e, path }));
  }
}

/** The entry's name without `./` and trailing `/`; `..` components and absolute names are refused. */
function cleanName(raw: string, fail: (entry: string, why: string) => never): string {
  // A newline splits the name in every host script that reads names line by line (find | while read).
  if (/[\u0000-\u001f\u007f]/.test(raw)) fail(raw, "has a control character in its name");
  if (raw.startsWith("/")) fail(raw, "has an absolute name: archive names must be relative to where ADD unpacks them");
  const parts = raw.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) fail(raw, 'has a ".." component, which would leave where ADD unpacks it');
  return parts.join("/");
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
