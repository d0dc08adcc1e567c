import type { Digest } from "./digest";
import type { ClusterImageMetadata } from "./metadata";
import { readImage, imageLabels, sourceReader, storeReader, type ImageParts } from "./read-image";
import { formatReference, parseReference, referenceSelector, withDigest, type Reference } from "./reference";
import type { ImageSourceFactory } from "./source";
import { ImageNotFoundError, type ImageStore } from "./store";
import { pullImage, type ClientFactory } from "./transfer";
import { platformString, type Descriptor } from "./types";

/** The local store and the registries (a Session is one). */
export interface ImageAccess {
  /** Where the store lives, for messages. */
  home: string;
  store: ImageStore;
  clientFor: ClientFactory;
  sourceFor: ImageSourceFactory;
}

export interface ResolvedImage {
  /** The digest the reference resolves to (an index for a multi-platform image). */
  digest: Digest;
  /** `registry/repo:tag@digest`. */
  repoDigest: string;
  /** What the first platform's manifest says (the image's kind, runtime, container images...). */
  metadata: ClusterImageMetadata;
  labels: Record<string, string>;
  /** e.g. ["linux/amd64", "linux/arm64"], sorted. */
  platforms: string[];
  /** Where the digest was resolved: the image's registry, or the local store. */
  source: "registry" | "store";
}

/**
 * Resolves a reference: a digest-pinned image already in the store needs no registry; else the
 * registry says what the tag points at (the image pulled when `pull` and missing locally; else
 * its manifests and configs read from the registry, no layers); an image its registry does not
 * have, or cannot be asked about, is looked up in the local store. Undefined: found nowhere. A
 * registry that cannot be asked, for an image not in the store, is an error.
 */
export async function resolveImage(
  access: ImageAccess,
  refText: string,
  opts: { pull: boolean; log?: (line: string) => void },
): Promise<ResolvedImage | undefined> {
  const log = opts.log ?? (() => undefined);
  const ref = parseReference(refText);
  if (ref.digest && (await hasImage(access.store, ref.digest))) return fromStore(access.store, ref, ref.digest, "store");
  let remote: Descriptor | undefined;
  let remoteError: Error | undefined;
  try {
    remote = await access.clientFor(ref.registry).headManifest(ref.repository, referenceSelector(ref));
  } catch (err) {
    remoteError = err as Error;
  }
  if (remote) {
    if (await hasImage(access.store, remote.digest)) return fromStore(access.store, ref, remote.digest, "registry");
    if (!opts.pull) return resolved(ref, await readImage(sourceReader(access.sourceFor(ref.registry), ref.repository), remote), "registry");
    log(`pulling ${formatReference(ref)}`);
    const pulled = await pullImage(access.store, formatReference(ref), { clientFor: access.clientFor });
    log(`pulled ${pulled.ref} ${pulled.digest}: ${pulled.blobs.transferred} blob(s) fetched, ${pulled.blobs.skipped} already present`);
    return fromStore(access.store, ref, pulled.digest, "registry");
  }
  let stored;
  try {
    stored = await access.store.resolve(formatReference(ref));
  } catch {
    if (remoteError)
      throw new Error(`image ${refText} is not in the local store (${access.home}) and its registry could not be asked: ${remoteError.message}`, {
        cause: remoteError,
      });
    return undefined;
  }
  if (remoteError) log(`registry ${ref.registry} could not be asked (${remoteError.message}); using the local store's ${stored.ref}`);
  return fromStore(access.store, ref, stored.descriptor.digest, "store");
}

/**
 * The digest a name has in the local store, when the image's top blob is there too; undefined
 * when the store has no such name.
 */
export async function storedDigest(store: ImageStore, ref: string): Promise<Digest | undefined> {
  let image;
  try {
    image = await store.resolve(ref);
  } catch (err) {
    if (err instanceof ImageNotFoundError) return undefined;
    throw err;
  }
  return (await store.hasBlob(image.descriptor.digest)) ? image.descriptor.digest : undefined;
}

/**
 * The digest a registry's tag (or, for a reference without one, its digest) names now;
 * undefined when the registry does not have it. A registry that cannot be asked throws.
 */
export async function registryDigest(clientFor: ClientFactory, ref: string): Promise<Digest | undefined> {
  const r = parseReference(ref);
  return (await clientFor(r.registry).headManifest(r.repository, r.tag ?? referenceSelector(r)))?.digest;
}

/** Whether the store holds an image with this digest under some name. */
async function hasImage(store: ImageStore, digest: Digest): Promise<boolean> {
  const hit = (await store.list()).find((i) => i.descriptor.digest === digest);
  return hit !== undefined && (await store.hasBlob(digest));
}

async function fromStore(store: ImageStore, ref: Reference, digest: Digest, source: ResolvedImage["source"]): Promise<ResolvedImage> {
  const image = await store.resolve(formatReference(withDigest(ref, digest)));
  return resolved(ref, await readImage(storeReader(store), image.descriptor), source);
}

function resolved(ref: Reference, image: ImageParts, source: ResolvedImage["source"]): ResolvedImage {
  const first = image.parts[0];
  if (!first) throw new Error(`image ${formatReference(ref)} has no manifests`);
  return {
    digest: image.descriptor.digest,
    repoDigest: formatReference(withDigest(ref, image.descriptor.digest)),
    metadata: first.metadata,
    labels: imageLabels(first),
    platforms: image.parts.map((p) => platformString(p.platform)).sort(),
    source,
  };
}
