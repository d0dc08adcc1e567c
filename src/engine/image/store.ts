import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { Readable as ReadableStream } from "node:stream";
import { DigestingStream, DigestMismatchError, digestHex, parseDigest, sha256, type Digest } from "./digest";
import { isIndexMediaType, MediaType } from "./media-types";
import { formatReference, parseReference } from "./reference";
import { pickPlatform } from "./platform";
import type { Descriptor, Index, Manifest, Platform } from "./types";
import { exists, tempNameFor, writeFileAtomic, writeStreamAtomic } from "../util/fs";
import { withLock } from "../util/lock";
import { collectGarbage, restoreTrash } from "./store-gc";
import { Leases } from "./store-leases";
import { HashingFileSink } from "../util/worker-hash";

export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

export interface StoredImage {
  /** Fully qualified reference, e.g. docker.io/library/app:1.0 */
  ref: string;
  descriptor: Descriptor;
}

export class ImageNotFoundError extends Error {
  constructor(readonly ref: string) {
    super(`image "${ref}" not found in the local store (see: sealant images)`);
    this.name = "ImageNotFoundError";
  }
}

/** Blobs above this size are hashed and written on a worker thread (see putBlobStream). */
const OFF_THREAD_HASH_MIN = 4 << 20;

/** Where sealant keeps its state: $SEALANT_HOME, default ~/.sealant. */
export function sealantHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.SEALANT_HOME && env.SEALANT_HOME !== "" ? env.SEALANT_HOME : join(homedir(), ".sealant");
}

/**
 * The local image store: an OCI image layout (so skopeo's `oci:DIR:REF` reads it as is).
 * Blobs are content-addressed and written to a temp name, verified, then renamed; the
 * index is replaced atomically under a lock. An image becomes visible only when index.json
 * names it, which happens after all its blobs are in place, so a crash at any point leaves
 * at worst unreferenced blobs that `gc` removes.
 */
export class ImageStore {
  private readonly leases: Leases;

  private constructor(readonly root: string) {
    this.leases = new Leases(join(root, "leases"));
  }

  static async open(home: string = sealantHome()): Promise<ImageStore> {
    const root = join(home, "images");
    await mkdir(join(root, "blobs", "sha256"), { recursive: true });
    await mkdir(join(root, "pins"), { recursive: true });
    if (!(await exists(join(root, "oci-layout")))) {
      await writeFileAtomic(join(root, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    }
    if (!(await exists(join(root, "index.json")))) {
      await writeFileAtomic(join(root, "index.json"), JSON.stringify(emptyIndex()));
    }
    await restoreTrash(root);
    return new ImageStore(root);
  }

  // ---- blobs ----

  blobPath(digest: Digest): string {
    return join(this.root, "blobs", "sha256", digestHex(parseDigest(digest)));
  }

  // hasBlob, blobSize and readBlob claim the blob for the running operations first (see
  // Leases): whoever learns here that a blob is stored may reference it, and gc must know.

  async hasBlob(digest: Digest): Promise<boolean> {
    await this.leases.claim([digest]);
    return exists(this.blobPath(digest));
  }

  async blobSize(digest: Digest): Promise<number | undefined> {
    await this.leases.claim([digest]);
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch {
      return undefined;
    }
  }

  openBlob(digest: Digest): Readable {
    return createReadStream(this.blobPath(digest));
  }

  async readBlob(digest: Digest): Promise<Buffer> {
    await this.leases.claim([digest]);
    try {
      return await readFile(this.blobPath(digest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new Error(`blob ${digest} is missing from the local store`);
      throw err;
    }
  }

  async readJson<T>(digest: Digest): Promise<T> {
    return JSON.parse((await this.readBlob(digest)).toString("utf8")) as T;
  }

  /** Stores bytes; when `expected` is given the content must hash to it. */
  async putBlob(data: Buffer, expected?: Digest): Promise<{ digest: Digest; size: number }> {
    const digest = sha256(data);
    if (expected !== undefined && expected !== digest) throw new DigestMismatchError("blob", expected, digest);
    if (!(await this.hasBlob(digest))) await writeFileAtomic(this.blobPath(digest), data);
    return { digest, size: data.length };
  }

  /**
   * Streams a blob in, hashing as it goes; it is renamed into place only when the digest
   * (and size, when given) match, so a truncated or corrupt download never becomes a blob.
   */
  async putBlobStream(source: Readable, expected: { digest?: Digest; size?: number; what?: string } = {}): Promise<{ digest: Digest; size: number }> {
    const what = expected.what ?? "blob";
    let result: { digest: Digest; size: number } | undefined;
    // Digest unknown: a name of its own until it is known (writers streaming at once must not share one).
    const target = expected.digest ? this.blobPath(expected.digest) : tempNameFor(join(this.root, "blobs", "sha256", "incoming"));
    const check = (digest: Digest, size: number): void => {
      if (expected.digest !== undefined && digest !== expected.digest) throw new DigestMismatchError(what, expected.digest, digest);
      if (expected.size !== undefined && size !== expected.size) throw new Error(`${what}: size mismatch: expected ${expected.size} bytes, got ${size}`);
      result = { digest, size };
    };
    if (expected.digest !== undefined && expected.size !== undefined && expected.size > OFF_THREAD_HASH_MIN) {
      // Large blob of known digest: hashed and written on a worker thread as it streams, so the
      // main thread keeps receiving (this and other blobs) meanwhile. Still renamed only after the check.
      let sink: HashingFileSink | undefined;
      // The source may fail before writeStreamAtomic's pipeline listens (it creates the directory
      // first): the pipeline still sees the stored error; this listener only keeps it from crashing.
      source.on("error", ignoreHere);
      await writeStreamAtomic(
        target,
        source,
        () => {
          const { digest, size } = sink!.result();
          check(digest, size);
        },
        (tmp) => (sink = new HashingFileSink(tmp)),
      );
    } else {
      const hasher = new DigestingStream();
      // pipe() does not forward errors; without this a failed source would leave the write hanging.
      source.on("error", (err) => hasher.destroy(err));
      hasher.on("error", ignoreHere); // as above: reported by the pipeline, never unhandled
      await writeStreamAtomic(target, source.pipe(hasher), () => check(hasher.digest(), hasher.size));
    }
    if (!result) throw new Error("internal: blob stream ended without a digest");
    if (!expected.digest) {
      // The digest was unknown up front: move the verified file to its content address.
      await rename(target, this.blobPath(result.digest));
    }
    return result;
  }

  /** Serialises a JSON document (manifest, index, config) and stores it. */
  async putJson(value: unknown, mediaType: string, annotations?: Record<string, string>): Promise<Descriptor> {
    const bytes = Buffer.from(JSON.stringify(value));
    const { digest, size } = await this.putBlob(bytes);
    const desc: Descriptor = { mediaType, digest, size };
    if (annotations && Object.keys(annotations).length > 0) desc.annotations = annotations;
    return desc;
  }

  // ---- references ----

  async list(): Promise<StoredImage[]> {
    const index = await this.readIndex();
    const out: StoredImage[] = [];
    for (const m of index.manifests) {
      const ref = m.annotations?.[REF_NAME_ANNOTATION];
      if (ref) out.push({ ref, descriptor: stripRefName(m) });
    }
    return out.sort((a, b) => a.ref.localeCompare(b.ref));
  }

  /**
   * Finds an image by any spelling of its reference (`app:1`, `docker.io/library/app:1`),
   * by its digest, or by a unique digest prefix of at least 12 hex digits.
   */
  async resolve(ref: string): Promise<StoredImage> {
    const images = await this.list();
    const byDigest = ref.startsWith("sha256:") ? ref : /^[a-f0-9]{12,64}$/.test(ref) ? `sha256:${ref}` : undefined;
    if (byDigest) {
      const hits = images.filter((i) => i.descriptor.digest.startsWith(byDigest));
      const digests = new Set(hits.map((h) => h.descriptor.digest));
      if (digests.size > 1) throw new Error(`digest prefix "${ref}" is ambiguous: it matches ${[...digests].join(", ")}`);
      if (hits[0]) return hits[0];
    }
    let normalised: string;
    try {
      normalised = formatReference(parseReference(ref));
    } catch {
      throw new ImageNotFoundError(ref);
    }
    const hit = images.find((i) => i.ref === normalised);
    if (hit) return hit;
    // ref@digest: the digest is what matters.
    const parsed = parseReference(ref);
    if (parsed.digest) {
      const byPin = images.find((i) => i.descriptor.digest === parsed.digest);
      if (byPin) return { ref: normalised, descriptor: byPin.descriptor };
    }
    throw new ImageNotFoundError(ref);
  }

  /**
   * Points `ref` at `descriptor`, whose blobs must all be stored: checked under the lock gc
   * takes, so no name ever reaches a missing blob, whatever ran beside the writer.
   */
  async setTag(ref: string, descriptor: Descriptor): Promise<string> {
    const name = formatReference(parseReference(ref));
    await this.updateIndex(async (index) => {
      await this.checkComplete(name, descriptor);
      index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== name);
      const entry = stripRefName(descriptor);
      entry.annotations = { ...entry.annotations, [REF_NAME_ANNOTATION]: name };
      index.manifests.push(entry);
    });
    return name;
  }

  /** Removes a name; returns what it pointed at. Blobs stay until `gc`. */
  async removeTag(ref: string): Promise<StoredImage> {
    const found = await this.resolve(ref);
    await this.updateIndex((index) => {
      index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== found.ref);
    });
    return found;
  }

  // ---- pins: blobs kept alive without a name (the build cache) ----

  async pin(key: string, record: { digests: Digest[] } & Record<string, unknown>): Promise<void> {
    await writeFileAtomic(join(this.root, "pins", `${pinFileName(key)}.json`), JSON.stringify(record));
  }

  async readPin<T extends { digests: Digest[] }>(key: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(join(this.root, "pins", `${pinFileName(key)}.json`), "utf8")) as T;
    } catch {
      return undefined;
    }
  }

  /** Forgets every pin (the whole build cache); `gc` then frees what only pins kept. */
  async clearPins(): Promise<number> {
    const dir = join(this.root, "pins");
    const names = (await readdir(dir)).filter((n) => n.endsWith(".json"));
    await Promise.all(names.map((n) => rm(join(dir, n), { force: true })));
    return names.length;
  }

  // ---- graph ----

  async readIndexBlob(digest: Digest): Promise<Index> {
    return this.readJson<Index>(digest);
  }

  async readManifest(digest: Digest): Promise<Manifest> {
    return this.readJson<Manifest>(digest);
  }

  /**
   * The manifest to use for a platform: the descriptor itself when it is a manifest, else the
   * index entry matching `platform` (default: this machine's, or the only entry).
   */
  async manifestFor(desc: Descriptor, platform?: Platform): Promise<{ descriptor: Descriptor; manifest: Manifest }> {
    if (!isIndexMediaType(desc.mediaType)) {
      const manifest = await this.readManifest(desc.digest);
      if (this.leases.active) await this.claimPresent(desc.digest, [manifest.config, ...manifest.layers]);
      return { descriptor: desc, manifest };
    }
    const index = await this.readIndexBlob(desc.digest);
    const chosen = pickPlatform(index.manifests, platform);
    return this.manifestFor(chosen, platform);
  }

  /** Every blob reachable from a descriptor (itself included), parents before children. */
  async reachable(desc: Descriptor): Promise<Descriptor[]> {
    const out: Descriptor[] = [desc];
    if (isIndexMediaType(desc.mediaType)) {
      const index = await this.readIndexBlob(desc.digest);
      for (const m of index.manifests) out.push(...(await this.reachable(m)));
    } else if (desc.mediaType === MediaType.ociManifest || desc.mediaType === MediaType.dockerManifest) {
      const manifest = await this.readManifest(desc.digest);
      out.push(manifest.config, ...manifest.layers);
    }
    return out;
  }

  /** Deletes blobs no name, no pin and no running pull, load, build or merge reaches (see store-gc). */
  async gc(): Promise<{ removed: number; bytes: number }> {
    return withLock(this.root, () => collectGarbage(this, this.leases));
  }

  // ---- leases: writers in flight, so gc spares their not-yet-named blobs ----

  /** Marks an operation that writes or reuses blobs before naming them; call the result when done. */
  async lease(): Promise<() => Promise<void>> {
    return this.leases.take();
  }

  private async checkComplete(name: string, descriptor: Descriptor): Promise<void> {
    const blobs = await this.reachable(descriptor).catch((err: Error) => {
      throw new Error(`cannot name ${name}: ${err.message}`);
    });
    for (const b of blobs) {
      if (!(await exists(this.blobPath(b.digest)))) throw new Error(`cannot name ${name}: its blob ${b.digest} is missing from the local store`);
    }
  }

  /**
   * Claims the blobs of a manifest a running operation builds on (a build's base, a merge's
   * inputs), then checks they are all stored: its new image will reference them.
   */
  private async claimPresent(manifest: Digest, blobs: Descriptor[]): Promise<void> {
    await this.leases.claim(blobs.map((b) => b.digest));
    for (const b of blobs) {
      if (!(await exists(this.blobPath(b.digest)))) throw new Error(`blob ${b.digest} of manifest ${manifest} is missing from the local store`);
    }
  }

  // ---- index.json ----

  private async readIndex(): Promise<Index> {
    try {
      return JSON.parse(await readFile(join(this.root, "index.json"), "utf8")) as Index;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return emptyIndex();
      throw new Error(`local store index ${join(this.root, "index.json")} is unreadable: ${(err as Error).message}`);
    }
  }

  private async updateIndex(change: (index: Index) => void | Promise<void>): Promise<void> {
    await withLock(this.root, async () => {
      const index = await this.readIndex();
      await change(index);
      await writeFileAtomic(join(this.root, "index.json"), JSON.stringify(index, null, 2));
    });
  }
}

function emptyIndex(): Index {
  return { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
}

function stripRefName(d: Descriptor): Descriptor {
  const copy: Descriptor = { ...d };
  if (copy.annotations) {
    const { [REF_NAME_ANNOTATION]: _omit, ...rest } = copy.annotations;
    if (Object.keys(rest).length > 0) copy.annotations = rest;
    else delete copy.annotations;
  }
  return copy;
}

function pinFileName(key: string): string {
  return sha256(key).slice("sha256:".length);
}

/** Turns a Readable-compatible buffer into a stream (for callers that need `() => Readable`). */
/** An 'error' listener for a stream whose error is reported elsewhere (by a pipeline that owns it). */
function ignoreHere(): void {}

export function bufferStream(data: Buffer): Readable {
  return ReadableStream.from([data]);
}
