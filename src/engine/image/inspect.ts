import type { Digest } from "./digest";
import type { ClusterImageMetadata } from "./metadata";
import { readImage, storeReader } from "./read-image";
import type { ImageStore, StoredImage } from "./store";
import { platformString, type ImageConfig, type Manifest } from "./types";

export interface InspectedPlatform {
  platform: string;
  manifestDigest: Digest;
  manifest: Manifest;
  config: ImageConfig;
  layers: Array<{ digest: Digest; size: number; mediaType: string; createdBy?: string }>;
  labels: Record<string, string>;
  metadata: ClusterImageMetadata;
  size: number;
}

export interface ImageInspection {
  ref: string;
  digest: Digest;
  mediaType: string;
  platforms: InspectedPlatform[];
  /** Container images inside (union over platforms). */
  containerImages: string[];
  /** Bytes of all distinct blobs (manifests, configs, layers). */
  totalSize: number;
}

export async function inspectImage(store: ImageStore, ref: string): Promise<ImageInspection> {
  const image = await store.resolve(ref);
  const { parts } = await readImage(storeReader(store), image.descriptor);
  const platforms: InspectedPlatform[] = parts.map(({ descriptor, platform, manifest, config, metadata }) => {
    const created = (config.history ?? []).filter((h) => !h.empty_layer);
    return {
      platform: platformString(platform),
      manifestDigest: descriptor.digest,
      manifest,
      config,
      layers: manifest.layers.map((l, i) => ({
        digest: l.digest,
        size: l.size,
        mediaType: l.mediaType,
        ...(created[i]?.created_by ? { createdBy: created[i]!.created_by! } : {}),
      })),
      labels: config.config?.Labels ?? {},
      metadata,
      size: manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0),
    };
  });
  const containerImages = [...new Set(platforms.flatMap((p) => p.metadata.containerImages.map((c) => c.image)))].sort();
  return {
    ref: image.ref,
    digest: image.descriptor.digest,
    mediaType: image.descriptor.mediaType,
    platforms,
    containerImages,
    totalSize: await totalSize(store, image),
  };
}

export async function totalSize(store: ImageStore, image: StoredImage): Promise<number> {
  const seen = new Map<string, number>();
  for (const d of await store.reachable(image.descriptor)) seen.set(d.digest, d.size);
  return [...seen.values()].reduce((a, b) => a + b, 0);
}

export interface ImageSummary {
  ref: string;
  digest: Digest;
  kind: string;
  platforms: string[];
  size: number;
}

export async function listImages(store: ImageStore): Promise<ImageSummary[]> {
  const out: ImageSummary[] = [];
  for (const image of await store.list()) {
    try {
      const info = await inspectImage(store, image.ref);
      out.push({
        ref: image.ref,
        digest: image.descriptor.digest,
        kind: info.platforms[0]?.metadata.kind ?? "unknown",
        platforms: info.platforms.map((p) => p.platform),
        size: info.totalSize,
      });
    } catch (err) {
      out.push({ ref: image.ref, digest: image.descriptor.digest, kind: `broken: ${(err as Error).message}`, platforms: [], size: 0 });
    }
  }
  return out;
}
