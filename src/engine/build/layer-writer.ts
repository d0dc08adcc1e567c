import { createReadStream } from "node:fs";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import * as tar from "tar-stream";
import { DigestingStream, type Digest } from "../image/digest";
import { MediaType } from "../image/media-types";
import type { ImageStore } from "../image/store";
import type { Descriptor } from "../image/types";

/** One entry of a layer, described independently of where its bytes live. */
export type LayerEntry =
  | ({ type: "file"; path: string; mode: number; size: number; source: string } & Owner)
  | ({ type: "directory"; path: string; mode: number } & Owner)
  | ({ type: "symlink"; path: string; mode: number; target: string } & Owner)
  /** OCI whiteout: `path` was deleted by this layer. */
  | { type: "whiteout"; path: string };

/** Numeric owner of an entry; root (0) when absent. */
export interface Owner {
  uid?: number;
  gid?: number;
}

export interface WrittenLayer {
  descriptor: Descriptor;
  /** sha256 of the uncompressed tar, as the image config's rootfs.diff_ids wants. */
  diffId: Digest;
  entries: number;
}

/**
 * Every build produces the same bytes for the same entries: entries sorted by path, owner
 * root:root, mtime fixed at the epoch, no user/group names, and gzip with a fixed level and
 * no header timestamp. That is what makes a digest reproducible on any machine.
 */
const FIXED_MTIME = new Date(0);
const GZIP_LEVEL = 6;

export async function writeLayer(store: ImageStore, entries: LayerEntry[]): Promise<WrittenLayer> {
  const sorted = [...entries].sort((a, b) => compareTarPaths(a.path, b.path));
  const pack = tar.pack();
  const diff = new DigestingStream();
  const gzip = createGzip({ level: GZIP_LEVEL });
  const compressed = new PassThrough();
  const stored = store.putBlobStream(compressed, { what: "layer" });
  const piping = pipeline(pack, diff, gzip, compressed);
  const feeding = (async () => {
    for (const entry of sorted) await addEntry(pack, entry);
    pack.finalize();
  })();
  // Surface the first failure, but let all three settle so no stream dangles.
  const [fed, piped, blob] = await Promise.allSettled([feeding, piping, stored]);
  for (const r of [fed, piped, blob]) if (r.status === "rejected") throw r.reason;
  const { digest, size } = (blob as PromiseFulfilledResult<{ digest: Digest; size: number }>).value;
  return { descriptor: { mediaType: MediaType.ociLayerGzip, digest, size }, diffId: diff.digest(), entries: sorted.length };
}

function addEntry(pack: tar.Pack, entry: LayerEntry): Promise<void> {
  const owner: Owner = entry.type === "whiteout" ? {} : entry;
  const base = { mtime: FIXED_MTIME, uid: owner.uid ?? 0, gid: owner.gid ?? 0, uname: "", gname: "" };
  switch (entry.type) {
    case "directory":
      return writeHeaderOnly(pack, { ...base, name: `${entry.path}/`, type: "directory", mode: entry.mode });
    case "symlink":
      return writeHeaderOnly(pack, { ...base, name: entry.path, type: "symlink", mode: entry.mode, linkname: entry.target });
    case "whiteout": {
      const slash = entry.path.lastIndexOf("/");
      const name = slash < 0 ? `.wh.${entry.path}` : `${entry.path.slice(0, slash)}/.wh.${entry.path.slice(slash + 1)}`;
      // An empty buffer, not just a header: a file entry without one waits for data forever.
      return new Promise((resolve, reject) => {
        pack.entry({ ...base, name, type: "file", mode: 0o644, size: 0 }, "", (err) => (err ? reject(err) : resolve()));
      });
    }
    case "file":
      return new Promise((resolve, reject) => {
        const sink = pack.entry({ ...base, name: entry.path, type: "file", mode: entry.mode, size: entry.size }, (err) =>
          err ? reject(new Error(`adding ${entry.path} to layer: ${err.message}`)) : resolve(),
        );
        sink.on("error", () => undefined); // reported through the entry's callback above
        const src: Readable = createReadStream(entry.source);
        src.on("error", (err) => {
          sink.destroy(err);
          reject(new Error(`reading ${entry.source}: ${err.message}`));
        });
        src.pipe(sink);
      });
  }
}

function writeHeaderOnly(pack: tar.Pack, header: Parameters<tar.Pack["entry"]>[0]): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, (err) => (err ? reject(err) : resolve()));
  });
}

/** Byte-wise order so the result does not depend on the machine's locale. */
function compareTarPaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Every ancestor directory of the given paths (so extraction never invents modes). */
export function parentDirectories(paths: Iterable<string>): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
  }
  return [...dirs];
}
