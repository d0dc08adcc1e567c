import { DigestMismatchError, sha256, type Digest } from "../../image/digest";
import { repositoryFor, type DistributionLayout } from "../../image/distribution-layout";
import { isIndexMediaType, isManifestMediaType, MediaType } from "../../image/media-types";
import { choosePlatform, isAttestation } from "../../image/platform";
import { referenceSelector, type Reference } from "../../image/reference";
import type { ImageSource } from "../../image/source";
import { platformString, type Descriptor, type ImageConfig, type Index, type Manifest, type Platform } from "../../image/types";
import { withRetry } from "./retry";
import { asError, type CacheImagesOptions, type CacheProgressEvent } from "./types";

/**
 * Phase 1 of caching: every image's manifests resolved and checked before any blob is fetched.
 */
export interface PlatformManifest {
  digest: Digest;
  bytes: Buffer;
  manifest: Manifest;
  platform?: Platform;
}

export interface Plan {
  image: string;
  ref: Reference;
  repository: string;
  source: ImageSource;
  sourceRepository: string;
  top: { digest: Digest; bytes: Buffer; mediaType: string };
  manifests: PlatformManifest[];
}

/** Phase 1 for one image: its manifest (or index and the target platform's manifest), fetched and checked. */
export async function resolvePlan(
  image: string,
  ref: Reference,
  opts: CacheImagesOptions,
  signal: AbortSignal,
  emit: (e: CacheProgressEvent) => void,
): Promise<Plan> {
  const source = opts.sourceFor(ref.registry);
  const sourceRepository = ref.repository;
  const fetchManifest = (reference: string, expected?: Digest) =>
    withRetry(
      async () => {
        signal.throwIfAborted();
        const fetched = await source.getManifest(sourceRepository, reference);
        const digest = sha256(fetched.bytes);
        if (expected !== undefined && digest !== expected) throw new DigestMismatchError(`manifest ${reference}`, expected, digest);
        return { digest, bytes: fetched.bytes, mediaType: manifestMediaType(fetched.bytes, fetched.mediaType) };
      },
      { what: `manifest ${reference}`, image, opts, signal, emit },
    );

  const top = await fetchManifest(referenceSelector(ref), ref.digest);
  const plan: Plan = { image, ref, repository: repositoryFor(ref), source, sourceRepository, top, manifests: [] };
  if (isIndexMediaType(top.mediaType)) {
    const index = parseJson<Index>(top.bytes, "index");
    if (!Array.isArray(index.manifests)) throw new Error(`index ${top.digest} has no manifests list`);
    const chosen = choosePlatform(index.manifests, opts.platform);
    if (!chosen) {
      const available = index.manifests.filter((m) => m.platform && !isAttestation(m)).map((m) => platformString(m.platform!));
      throw new Error(`no manifest for platform ${platformString(opts.platform)} in index ${top.digest} (available: ${available.join(", ") || "none"})`);
    }
    const child = await fetchManifest(chosen.digest, chosen.digest);
    if (!isManifestMediaType(child.mediaType)) {
      throw new Error(`index ${top.digest} entry ${chosen.digest} is ${child.mediaType}, not an image manifest`);
    }
    plan.manifests.push({ digest: child.digest, bytes: child.bytes, manifest: checkManifest(child.bytes, child.digest), platform: chosen.platform! });
  } else if (isManifestMediaType(top.mediaType)) {
    plan.manifests.push({ digest: top.digest, bytes: top.bytes, manifest: checkManifest(top.bytes, top.digest) });
  } else {
    throw new Error(`unsupported manifest media type "${top.mediaType}" (${top.digest}); only OCI and Docker schema 2 images are supported`);
  }
  return plan;
}

/** The media type of a manifest: its own `mediaType` field, else the response's, else its shape. */
function manifestMediaType(bytes: Buffer, declared: string): string {
  const doc = parseJson<{ mediaType?: unknown; manifests?: unknown; config?: unknown; schemaVersion?: unknown }>(bytes, "manifest");
  if (typeof doc.mediaType === "string" && doc.mediaType !== "") return doc.mediaType;
  if (isIndexMediaType(declared) || isManifestMediaType(declared)) return declared;
  if (doc.schemaVersion === 1) return "application/vnd.docker.distribution.manifest.v1+json";
  if (Array.isArray(doc.manifests)) return MediaType.ociIndex;
  if (doc.config !== undefined) return MediaType.ociManifest;
  return declared;
}

function checkManifest(bytes: Buffer, digest: Digest): Manifest {
  const m = parseJson<Manifest>(bytes, `manifest ${digest}`);
  if (!m.config || typeof m.config.digest !== "string" || !Array.isArray(m.layers)) {
    throw new Error(`manifest ${digest} has no config or layers`);
  }
  return m;
}

/** Foreign / non-distributable layers (Windows base layers) are fetched from their URLs by the runtime, never stored. */
export function isExternalLayer(d: Descriptor): boolean {
  return (d.urls?.length ?? 0) > 0 && (d.mediaType === MediaType.dockerForeignLayerGzip || d.mediaType.includes("nondistributable"));
}

/** The platform a single-platform image's config declares, if it is readable. */
export async function configPlatform(layout: DistributionLayout, config: Descriptor): Promise<Platform | undefined> {
  if (config.mediaType !== MediaType.ociConfig && config.mediaType !== MediaType.dockerConfig) return undefined;
  try {
    const c = JSON.parse((await layout.readBlob(config.digest)).toString("utf8")) as Partial<ImageConfig>;
    if (typeof c.os !== "string" || typeof c.architecture !== "string") return undefined;
    return c.variant ? { os: c.os, architecture: c.architecture, variant: c.variant } : { os: c.os, architecture: c.architecture };
  } catch {
    return undefined;
  }
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    const v = JSON.parse(bytes.toString("utf8")) as unknown;
    if (!v || typeof v !== "object") throw new Error("not a JSON object");
    return v as T;
  } catch (err) {
    throw new Error(`${what} is not valid JSON: ${asError(err).message}`);
  }
}
