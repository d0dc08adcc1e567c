import type { Digest } from "../image/digest";
import type { ClusterImageMetadata } from "../image/metadata";
import type { ImageSourceFactory } from "../image/source";
import type { ImageStore } from "../image/store";
import type { Descriptor, Platform } from "../image/types";
import type { DownloadLimits } from "./remote-source";

export interface BuildOptions {
  store: ImageStore;
  /** The build context directory. */
  context: string;
  /** Path of the Kubefile (default: <context>/Kubefile), or its text. */
  kubefile?: string | { text: string; file?: string };
  tag: string;
  buildArgs?: Record<string, string>;
  /** Default: this machine's platform. Several produce an OCI index. */
  platforms?: Platform[];
  noCache?: boolean;
  imageListFiles?: string[];
  ignoredImageListFiles?: string[];
  /** Registry access for caching container images. */
  sourceFor: ImageSourceFactory;
  /** Makes a FROM image available in the store (pulling it when missing). */
  resolveBase: (ref: string) => Promise<Descriptor>;
  /** Size and time limits of ADD/APP http(s) downloads (defaults: 4 GiB, 60 s idle, 1 hour). */
  downloads?: DownloadLimits;
  /** Parallel container-image pulls. */
  concurrency?: number;
  signal?: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
}

export type BuildEvent =
  /** `cached` is null for steps that only set metadata and make no layer. */
  | { type: "step"; platform: string; index: number; total: number; text: string; cached: boolean | null }
  | { type: "output"; platform: string; text: string }
  | { type: "images"; platform: string; images: string[]; cached: boolean }
  | { type: "warning"; platform: string; text: string }
  /** Caching one container image: its bytes so far, and whether it is complete. */
  | { type: "image-progress"; platform: string; image: string; bytes: number; done: boolean }
  | { type: "image-retry"; platform: string; image: string; text: string };

export interface BuiltLayer {
  digest: Digest;
  size: number;
  cached: boolean;
  createdBy: string;
}

export interface BuildResult {
  ref: string;
  digest: Digest;
  descriptor: Descriptor;
  platforms: Array<{ platform: string; manifest: Digest; layers: BuiltLayer[] }>;
  metadata: ClusterImageMetadata;
}
