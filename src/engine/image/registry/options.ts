import type { CredentialSource } from "../credentials";
import type { Descriptor } from "../types";

export interface RegistryClientOptions {
  /**
   * For registries that are not on loopback: allow plain HTTP, or HTTPS without certificate
   * verification (HTTPS is tried first). Loopback registries always use plain HTTP.
   * @default false
   */
  insecure?: boolean;
  /** Force a scheme instead of the loopback/insecure rules (e.g. a loopback registry with TLS). */
  scheme?: "http" | "https";
  /** Extra trusted CA certificates (PEM), in addition to the system CAs. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Where credentials come from; asked once, lazily, with the user-facing registry name. @default anonymous */
  credentials?: CredentialSource;
  /** Retries after the first attempt for 429, 5xx and connection errors. @default 4 */
  retries?: number;
  /** Retries for ECONNREFUSED (a registry that is down rarely comes back within seconds). @default 2 */
  connectRetries?: number;
  /** First backoff delay; doubles per attempt, with jitter. @default 250 */
  retryBaseDelayMs?: number;
  /** Cap of the computed backoff delay. @default 10000 */
  maxRetryDelayMs?: number;
  /** Cap of a delay asked for by Retry-After. @default 60000 */
  maxRetryAfterMs?: number;
  /** Socket idle timeout. @default 60000 */
  timeoutMs?: number;
  /** Parallel connections to one origin; further requests wait. @default 8 */
  maxConnections?: number;
  /** Blobs larger than this are uploaded in chunks (PATCH); smaller ones with one PUT. @default 64 MiB */
  chunkedUploadThreshold?: number;
  /** @default 16 MiB */
  chunkSize?: number;
  signal?: AbortSignal;
  /** @default "sealant/0.1" */
  userAgent?: string;
  /** Receives retry notices; never credentials. */
  log?: (message: string) => void;
}

export interface ManifestResponse {
  descriptor: Descriptor;
  bytes: Buffer;
  mediaType: string;
}

export interface OpenBlobOptions {
  /** Expected size; a different length fails the stream. */
  size?: number;
  /**
   * false: the caller verifies the digest itself while writing (the store and the registry
   * layout both do), so the stream only checks the size and hashing is not done twice.
   * @default true
   */
  verify?: boolean;
  signal?: AbortSignal;
}

export interface PushBlobOptions {
  /** Repositories on the same registry that may hold the blob: tried with a cross-repository mount first. */
  mountFrom?: string[];
  /** Force (true) or forbid (false) a chunked upload; by default chunked above the client's threshold. */
  chunked?: boolean;
  chunkSize?: number;
  /** Bytes of the blob read and sent so far in the current attempt. */
  onProgress?(bytes: number): void;
  signal?: AbortSignal;
}

export type PushBlobResult = "exists" | "mounted" | "uploaded";
