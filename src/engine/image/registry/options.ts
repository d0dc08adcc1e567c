import type { CredentialSource } from "../credentials";
import type { Descriptor } from "../types";
import type { ProxyRule } from "./proxy";

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
  /** Which requests go through an HTTP proxy (https tunnelled with CONNECT). Loopback never is. @default direct */
  proxy?: ProxyRule;
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
  /** Retries for a request that stalled (each costs a whole stall window). @default 1 */
  timeoutRetries?: number;
  /**
   * Stall timeout: no answer within this long, or a body that delivers less than 1 KiB in this
   * long while sealant waits for it, fails the request (and is retried `timeoutRetries` times).
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Deadline of one attempt at a small document (manifest, index, config, token, tag list): a
   * registry trickling one just above the stall rate still ends. @default 120000
   */
  documentTimeoutMs?: number;
  /**
   * Overall deadline of one pull or push through this client (image/transfer reads it; its own
   * `timeoutMs` option wins). 0: none. @default 3600000 (1 h)
   */
  operationTimeoutMs?: number;
  /**
   * Send credentials to a registry that is reached over plain HTTP and is not on loopback (after
   * `insecure` fell back to HTTP). Without it such a registry is used anonymously, and a refusal
   * says the credentials were withheld. Token realms on another host never get credentials over
   * plain HTTP. @default false
   */
  allowHttpCredentials?: boolean;
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
