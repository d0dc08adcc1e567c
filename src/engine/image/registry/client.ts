import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import type { CredentialSource, Credentials } from "../credentials";
import { DigestMismatchError, isDigest, parseDigest, sha256, type Digest } from "../digest";
import { ACCEPT_MANIFESTS, INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MediaType } from "../media-types";
import { isLoopbackRegistry } from "../reference";
import type { Descriptor } from "../types";
import { Authenticator, basicHeader, repositoryScope, type TokenResponse } from "./auth";
import { RegistryError, bodyExcerpt, parseErrorBody } from "./errors";
import { BlobSourceError, ChunkReader, SizeMismatchError, VerifyingStream } from "./streams";
import { HttpTransport, abortError, discard, readBody, readErrorBody, type RequestBody } from "./transport";

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

const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;
const MAX_SMALL_BLOB_BYTES = 64 * 1024 * 1024;
const MAX_TOKEN_BYTES = 1024 * 1024;
const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "UND_ERR_SOCKET",
]);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const REPOSITORY_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const REGISTRY_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

interface Req {
  method: string;
  /** A path under the registry ("/v2/...") or an absolute URL (upload locations, token realms). */
  url: string | URL;
  /** Token scopes the request needs. */
  scopes: string[];
  /** Statuses that are answers; any other status is an error. */
  ok: number[];
  headers?: Record<string, string | number>;
  /** A Buffer can be replayed (auth challenge, retries); a stream cannot. */
  body?: RequestBody;
  /** false: one attempt only. */
  retry?: boolean;
  /** Do not run the registry's auth flow (token realm requests). */
  noAuth?: boolean;
  /** An explicit Authorization header (token realm requests). */
  authorization?: string;
  signal?: AbortSignal | undefined;
}

/**
 * A client of one registry (Docker Registry HTTP API v2 / OCI distribution spec): manifests,
 * blobs (streamed and verified), uploads (monolithic, chunked, cross-repository mounts), tags,
 * with anonymous, basic and bearer-token auth and retries. Safe for bounded parallel use.
 */
export class RegistryClient {
  /** The user-facing registry name (docker.io for Docker Hub); credentials are looked up by it. */
  readonly registry: string;
  /** The host[:port] requests go to (registry-1.docker.io for docker.io). */
  readonly host: string;
  private readonly transport: HttpTransport;
  private readonly auth: Authenticator;
  private readonly retries: number;
  private readonly connectRetries: number;
  private readonly baseDelay: number;
  private readonly maxDelay: number;
  private readonly maxRetryAfter: number;
  private readonly chunkedThreshold: number;
  private readonly chunkSize: number;
  private readonly insecure: boolean;
  private basePromise: Promise<URL> | undefined;

  constructor(
    registry: string,
    private readonly opts: RegistryClientOptions = {},
  ) {
    const name = registry.trim().replace(/^https?:\/\//, "").replace(/\/+$/, "");
    if (name.includes("@")) throw new Error("invalid registry name: credentials do not belong in it (use sealant login)");
    if (!REGISTRY_RE.test(name)) throw new Error(`invalid registry "${registry}": expected host[:port]`);
    this.registry = name === "index.docker.io" || name === "registry-1.docker.io" ? "docker.io" : name;
    this.host = this.registry === "docker.io" ? "registry-1.docker.io" : this.registry;
    this.insecure = opts.insecure ?? false;
    this.retries = Math.max(0, opts.retries ?? 4);
    this.connectRetries = Math.max(0, Math.min(opts.connectRetries ?? 2, this.retries));
    this.baseDelay = opts.retryBaseDelayMs ?? 250;
    this.maxDelay = opts.maxRetryDelayMs ?? 10_000;
    this.maxRetryAfter = opts.maxRetryAfterMs ?? 60_000;
    this.chunkedThreshold = opts.chunkedUploadThreshold ?? 64 * 1024 * 1024;
    this.chunkSize = opts.chunkSize ?? 16 * 1024 * 1024;
    const transportOpts: ConstructorParameters<typeof HttpTransport>[0] = {
      insecure: this.insecure,
      maxSockets: opts.maxConnections ?? 8,
      timeoutMs: opts.timeoutMs ?? 60_000,
      userAgent: opts.userAgent ?? "sealant/0.1",
    };
    if (opts.ca !== undefined) transportOpts.ca = opts.ca;
    this.transport = new HttpTransport(transportOpts);
    this.auth = new Authenticator(this.registry, opts.credentials, (realm, creds) => this.fetchToken(realm, creds));
  }

  /** Closes idle keep-alive connections. The client must not be used afterwards. */
  close(): void {
    this.transport.close();
  }

  /**
   * Checks that the registry accepts this client's credentials: `GET /v2/` with the auth flow
   * the registry asks for. Throws a RegistryError (401 with a hint) when they are refused.
   */
  async checkLogin(signal?: AbortSignal): Promise<void> {
    const res = await this.request({ method: "GET", url: "/v2/", scopes: [], ok: [200], signal });
    await discard(res.res);
  }

  async getManifest(repo: string, reference: string, accept: string = ACCEPT_MANIFESTS, signal?: AbortSignal): Promise<ManifestResponse> {
    checkRepository(repo);
    checkReference(reference);
    const res = await this.request({
      method: "GET",
      url: `/v2/${repo}/manifests/${reference}`,
      scopes: [repositoryScope(repo, "pull")],
      ok: [200],
      headers: { Accept: accept },
      signal,
    });
    const bytes = await readBody(res.res, MAX_MANIFEST_BYTES, `manifest ${this.registry}/${repo}:${reference}`);
    const digest = sha256(bytes);
    if (isDigest(reference) && reference !== digest) {
      throw new DigestMismatchError(`manifest ${this.registry}/${repo}@${reference}`, reference, digest);
    }
    const header = res.header("docker-content-digest");
    if (header && header.startsWith("sha256:") && header !== digest) {
      throw new DigestMismatchError(`manifest ${this.registry}/${repo}:${reference} (Docker-Content-Digest)`, header, digest);
    }
    const mediaType = manifestMediaType(res.header("content-type"), bytes);
    return { descriptor: { mediaType, digest, size: bytes.length }, bytes, mediaType };
  }

  /** The manifest's descriptor without its content; undefined when the registry does not have it. */
  async headManifest(repo: string, reference: string, accept: string = ACCEPT_MANIFESTS, signal?: AbortSignal): Promise<Descriptor | undefined> {
    checkRepository(repo);
    checkReference(reference);
    const res = await this.request({
      method: "HEAD",
      url: `/v2/${repo}/manifests/${reference}`,
      scopes: [repositoryScope(repo, "pull")],
      ok: [200, 404],
      headers: { Accept: accept },
      signal,
    });
    await discard(res.res);
    if (res.status === 404) return undefined;
    const header = res.header("docker-content-digest");
    const size = Number(res.header("content-length"));
    const type = res.header("content-type")?.split(";")[0]?.trim();
    if (!header || !isDigest(header) || !Number.isFinite(size) || !type || !isKnownManifestType(type)) {
      // Not enough in the headers to trust: fetch and hash it.
      return (await this.getManifest(repo, reference, accept, signal)).descriptor;
    }
    if (isDigest(reference) && reference !== header) {
      throw new DigestMismatchError(`manifest ${this.registry}/${repo}@${reference}`, reference, header);
    }
    return { mediaType: type, digest: header, size };
  }

  /** Uploads a manifest (its blobs must be there already) under a tag or its digest; returns its digest. */
  async putManifest(repo: string, tagOrDigest: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<Digest> {
    checkRepository(repo);
    checkReference(tagOrDigest);
    const digest = sha256(bytes);
    if (isDigest(tagOrDigest) && tagOrDigest !== digest) {
      throw new DigestMismatchError(`manifest for ${this.registry}/${repo}@${tagOrDigest}`, tagOrDigest, digest);
    }
    const res = await this.request({
      method: "PUT",
      url: `/v2/${repo}/manifests/${tagOrDigest}`,
      scopes: [repositoryScope(repo, "pull,push")],
      ok: [200, 201, 202],
      headers: { "Content-Type": mediaType },
      body: bytes,
      signal,
    });
    await discard(res.res);
    const header = res.header("docker-content-digest");
    if (header && header.startsWith("sha256:") && header !== digest) {
      throw new DigestMismatchError(`manifest pushed to ${this.registry}/${repo}:${tagOrDigest} (registry's digest)`, digest, header);
    }
    return digest;
  }

  async hasBlob(repo: string, digest: Digest, signal?: AbortSignal): Promise<boolean> {
    checkRepository(repo);
    parseDigest(digest);
    const res = await this.request({
      method: "HEAD",
      url: `/v2/${repo}/blobs/${digest}`,
      scopes: [repositoryScope(repo, "pull")],
      ok: [200, 404],
      signal,
    });
    await discard(res.res);
    return res.status === 200;
  }

  /**
   * Streams a blob. The stream is verified while it flows: it fails with DigestMismatchError
   * (SizeMismatchError for a wrong length) before its end if the content is not `digest`.
   * Retries cover getting the response; a failure mid-body surfaces on the stream.
   */
  async openBlob(repo: string, digest: Digest, opts: OpenBlobOptions = {}): Promise<Readable> {
    checkRepository(repo);
    parseDigest(digest);
    const res = await this.request({
      method: "GET",
      url: `/v2/${repo}/blobs/${digest}`,
      scopes: [repositoryScope(repo, "pull")],
      ok: [200],
      signal: opts.signal,
    });
    const what = `blob ${this.registry}/${repo}@${digest}`;
    const declared = Number(res.header("content-length"));
    const size = opts.size ?? (Number.isFinite(declared) ? declared : undefined);
    if (opts.size !== undefined && Number.isFinite(declared) && declared !== opts.size) {
      res.res.destroy();
      throw new SizeMismatchError(what, opts.size, declared);
    }
    const verifier = new VerifyingStream(what, digest, size, undefined, opts.verify ?? true);
    const body = res.res;
    body.on("error", (err) => verifier.destroy(new Error(`${what}: reading failed after ${verifier.bytes} bytes: ${err.message}`, { cause: err })));
    body.on("close", () => {
      if (!body.complete) verifier.destroy(new Error(`${what}: the connection closed after ${verifier.bytes} bytes`));
    });
    verifier.on("close", () => {
      if (!body.complete) body.destroy();
    });
    body.pipe(verifier);
    return verifier;
  }

  /** A whole (small) blob, verified; for configs and other JSON blobs. */
  async getBlob(repo: string, digest: Digest, opts: OpenBlobOptions & { maxBytes?: number } = {}): Promise<Buffer> {
    const stream = await this.openBlob(repo, digest, opts);
    const max = opts.maxBytes ?? MAX_SMALL_BLOB_BYTES;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) {
        stream.destroy();
        throw new Error(`blob ${this.registry}/${repo}@${digest}: more than ${max} bytes; stream it with openBlob`);
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, size);
  }

  /**
   * Makes sure the registry has a blob in `repo`: nothing to do if it exists, a cross-repository
   * mount when one of `mountFrom` has it, else an upload (one PUT, or PATCH chunks and a closing
   * PUT above the chunk threshold). `open` is called again for each retry.
   */
  async pushBlob(
    repo: string,
    desc: { digest: Digest; size: number },
    open: () => Readable,
    opts: PushBlobOptions = {},
  ): Promise<PushBlobResult> {
    checkRepository(repo);
    parseDigest(desc.digest);
    if (!Number.isSafeInteger(desc.size) || desc.size < 0) throw new Error(`pushing blob ${desc.digest}: invalid size ${desc.size}`);
    const signal = opts.signal;
    if (await this.hasBlob(repo, desc.digest, signal)) return "exists";
    const pushScope = repositoryScope(repo, "pull,push");
    let session: URL | undefined;
    for (const from of opts.mountFrom ?? []) {
      if (from === repo) continue;
      checkRepository(from);
      const res = await this.request({
        method: "POST",
        url: `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`,
        scopes: [pushScope, repositoryScope(from, "pull")],
        ok: [201, 202],
        signal,
      });
      await discard(res.res);
      if (res.status === 201) {
        if (session) await this.cancelUpload(session, pushScope);
        return "mounted";
      }
      // 202: the registry could not mount and opened an upload session instead.
      const next = this.location(res);
      if (session) await this.cancelUpload(session, pushScope);
      session = next;
    }
    const chunked = opts.chunked ?? desc.size > this.chunkedThreshold;
    const chunkSize = opts.chunkSize ?? this.chunkSize;
    if (chunked && (!Number.isSafeInteger(chunkSize) || chunkSize < 1)) throw new Error(`invalid chunk size ${chunkSize}`);
    const state = new RetryState();
    for (;;) {
      try {
        const location = session ?? (await this.startUpload(repo, signal));
        session = undefined;
        if (chunked) await this.uploadChunked(repo, location, desc, open, chunkSize, opts);
        else await this.uploadMonolithic(repo, location, desc, open, opts);
        return "uploaded";
      } catch (err) {
        const wait = this.retryDelay(err, state);
        if (wait === undefined) throw err instanceof RegistryError ? err.gaveUp(state.attempt) : err;
        this.opts.log?.(`retrying upload of ${desc.digest} to ${this.registry}/${repo} in ${wait} ms: ${(err as Error).message}`);
        await sleep(wait, this.signal(signal));
      }
    }
  }

  /** All tags of a repository (following pagination); [] when the repository does not exist. */
  async listTags(repo: string, signal?: AbortSignal): Promise<string[]> {
    checkRepository(repo);
    const tags: string[] = [];
    let next: string | URL | undefined = `/v2/${repo}/tags/list`;
    for (let page = 0; next !== undefined && page < 10_000; page++) {
      const res: Reply = await this.request({ method: "GET", url: next, scopes: [repositoryScope(repo, "pull")], ok: [200, 404], signal });
      if (res.status === 404) {
        const body = await readErrorBody(res.res);
        const errors = parseErrorBody(body);
        if (errors.some((e) => e.code === "NAME_UNKNOWN")) return [];
        throw new RegistryError({ registry: this.registry, method: "GET", path: res.path, status: 404, errors });
      }
      const body = await readBody(res.res, MAX_MANIFEST_BYTES, `tags of ${this.registry}/${repo}`);
      let parsed: { tags?: unknown };
      try {
        parsed = JSON.parse(body.toString("utf8")) as { tags?: unknown };
      } catch {
        throw new Error(`tags of ${this.registry}/${repo}: the registry answered with invalid JSON`);
      }
      if (Array.isArray(parsed.tags)) for (const t of parsed.tags) if (typeof t === "string") tags.push(t);
      const link = res.header("link");
      const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
      next = m ? new URL(m[1]!, await this.base()) : undefined;
    }
    return tags;
  }

  // ---------------------------------------------------------------- uploads

  private async startUpload(repo: string, signal: AbortSignal | undefined): Promise<URL> {
    const res = await this.request({
      method: "POST",
      url: `/v2/${repo}/blobs/uploads/`,
      scopes: [repositoryScope(repo, "pull,push")],
      ok: [202],
      signal,
    });
    await discard(res.res);
    return this.location(res);
  }

  private async uploadMonolithic(
    repo: string,
    location: URL,
    desc: { digest: Digest; size: number },
    open: () => Readable,
    opts: PushBlobOptions,
  ): Promise<void> {
    const scopes = [repositoryScope(repo, "pull,push")];
    const { source, verifier, sourceError } = this.openSource(repo, desc, open, opts);
    const url = new URL(location);
    url.searchParams.set("digest", desc.digest);
    try {
      const res = await this.request({
        method: "PUT",
        url,
        scopes,
        ok: [201, 204],
        headers: { "Content-Type": "application/octet-stream", "Content-Length": desc.size },
        body: verifier,
        retry: false,
        signal: opts.signal,
      });
      await discard(res.res);
      this.checkUploadedDigest(res, repo, desc.digest);
    } catch (err) {
      await this.cancelUpload(location, scopes[0]!);
      throw sourceError() ?? err;
    } finally {
      source.destroy();
    }
  }

  private async uploadChunked(
    repo: string,
    location: URL,
    desc: { digest: Digest; size: number },
    open: () => Readable,
    chunkSize: number,
    opts: PushBlobOptions,
  ): Promise<void> {
    const scopes = [repositoryScope(repo, "pull,push")];
    const { source, verifier, sourceError } = this.openSource(repo, desc, open, opts);
    const reader = new ChunkReader(verifier, `uploading blob ${desc.digest}`);
    let current = location;
    try {
      let offset = 0;
      while (offset < desc.size) {
        const length = Math.min(chunkSize, desc.size - offset);
        const body = Readable.from(reader.take(length, offset, desc.size), { objectMode: false });
        const res = await this.request({
          method: "PATCH",
          url: current,
          scopes,
          ok: [202, 204],
          headers: {
            "Content-Type": "application/octet-stream",
            "Content-Length": length,
            "Content-Range": `${offset}-${offset + length - 1}`,
          },
          body,
          retry: false,
          signal: opts.signal,
        });
        await discard(res.res);
        current = this.location(res);
        const range = res.header("range");
        const m = range ? /^(?:bytes=)?0-(\d+)$/.exec(range.trim()) : null;
        if (m && Number(m[1]) !== offset + length - 1) {
          throw new RegistryError({
            registry: this.registry,
            method: "PATCH",
            path: `${current.host}${current.pathname}`,
            status: res.status,
            message: `the registry holds ${Number(m[1]) + 1} bytes of the upload, expected ${offset + length}`,
          });
        }
        offset += length;
      }
      await reader.finish(desc.size);
      const url = new URL(current);
      url.searchParams.set("digest", desc.digest);
      const res = await this.request({ method: "PUT", url, scopes, ok: [201, 204], retry: false, signal: opts.signal });
      await discard(res.res);
      this.checkUploadedDigest(res, repo, desc.digest);
    } catch (err) {
      await this.cancelUpload(current, scopes[0]!);
      throw sourceError() ?? err;
    } finally {
      source.destroy();
    }
  }

  private openSource(
    repo: string,
    desc: { digest: Digest; size: number },
    open: () => Readable,
    opts: PushBlobOptions,
  ): { source: Readable; verifier: VerifyingStream; sourceError: () => Error | undefined } {
    const what = `uploading blob ${desc.digest} to ${this.registry}/${repo}`;
    const source = open();
    const verifier = new VerifyingStream(what, desc.digest, desc.size, opts.onProgress);
    let failed: Error | undefined;
    source.on("error", (err) => {
      failed = new BlobSourceError(what, err);
      verifier.destroy(failed);
    });
    source.pipe(verifier);
    return { source, verifier, sourceError: () => failed };
  }

  private checkUploadedDigest(res: Reply, repo: string, digest: Digest): void {
    const header = res.header("docker-content-digest");
    if (header && header.startsWith("sha256:") && header !== digest) {
      throw new DigestMismatchError(`blob uploaded to ${this.registry}/${repo} (registry's digest)`, digest, header);
    }
  }

  /** Best effort: an abandoned session is garbage-collected by the registry anyway. */
  private async cancelUpload(location: URL, scope: string): Promise<void> {
    try {
      const res = await this.request({ method: "DELETE", url: location, scopes: [scope], ok: [200, 202, 204, 404], retry: false });
      await discard(res.res);
    } catch {
      // ignored on purpose: cancelling is cleanup, the upload error is what matters
    }
  }

  private location(res: Reply): URL {
    const loc = res.header("location");
    if (!loc) {
      throw new RegistryError({
        registry: this.registry,
        method: res.method,
        path: res.path,
        status: res.status,
        message: "the registry sent no Location for the upload",
      });
    }
    return new URL(loc, res.url);
  }

  // ---------------------------------------------------------------- HTTP with auth and retries

  private base(): Promise<URL> {
    if (!this.basePromise) {
      const promise = this.detectBase();
      this.basePromise = promise;
      promise.catch(() => {
        if (this.basePromise === promise) this.basePromise = undefined;
      });
    }
    return this.basePromise;
  }

  private async detectBase(): Promise<URL> {
    if (this.opts.scheme) return new URL(`${this.opts.scheme}://${this.host}`);
    if (isLoopbackRegistry(this.host)) return new URL(`http://${this.host}`);
    if (!this.insecure) return new URL(`https://${this.host}`);
    // Insecure: HTTPS without verification if the registry speaks TLS, else plain HTTP.
    const https = new URL(`https://${this.host}/v2/`);
    try {
      const probe: Parameters<HttpTransport["send"]>[0] = { method: "GET", url: https };
      const signal = this.signal(undefined);
      if (signal) probe.signal = signal;
      await discard(await this.transport.send(probe));
      return new URL(`https://${this.host}`);
    } catch (err) {
      if ((err as Error).name === "AbortError") throw err;
      this.opts.log?.(`${this.host}: no TLS (${(err as Error).message}); using plain HTTP because the registry is marked insecure`);
      return new URL(`http://${this.host}`);
    }
  }

  private signal(extra: AbortSignal | undefined): AbortSignal | undefined {
    const own = this.opts.signal;
    if (own && extra) return AbortSignal.any([own, extra]);
    return own ?? extra;
  }

  private async request(r: Req): Promise<Reply> {
    const state = new RetryState();
    for (;;) {
      try {
        return await this.attempt(r);
      } catch (err) {
        // A single-attempt request leaves retrying to its caller (uploads restart as a whole).
        if (r.retry === false) throw err;
        const wait = this.retryDelay(err, state);
        if (wait === undefined) throw err instanceof RegistryError ? err.gaveUp(state.attempt) : err;
        this.opts.log?.(`retrying ${r.method} ${errPath(err)} in ${wait} ms: ${(err as Error).message}`);
        await sleep(wait, this.signal(r.signal));
      }
    }
  }

  /** Decides whether and when to retry; undefined = give up. Advances the state. */
  private retryDelay(err: unknown, state: RetryState): number | undefined {
    const attempt = state.attempt;
    if (!(err instanceof RegistryError) || err.final) return undefined;
    if (attempt > this.retries) return undefined;
    let retryable = false;
    if (err.status !== undefined) {
      retryable = err.status === 429 || err.status === 408 || (err.status >= 500 && err.status !== 501 && err.status !== 505);
    } else if (err.code !== undefined && RETRYABLE_CODES.has(err.code)) {
      retryable = true;
      if (err.code === "ECONNREFUSED") {
        state.refused++;
        if (state.refused > this.connectRetries) return undefined;
      }
    }
    if (!retryable) return undefined;
    state.attempt++;
    if (err.retryAfterMs !== undefined) return Math.min(err.retryAfterMs, this.maxRetryAfter);
    // Exponential backoff with jitter: half fixed, half random.
    const exp = Math.min(this.maxDelay, this.baseDelay * 2 ** (attempt - 1));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  private async attempt(r: Req): Promise<Reply> {
    const base = await this.base();
    const url = typeof r.url === "string" ? new URL(r.url, base) : r.url;
    const ours = !r.noAuth && url.origin === base.origin;
    const sent = r.authorization ?? (ours ? await this.auth.authorization(r.scopes) : undefined);
    let res = await this.exchange(r, url, sent);
    if (res.status === 401 && ours) {
      const challenge = res.header("www-authenticate");
      const body = await readErrorBody(res.res);
      const replayable = r.body === undefined || Buffer.isBuffer(r.body);
      const retryWith = challenge && replayable ? await this.auth.respond(challenge, r.scopes, sent) : undefined;
      if (retryWith === undefined) throw await this.unauthorized(r.method, url, 401, body, challenge);
      res = await this.exchange(r, url, retryWith);
      if (res.status === 401) {
        const again = res.header("www-authenticate");
        throw await this.unauthorized(r.method, url, 401, await readErrorBody(res.res), again);
      }
    }
    if (!r.ok.includes(res.status)) {
      if (res.status === 403 && ours) throw await this.unauthorized(r.method, url, 403, await readErrorBody(res.res), undefined);
      throw await this.statusError(res);
    }
    return res;
  }

  /** One request, following redirects for GET/HEAD; credentials never follow a redirect to another origin. */
  private async exchange(r: Req, url: URL, authorization: string | undefined): Promise<Reply> {
    let current = url;
    let auth = authorization;
    const signal = this.signal(r.signal);
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string | number> = { ...r.headers };
      if (auth) headers["Authorization"] = auth;
      let res: IncomingMessage;
      try {
        const req: Parameters<HttpTransport["send"]>[0] = { method: r.method, url: current, headers };
        if (r.body !== undefined) req.body = r.body;
        if (signal) req.signal = signal;
        res = await this.transport.send(req);
      } catch (err) {
        throw this.networkError(r.method, current, err);
      }
      const loc = headerOf(res.headers, "location");
      if ((r.method === "GET" || r.method === "HEAD") && REDIRECTS.has(res.statusCode ?? 0) && loc && hop < 5) {
        await discard(res);
        const next = new URL(loc, current);
        if (next.origin !== current.origin) auth = undefined;
        current = next;
        continue;
      }
      return new Reply(r.method, res, current);
    }
  }

  private networkError(method: string, url: URL, err: unknown): unknown {
    if (!(err instanceof Error)) return err;
    if (err.name === "AbortError" || (err as { code?: string }).code === "ABORT_ERR") return err;
    // Errors of a request body we produce (a blob being uploaded) are not network errors.
    if (err instanceof DigestMismatchError || err instanceof BlobSourceError || err instanceof RegistryError) return err;
    const code = (err as NodeJS.ErrnoException).code;
    let message = err.message;
    switch (code) {
      case "ECONNREFUSED":
        message = `connection refused: is a registry listening at ${url.host}? (${err.message})`;
        break;
      case "ENOTFOUND":
        message = `unknown host ${url.hostname}`;
        break;
      case "ECONNRESET":
        message = `connection reset by ${url.host} (${err.message})`;
        break;
      case "ETIMEDOUT":
        message = `timed out talking to ${url.host} (${err.message})`;
        break;
      case "DEPTH_ZERO_SELF_SIGNED_CERT":
      case "SELF_SIGNED_CERT_IN_CHAIN":
      case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
      case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
      case "CERT_HAS_EXPIRED":
      case "ERR_TLS_CERT_ALTNAME_INVALID":
        message = `TLS certificate of ${url.host} not trusted: ${err.message} (trust its CA, or mark the registry insecure)`;
        break;
      case "EPROTO":
      case "ERR_SSL_WRONG_VERSION_NUMBER":
        message = `TLS handshake with ${url.host} failed: ${err.message} (a plain-HTTP registry must be marked insecure)`;
        break;
      default:
        break;
    }
    const init: ConstructorParameters<typeof RegistryError>[0] = { registry: this.registry, method, path: `${url.host}${url.pathname}`, message, cause: err };
    if (code !== undefined) init.code = code;
    return new RegistryError(init);
  }

  private async statusError(res: Reply): Promise<RegistryError> {
    const body = res.method === "HEAD" ? Buffer.alloc(0) : await readErrorBody(res.res);
    if (res.method === "HEAD") await discard(res.res);
    const errors = parseErrorBody(body);
    const init: ConstructorParameters<typeof RegistryError>[0] = {
      registry: this.registry,
      method: res.method,
      path: res.path,
      status: res.status,
      errors,
    };
    if (errors.length === 0) {
      const excerpt = bodyExcerpt(body);
      if (excerpt && !excerpt.startsWith("{")) init.message = excerpt;
    }
    const retryAfter = parseRetryAfter(res.header("retry-after"));
    if (retryAfter !== undefined) init.retryAfterMs = retryAfter;
    return new RegistryError(init);
  }

  private async unauthorized(method: string, url: URL, status: number, body: Buffer, challenge: string | undefined): Promise<RegistryError> {
    const hasCreds = await this.auth.hasCredentials().catch(() => false);
    let hint = hasCreds
      ? `unauthorized: check credentials for ${this.registry} (sealant login ${this.registry})`
      : `no credentials for ${this.registry} (sealant login ${this.registry})`;
    const why = Authenticator.challengeError(challenge);
    if (hasCreds && (why === "insufficient_scope" || status === 403)) hint += `; the credentials may lack access to this repository`;
    const errors = parseErrorBody(body);
    return new RegistryError({ registry: this.registry, method, path: `${url.host}${url.pathname}`, status, errors, message: hint });
  }

  private async fetchToken(realm: URL, creds: Credentials | undefined): Promise<TokenResponse> {
    if (creds && realm.protocol === "http:" && !isLoopbackRegistry(realm.host) && !this.insecure && realm.host !== this.host) {
      throw new Error(
        `${this.registry} asks for a token from ${realm.host} over plain HTTP; refusing to send credentials there (mark the registry insecure to allow it)`,
      );
    }
    const req: Req = { method: "GET", url: realm, scopes: [], ok: [200], noAuth: true, headers: { Accept: "application/json" } };
    if (creds) req.authorization = basicHeader(creds);
    let res: Reply;
    try {
      res = await this.request(req);
    } catch (err) {
      if (err instanceof RegistryError && err.unauthorized) {
        const hint = creds
          ? `unauthorized: check credentials for ${this.registry} (sealant login ${this.registry})`
          : `no credentials for ${this.registry} (sealant login ${this.registry})`;
        throw new RegistryError({ registry: this.registry, method: "GET", path: err.path, status: err.status ?? 401, errors: err.errors, message: hint });
      }
      // Already retried here: a plain Error so the registry request that needed the token does not retry again.
      if (err instanceof RegistryError) throw new Error(`getting a token for ${this.registry}: ${err.message}`, { cause: err });
      throw err;
    }
    const body = await readBody(res.res, MAX_TOKEN_BYTES, `token from ${realm.host}`);
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(body.toString("utf8")) as typeof parsed;
    } catch {
      throw new Error(`token from ${realm.host}${realm.pathname} for ${this.registry}: not JSON`);
    }
    const token = typeof parsed.token === "string" && parsed.token ? parsed.token : parsed.access_token;
    if (typeof token !== "string" || token === "") throw new Error(`token from ${realm.host}${realm.pathname} for ${this.registry}: no token in the answer`);
    const expiresIn = typeof parsed.expires_in === "number" && parsed.expires_in > 0 ? parsed.expires_in : 60;
    return { token, expiresIn };
  }
}

class RetryState {
  attempt = 1;
  refused = 0;
}

function checkRepository(repo: string): void {
  if (repo.length > 255 || !REPOSITORY_RE.test(repo)) {
    throw new Error(`invalid repository name "${repo}": lowercase path components separated by "/" (a-z 0-9 . _ -)`);
  }
}

function checkReference(ref: string): void {
  if (ref.startsWith("sha256:")) {
    parseDigest(ref);
    return;
  }
  if (!TAG_RE.test(ref)) throw new Error(`invalid tag "${ref}": must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
}

/** A response together with the request that got it (after redirects). */
class Reply {
  constructor(
    readonly method: string,
    readonly res: IncomingMessage,
    readonly url: URL,
  ) {}

  get status(): number {
    return this.res.statusCode ?? 0;
  }

  /** host + path, no query: what error messages show. */
  get path(): string {
    return `${this.url.host}${this.url.pathname}`;
  }

  header(name: string): string | undefined {
    return headerOf(this.res.headers, name);
  }
}

function headerOf(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (Array.isArray(v)) return v.join(", ");
  return v;
}

function errPath(err: unknown): string {
  return err instanceof RegistryError ? err.path : "";
}

function isKnownManifestType(type: string): boolean {
  return MANIFEST_MEDIA_TYPES.includes(type) || INDEX_MEDIA_TYPES.includes(type);
}

/** Content-Type when it names a manifest type, else the document's own mediaType, else a guess from its shape. */
function manifestMediaType(contentType: string | undefined, bytes: Buffer): string {
  const type = contentType?.split(";")[0]?.trim();
  if (type && isKnownManifestType(type)) return type;
  try {
    const doc = JSON.parse(bytes.toString("utf8")) as { mediaType?: unknown; manifests?: unknown; config?: unknown };
    if (typeof doc.mediaType === "string" && doc.mediaType) return doc.mediaType;
    if (Array.isArray(doc.manifests)) return MediaType.ociIndex;
    if (doc.config && typeof doc.config === "object") return MediaType.ociManifest;
  } catch {
    // not JSON: keep what the registry said
  }
  return type ?? "application/octet-stream";
}

function parseRetryAfter(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - Date.now());
}

async function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) throw abortError(signal);
  try {
    await delay(ms, undefined, signal ? { signal } : {});
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
    throw err;
  }
}
