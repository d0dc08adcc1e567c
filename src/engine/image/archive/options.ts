/** The public option, progress and result types of saveArchive and loadArchive. */
import type { Digest } from "../digest";
import type { Descriptor } from "../types";

/** index.json (and any manifest or nested index) larger than this is rejected. */
export const DEFAULT_MAX_INDEX_BYTES = 16 * 1024 * 1024;

export interface ArchiveProgress {
  /** Blob bytes written (save) or stored (load) so far. */
  bytes: number;
  /** Blobs completed so far. */
  blobs: number;
  /** Known when saving. */
  totalBytes?: number;
  totalBlobs?: number;
  /** The blob being transferred. */
  current?: Digest;
}

export interface SaveArchiveOptions {
  onProgress?: (p: ArchiveProgress) => void;
  signal?: AbortSignal;
}

export interface SavedImage {
  /** The fully qualified reference written to the archive's ref.name annotation. */
  ref: string;
  descriptor: Descriptor;
}

export interface SaveArchiveResult {
  images: SavedImage[];
  /** Distinct blobs written (shared blobs once). */
  blobs: number;
  /** Sum of the blob sizes written. */
  bytes: number;
}

export interface LoadArchiveOptions {
  /**
   * Store the archive's only image under this reference, whatever name the archive gives it
   * (`sealant load --tag`). An error when the archive holds several images: use `names`.
   */
  tag?: string;
  /**
   * Repository for images the archive names by a bare tag (skopeo's `oci-archive:x.tar:1.0`):
   * `app` + `1.0` → docker.io/library/app:1.0. Must not carry a tag or digest itself.
   */
  repository?: string;
  /** Explicit names: key is the archive's ref.name (or the image digest), value the reference to store it under. */
  names?: Record<string, string>;
  /** How to call the archive in errors when `input` is a stream (default "archive stream"). */
  label?: string;
  /** Cap for index.json and for every manifest/index blob that is parsed. Default 16 MiB. */
  maxIndexBytes?: number;
  onProgress?: (p: ArchiveProgress) => void;
  signal?: AbortSignal;
}

export interface LoadedImage {
  /** The fully qualified reference the image is now stored under. */
  ref: string;
  digest: Digest;
  mediaType: string;
  size: number;
  /** The image's ref.name in the archive, if it had one. */
  archiveName?: string;
}
