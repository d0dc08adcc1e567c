import type { Digest } from "../../image/digest";
import type { ClusterImageMetadata } from "../../image/metadata";
import { readImage, storeReader } from "../../image/read-image";
import { ImageNotFoundError } from "../../image/store";
import { pullImage } from "../../image/transfer";
import type { ImageConfig, Manifest, Platform } from "../../image/types";
import type { Session } from "../../session";
import { checkLayersForHosts } from "./layer-check";

/** The history entry the builder writes for its container-image layer (see build/steps/images.ts). */
const REGISTRY_LAYER_HISTORY = "cache container images";

export interface ClusterImageLayer {
  digest: Digest;
  size: number;
  mediaType: string;
  /** Holds only registry/ (the cached container images): sent to registry hosts only. */
  registryOnly: boolean;
  /** The uncompressed tar's digest (the config's rootfs.diff_ids): what a layer relayed as plain tar is checked against. */
  diffId?: Digest;
}

/** One platform's manifest of the cluster image, as distribution needs it. */
export interface PlatformImage {
  platform: Platform;
  manifestDigest: Digest;
  layers: ClusterImageLayer[];
  config: ImageConfig;
}

export interface ClusterImage {
  /** The reference as resolved in the local store. */
  ref: string;
  /** The digest hosts record: the index for a multi-platform image, else the manifest. */
  digest: Digest;
  metadata: ClusterImageMetadata;
  /** By `os/arch`, e.g. `linux/amd64`. */
  platforms: Map<string, PlatformImage>;
}

/**
 * The cluster image from the local store, pulled first if it is not there (unless `pull: false`). Every platform it
 * has is read, so hosts of different architectures each get theirs.
 */
export async function resolveClusterImage(session: Session, ref: string, signal?: AbortSignal, opts: { pull?: boolean } = {}): Promise<ClusterImage> {
  let stored;
  try {
    stored = await session.store.resolve(ref);
  } catch (err) {
    if (!(err instanceof ImageNotFoundError) || opts.pull === false) throw err;
    const pulled = await pullImage(session.store, ref, { clientFor: session.clientFor, ...(signal ? { signal } : {}) });
    stored = await session.store.resolve(pulled.ref);
  }
  const image = await readImage(storeReader(session.store), stored.descriptor);
  const platforms = new Map<string, PlatformImage>();
  for (const { descriptor, platform, manifest, config } of image.parts) {
    platforms.set(`${platform.os}/${platform.architecture}`, { platform, manifestDigest: descriptor.digest, layers: layersOf(manifest, config), config });
  }
  const metadata = image.parts[0]?.metadata;
  if (!metadata) throw new Error(`image ${ref} has no manifests`);
  for (const [name, platform] of platforms) await checkLayersForHosts(session.store, stored.ref, name, platform);
  return { ref: stored.ref, digest: stored.descriptor.digest, metadata, platforms };
}

/** Pairs layers with their non-empty history entries to find the registry-only layer. */
function layersOf(manifest: Manifest, config: ImageConfig): ClusterImageLayer[] {
  const history = (config.history ?? []).filter((h) => !h.empty_layer);
  const aligned = history.length === manifest.layers.length;
  const diffIds = config.rootfs?.diff_ids?.length === manifest.layers.length ? config.rootfs.diff_ids : [];
  return manifest.layers.map((l, i) => ({
    digest: l.digest,
    size: l.size,
    mediaType: l.mediaType,
    registryOnly: aligned && history[i]?.created_by === REGISTRY_LAYER_HISTORY,
    ...(diffIds[i] ? { diffId: diffIds[i] } : {}),
  }));
}

/** `uname -m` → the OCI architecture name. */
export function ociArchitecture(machine: string): string {
  const m = machine.trim();
  const map: Record<string, string> = {
    x86_64: "amd64",
    amd64: "amd64",
    aarch64: "arm64",
    arm64: "arm64",
    armv7l: "arm",
    ppc64le: "ppc64le",
    s390x: "s390x",
    riscv64: "riscv64",
  };
  return map[m] ?? m;
}

/** The platform image for a host's architecture, or undefined (validate names what exists). */
export function platformFor(image: ClusterImage, arch: string): PlatformImage | undefined {
  return image.platforms.get(`linux/${arch}`);
}
