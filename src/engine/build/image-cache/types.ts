import type { Digest } from "../../image/digest";
import type { ImageSourceFactory } from "../../image/source";
import type { Platform } from "../../image/types";

/** What cacheImages takes, reports and returns (see index.ts), and how it fails. */
export interface CacheImagesOptions {
  /**
   * fsync what is written. The builder caches into its scratch rootfs, which a crash discards
   * whole, and turns this off. @default true
   */
  durable?: boolean;
  /** Where to fetch from, per source registry. */
  sourceFor: ImageSourceFactory;
  /** The platform of the cluster; picked from multi-platform indexes. */
  platform: Platform;
  /** Parallel manifest resolutions and parallel blob downloads. @default 6 */
  concurrency?: number;
  /**
   * Retries of a transient failure: a blob stream that breaks or fails verification, and 5xx,
   * 429 or network errors of sources that do not retry themselves (RegistryClient does). @default 3
   */
  retries?: number;
  /** First backoff delay; doubled per retry, with jitter, at most 10 s. @default 250 */
  retryDelayMs?: number;
  signal?: AbortSignal;
  onProgress?(event: CacheProgressEvent): void;
}

export type CacheProgressEvent =
  | { type: "started"; image: string }
  /** `bytes` were just downloaded for `image` (blob `digest`); `imageBytes` is the running total for the image. */
  | { type: "bytes"; image: string; digest: Digest; bytes: number; imageBytes: number }
  | { type: "retry"; image: string; what: string; attempt: number; delayMs: number; error: string }
  | { type: "warning"; image: string; message: string }
  | { type: "done"; image: string; repository: string; digest: Digest; downloadedBytes: number };

export interface CachedImage {
  /** The image as normalised, e.g. `docker.io/library/nginx:1.25`. */
  image: string;
  /** Repository inside the cluster registry, e.g. `docker.io/library/nginx` (see repositoryFor). */
  repository: string;
  /** Digest the image's tag points at: the upstream manifest or index digest, unchanged. */
  digest: Digest;
  mediaType: string;
  /** Platforms whose manifests are stored, e.g. `["linux/amd64"]`. */
  platforms: string[];
}

/** An image that could not be cached: names the image, its registry and the cause. */
export class ImageCacheError extends Error {
  constructor(readonly failures: Array<{ image: string; registry?: string; error: Error }>) {
    super(formatFailures(failures), failures.length === 1 ? { cause: failures[0]!.error } : undefined);
    this.name = "ImageCacheError";
  }
}

export const DEFAULT_CONCURRENCY = 6;
export const DEFAULT_RETRIES = 3;
export const DEFAULT_RETRY_DELAY_MS = 250;
export const MAX_RETRY_DELAY_MS = 10_000;

export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function formatFailures(failures: Array<{ image: string; registry?: string; error: Error }>): string {
  const line = (f: { image: string; registry?: string; error: Error }): string => `${f.image}${f.registry ? ` (from ${f.registry})` : ""}: ${f.error.message}`;
  if (failures.length === 1) return `caching image ${line(failures[0]!)}`;
  return `caching ${failures.length} images failed:\n` + failures.map((f) => `  ${line(f)}`).join("\n");
}
