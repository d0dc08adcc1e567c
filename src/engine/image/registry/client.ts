import type { Readable } from "node:stream";
import { DigestMismatchError, isDigest, parseDigest, sha256, type Digest } from "../digest";
import { ACCEPT_MANIFESTS, INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MediaType } from "../media-types";
import type { Descriptor } from "../types";
import { repositoryScope } from "./auth";
import { RegistryError, parseErrorBody } from "./errors";
import type { ManifestResponse, OpenBlobOptions, PushBlobOptions, PushBlobResult, RegistryClientOptions } from "./options";
import { RegistryHttp, type Reply } from "./requests";
import { SizeMismatchError, VerifyingStream } from "./streams";
import { discard, readBody, readErrorBody } from "./transport";
import { uploadBlob, type UploadSizes } from "./uploads";
import { checkReference, checkRepository, parseRegistryName } from "./validate";

const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;
const MAX_SMALL_BLOB_BYTES = 64 * 1024 * 1024;

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
  private readonly http: RegistryHttp;
  private readonly uploadSizes: UploadSizes;

  constructor(registry: string, opts: RegistryClientOptions = {}) {
    const name = parseRegistryName(registry);
    this.registry = name.registry;
    this.host = name.host;
    this.http = new RegistryHttp(name, opts);
    this.uploadSizes = {
      chunkedThreshold: opts.chunkedUploadThreshold ?? 64 * 1024 * 1024,
      chunkSize: opts.chunkSize ?? 16 * 1024 * 1024,
    };
  }

  /** Closes idle keep-alive connections. The client must not be used afterwards. */
  close(): void {
    this.http.close();
  }

  /**
   * Checks that the registry accepts this client's credentials: `GET /v2/` with the auth flow
   * the registry asks for. Throws a RegistryError (401 with a hint) when they are refused.
   */
  async checkLogin(signal?: AbortSignal): Promise<void> {
    const res = await this.http.request({ method: "GET", url: "/v2/", scopes: [], ok: [200], signal });
    await discard(res.res);
  }

  async getManifest(repo: string, reference: string, accept: string = ACCEPT_MANIFESTS, signal?: AbortSignal): Promise<ManifestResponse> {
    checkRepository(repo);
    checkReference(reference);
    const res = await this.http.request({
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
    const res = await this.http.request({
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
    const res = await this.http.request({
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
    const res = await this.http.request({
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
    const res = await this.http.request({
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
  async pushBlob(repo: string, desc: { digest: Digest; size: number }, open: () => Readable, opts: PushBlobOptions = {}): Promise<PushBlobResult> {
    checkRepository(repo);
    parseDigest(desc.digest);
    if (!Number.isSafeInteger(desc.size) || desc.size < 0) throw new Error(`pushing blob ${desc.digest}: invalid size ${desc.size}`);
    if (await this.hasBlob(repo, desc.digest, opts.signal)) return "exists";
    return uploadBlob(this.http, repo, desc, open, opts, this.uploadSizes);
  }

  /** All tags of a repository (following pagination); [] when the repository does not exist. */
  async listTags(repo: string, signal?: AbortSignal): Promise<string[]> {
    checkRepository(repo);
    const tags: string[] = [];
    let next: string | URL | undefined = `/v2/${repo}/tags/list`;
    for (let page = 0; next !== undefined && page < 10_000; page++) {
      const res: Reply = await this.http.request({ method: "GET", url: next, scopes: [repositoryScope(repo, "pull")], ok: [200, 404], signal });
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
      next = m ? new URL(m[1]!, await this.http.base()) : undefined;
    }
    return tags;
  }
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
