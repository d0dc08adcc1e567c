/** Writing images from the store as one OCI archive (names as described in naming.ts). */
import { createHash } from "node:crypto";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { parseDigest, type Digest } from "../digest";
import { MediaType } from "../media-types";
import { formatReference, parseReference } from "../reference";
import { REF_NAME_ANNOTATION, type ImageStore } from "../store";
import type { Descriptor, Index } from "../types";
import { writeStreamAtomic } from "../../util/fs";
import { asError } from "./errors";
import { CONTAINERD_IMAGE_NAME_ANNOTATION } from "./naming";
import type { ArchiveProgress, SaveArchiveOptions, SaveArchiveResult, SavedImage } from "./options";
import { drained } from "../../util/streams";

const OCI_LAYOUT = JSON.stringify({ imageLayoutVersion: "1.0.0" });
/** Fixed entry time so the same images always give a byte-identical archive. */
const ENTRY_MTIME = new Date(0);

type EntryHeader = Partial<tar.Header> & Pick<tar.Header, "name">;

/**
 * Writes the images named by `refs` (any spelling the store resolves: `app:1.0`, a full
 * reference, a digest) as one OCI archive. Blobs are streamed from the store one at a time
 * and re-verified on the way (a corrupt local blob is never shipped); a blob shared by
 * several images is written once. When `out` is a path the archive is written to a temp name
 * beside it and renamed only when complete, so `out` is either absent/its old content or a
 * whole archive. When `out` is a stream it is ended on success and destroyed on failure.
 */
export async function saveArchive(store: ImageStore, refs: string[], out: string | Writable, opts: SaveArchiveOptions = {}): Promise<SaveArchiveResult> {
  const target = typeof out === "string" ? out : "output stream";
  if (refs.length === 0) throw new Error(`saving archive ${target}: no images given`);
  opts.signal?.throwIfAborted();

  // Everything is resolved and checked before a byte is written.
  const images: SavedImage[] = [];
  const seenRefs = new Set<string>();
  const blobs = new Map<Digest, Descriptor>();
  for (const ref of refs) {
    const found = await store.resolve(ref);
    const name = archiveName(found.ref);
    if (seenRefs.has(name)) continue;
    seenRefs.add(name);
    images.push({ ref: name, descriptor: found.descriptor });
    let reachable: Descriptor[];
    try {
      reachable = await store.reachable(found.descriptor);
    } catch (err) {
      throw new Error(`saving ${name}: reading its manifests: ${(err as Error).message}`);
    }
    for (const d of reachable) {
      const digest = parseDigest(d.digest, `digest in image ${name}`);
      const known = blobs.get(digest);
      if (known && known.size !== d.size) {
        throw new Error(`saving ${name}: blob ${digest} is described with sizes ${known.size} and ${d.size}`);
      }
      if (known) continue;
      const size = await store.blobSize(digest);
      if (size === undefined) throw new Error(`saving ${name}: blob ${digest} is missing from the local store`);
      if (size !== d.size) {
        throw new Error(`saving ${name}: blob ${digest} is ${size} bytes in the local store, but its descriptor says ${d.size}`);
      }
      blobs.set(digest, d);
    }
  }

  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: images.map(({ ref, descriptor }) => ({
      ...descriptor,
      annotations: { ...descriptor.annotations, [REF_NAME_ANNOTATION]: ref, [CONTAINERD_IMAGE_NAME_ANNOTATION]: ref },
    })),
  };
  const totalBytes = [...blobs.values()].reduce((n, d) => n + d.size, 0);
  const progress: ArchiveProgress = { bytes: 0, blobs: 0, totalBytes, totalBlobs: blobs.size };

  const pack = tar.pack();
  pack.on("error", () => undefined); // reported through the output pipeline and `producer`
  const producer = (async () => {
    await writeEntry(pack, { name: "oci-layout", type: "file", mode: 0o644, mtime: ENTRY_MTIME }, Buffer.from(OCI_LAYOUT));
    await writeEntry(pack, { name: "index.json", type: "file", mode: 0o644, mtime: ENTRY_MTIME }, Buffer.from(JSON.stringify(index)));
    await writeEntry(pack, { name: "blobs/", type: "directory", mode: 0o755, mtime: ENTRY_MTIME });
    await writeEntry(pack, { name: "blobs/sha256/", type: "directory", mode: 0o755, mtime: ENTRY_MTIME });
    for (const [digest, desc] of blobs) {
      opts.signal?.throwIfAborted();
      progress.current = digest;
      const hash = createHash("sha256");
      let written = 0;
      await writeEntry(
        pack,
        { name: `blobs/sha256/${digest.slice("sha256:".length)}`, type: "file", size: desc.size, mode: 0o644, mtime: ENTRY_MTIME },
        store.openBlob(digest),
        (chunk) => {
          hash.update(chunk);
          written += chunk.length;
          progress.bytes += chunk.length;
          opts.onProgress?.({ ...progress });
        },
        () => {
          const actual = `sha256:${hash.digest("hex")}`;
          if (actual !== digest || written !== desc.size) {
            throw new Error(
              `blob ${digest} in the local store is corrupt (content hashes to ${actual}, ${written} bytes); run: sealant gc, then pull the image again`,
            );
          }
        },
      );
      progress.blobs++;
      opts.onProgress?.({ ...progress });
    }
  })().then(
    () => pack.finalize(),
    (err: unknown) => pack.destroy(asError(err)),
  );
  const onAbort = (): void => pack.destroy(asError(opts.signal?.reason ?? new Error("aborted")));
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  // A Node stream over the tar stream: errors on either side tear down both.
  const source = Readable.from(pack as unknown as AsyncIterable<Buffer>, { objectMode: false });
  try {
    if (typeof out === "string") await writeStreamAtomic(out, source);
    else await pipeline(source, out);
  } catch (err) {
    pack.destroy(asError(err));
    await producer;
    throw new Error(`saving archive ${target}: ${(err as Error).message}`, { cause: err });
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
  await producer;
  return { images, blobs: blobs.size, bytes: totalBytes };
}

/** The name written to ref.name: `repo:tag@digest` (a pinned spelling) is saved as `repo:tag`. */
function archiveName(ref: string): string {
  const parsed = parseReference(ref);
  if (parsed.digest === undefined || parsed.tag === undefined) return ref;
  return formatReference({ registry: parsed.registry, repository: parsed.repository, tag: parsed.tag });
}

/**
 * Adds one entry to the pack and resolves when the pack has taken all of it, honouring
 * backpressure; rejects if the pack is destroyed meanwhile.
 */
async function writeEntry(
  pack: tar.Pack,
  header: EntryHeader,
  body?: Buffer | AsyncIterable<Buffer>,
  onChunk?: (chunk: Buffer) => void,
  beforeEnd?: () => void,
): Promise<void> {
  if (Buffer.isBuffer(body)) header.size = body.length;
  let settle!: (err?: Error | null) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  const sink = pack.entry(header, (err) => settle(err));
  sink.on("error", () => undefined); // reported through `done`
  done.catch(() => undefined); // observed below; never unhandled
  if (header.type === "directory") return done;
  try {
    if (Buffer.isBuffer(body)) {
      sink.write(body);
    } else if (body) {
      for await (const chunk of body) {
        onChunk?.(chunk);
        if (!sink.write(chunk)) await Promise.race([drained(sink), done]);
      }
    }
    beforeEnd?.();
  } catch (err) {
    sink.destroy(asError(err));
    await done.catch(() => undefined);
    throw err;
  }
  sink.end(undefined);
  return done;
}
