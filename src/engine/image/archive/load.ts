/** Reading an OCI archive into the store: one pass over the tar, then the graph, then the names. */
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import * as tar from "tar-stream";
import type { Digest } from "../digest";
import type { ImageStore } from "../store";
import { readEntry } from "./entries";
import type { LoadState } from "./state";
import { ArchiveError, asArchiveError, asError } from "./errors";
import { checkGraph, parseIndexJson } from "./graph";
import { feed } from "./input";
import { checkRepositoryOption, nameImages, stripNameAnnotations } from "./naming";
import { DEFAULT_MAX_INDEX_BYTES, type LoadArchiveOptions, type LoadedImage } from "./options";

/**
 * Reads an OCI archive (plain or gzip-compressed tar; from sealant, skopeo or docker save) in
 * one pass and stores its images. Each blob is streamed into the store and verified against
 * its `blobs/sha256/<hex>` name; index.json may come before or after the blobs. Only when the
 * whole tar has been read, every blob that index.json reaches (through nested indexes and
 * manifests to configs and layers) is present with the right size, and every image has a
 * name (see the naming rules in naming.ts) are the names set. A rejected archive
 * leaves no new name in the store — at most unreferenced blobs that `gc` removes.
 *
 * Rejected: entries with `..` components, absolute paths or backslashes; links, devices and
 * fifos; names under blobs/ that aren't blobs/sha256/<64 hex>; content not matching its
 * digest; a path repeated with different content; a missing or unknown oci-layout; a missing,
 * malformed or oversize index.json; references to blobs the archive lacks.
 */
export async function loadArchive(store: ImageStore, input: string | Readable, opts: LoadArchiveOptions = {}): Promise<LoadedImage[]> {
  // Blobs land before the names: a lease keeps a concurrent gc away from them meanwhile.
  const release = await store.lease();
  try {
    return await loadLeased(store, input, opts);
  } finally {
    await release();
  }
}

async function loadLeased(store: ImageStore, input: string | Readable, opts: LoadArchiveOptions): Promise<LoadedImage[]> {
  const label = typeof input === "string" ? input : (opts.label ?? "archive stream");
  const maxIndexBytes = opts.maxIndexBytes ?? DEFAULT_MAX_INDEX_BYTES;
  opts.signal?.throwIfAborted();
  if (opts.repository !== undefined) checkRepositoryOption(opts.repository);

  const source = typeof input === "string" ? createReadStream(input) : input;
  const extract = tar.extract();
  const feeding = feed(source, extract, label);
  const onAbort = (): void => extract.destroy(asError(opts.signal?.reason ?? new Error("aborted")));
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  const state: LoadState = { label, entries: new Map(), blobs: new Map(), layoutSeen: false, progress: { bytes: 0, blobs: 0 } };
  try {
    try {
      for await (const entry of extract) {
        await readEntry(store, entry, state, opts, maxIndexBytes);
      }
    } catch (err) {
      extract.destroy(asError(err));
      throw err;
    } finally {
      await feeding;
    }
  } catch (err) {
    source.destroy();
    if (opts.signal?.aborted) throw new ArchiveError(label, undefined, `load aborted: ${(opts.signal.reason as Error)?.message ?? "aborted"}`);
    throw asArchiveError(label, err);
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }

  // The whole tar is read and every blob in it verified. Now the graph and the names.
  if (!state.layoutSeen) throw new ArchiveError(label, undefined, "has no oci-layout file: it is not an OCI image layout archive");
  if (!state.indexJson) throw new ArchiveError(label, undefined, "has no index.json: it is not an OCI image layout archive");
  const index = parseIndexJson(state.indexJson, label);
  const planned = nameImages(index, label, opts);

  const visited = new Set<Digest>();
  for (const desc of index.manifests) await checkGraph(store, desc, state, "index.json", visited, 0, maxIndexBytes);

  const loaded: LoadedImage[] = [];
  for (const p of planned) {
    opts.signal?.throwIfAborted();
    const ref = await store.setTag(p.ref, stripNameAnnotations(p.descriptor));
    const img: LoadedImage = { ref, digest: p.descriptor.digest, mediaType: p.descriptor.mediaType, size: p.descriptor.size };
    if (p.archiveName !== undefined) img.archiveName = p.archiveName;
    loaded.push(img);
  }
  return loaded;
}
