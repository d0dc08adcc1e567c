import type { Readable } from "node:stream";
import type { Digest } from "./digest";
import type { Descriptor } from "./types";

export interface FetchedManifest {
  descriptor: Descriptor;
  bytes: Buffer;
  mediaType: string;
}

/**
 * Where images are read from: one registry (the RegistryClient implements it) or anything
 * shaped like one. Blob streams must be verified against their digest by the implementation.
 */
export interface ImageSource {
  getManifest(repository: string, reference: string): Promise<FetchedManifest>;
  /**
   * `verify: false` is for callers that hash what they write anyway (both stores do); the
   * stream then checks only the size.
   */
  openBlob(repository: string, digest: Digest, opts?: { size?: number; verify?: boolean }): Promise<Readable>;
}

/** Gives the ImageSource for a registry host (`docker.io`, `quay.io`, `127.0.0.1:5000`). */
export type ImageSourceFactory = (registry: string) => ImageSource;
