import type { Readable } from "node:stream";
import { DigestMismatchError, isDigest, parseDigest, sha256, type Digest } from "../digest";
import { ACCEPT_MANIFESTS, INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES } from "../media-types";
import type { Descriptor } from "../types";
import { repositoryScope } from "./auth";
import { MAX_DOCUMENT_BYTES, checkDocumentSize, parseManifestDocument } from "../schemas";
import { RegistryError, bodyError, parseErrorBody } from "./errors";
import type { ManifestResponse, OpenBlobOptions, PushBlobOptions, PushBlobResult, RegistryClientOptions } from "./options";
import { RegistryHttp } from "./requests";
import { SizeMismatchError, VerifyingStream } from "./streams";
import { discard } from "./transport";
import { uploadBlob, type UploadSizes } from "./uploads";
import { checkReference, checkRepository, parseRegistryName } from "./validate";

const MAX_TAG_PAGE_BYTES = 8 * 1024 * 1024;

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

  constructor(
    registry: string,
    private readonly opts: RegistryClientOptions = {},
  ) {
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
    const withheld = await this.http.credentialsWithheld();
    if (withheld) throw new Error(`login ${this.registry}: ${withheld}`);
    const res = await this.http.request({ method: "GET", url: "/v2/", scopes: [], ok: [200], signal });
    await discard(res.res);
  }

  /** The overall deadline of one pull or push through this client, in ms (0: none). */
  get operationTimeoutMs(): number {
    return this.opts.operationTimeoutMs ?? 3_600_000;
  }

  async getManifest(repo: string, reference: string, accept: string = ACCEPT_MANIFESTS, signal?: AbortSignal): Promise<ManifestResponse> {
    checkRepository(repo);
    checkReference(reference);
    const what = `manifest ${this.registry}/${repo}${isDigest(reference) ? "@" : ":"}${reference}`;
    const { reply: res, body: bytes } = await this.http.document(
      { method: "GET", url: `/v2/${repo}/manifests/${reference}`, scopes: [repositoryScope(repo, "pull")], ok: [200], headers: { Accept: accept }, signal },
      MAX_DOCUMENT_BYTES,
      what,
    );
    const digest = sha256(bytes);
    if (isDigest(reference) && reference !== digest) {
      throw new DigestMismatchError(`manifest ${this.registry}/${repo}@${reference}`, reference, digest);
    }
    const header = res.header("docker-content-digest");
    if (header && header.startsWith("sha256:") && header !== digest) {
      throw new DigestMismatchError(`manifest ${this.registry}/${repo}:${reference} (Docker-Content-Digest)`, header, digest);
    }
    // Checked here, once, so nothing downstream reads a field of a document that lacks it.
    const { mediaType } = parseManifestDocument(bytes, what, res.header("content-type")?.split(";")[0]?.trim());
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
    const declared = Number(res.header("content-length") ?? Number.NaN);
    const size = opts.size ?? (Number.isFinite(declared) ? declared : undefined);
    if (opts.size !== undefined && Number.isFinite(declared) && declared !== opts.size) {
      res.res.destroy();
      throw new SizeMismatchError(what, opts.size, declared);
    }
    const verifier = new VerifyingStream(what, digest, size, undefined, opts.verify ?? true);
    const body = res.res;
    // A body that breaks off fails the stream with a RegistryError carrying a network code, so
    // fetchBlob can fetch it again; the message names the blob and how far it got.
    const broken = (err: Error) => {
      const mapped = bodyError(this.registry, "GET", res.url, err, verifier.bytes, size);
      if (mapped instanceof RegistryError) mapped.message = `${what}: ${mapped.message.slice(mapped.message.indexOf(": ") + 2)}`;
      return mapped as Error;
    };
    body.on("error", (err) => verifier.destroy(broken(err)));
    body.on("close", () => {
      if (!body.complete) verifier.destroy(broken(new Error("the connection closed")));
    });
    verifier.on("close", () => {
      if (!body.complete) body.destroy();
    });
    body.pipe(verifier);
    return verifier;
  }

  /**
   * Streams a blob into `consume`, fetching it again from the start when the connection breaks
   * off or stalls (under the retry policy); a digest or size mismatch, or an error of `consume`'s
   * own, is not retried. `consume` must read the stream to its end or fail.
   */
  fetchBlob<T>(repo: string, digest: Digest, opts: OpenBlobOptions, consume: (stream: Readable) => Promise<T>): Promise<T> {
    return this.http.retrying(
      async () => consume(await this.openBlob(repo, digest, opts)),
      (err) => (err instanceof RegistryError ? `GET ${err.path}` : `blob ${digest}`),
      opts.signal,
    );
  }

  /** A whole (small) blob, verified; for configs and other JSON blobs (at most 4 MiB unless `maxBytes` says otherwise). */
  async getBlob(repo: string, digest: Digest, opts: OpenBlobOptions & { maxBytes?: number } = {}): Promise<Buffer> {
    const max = opts.maxBytes ?? MAX_DOCUMENT_BYTES;
    const what = `blob ${this.registry}/${repo}@${digest}`;
    if (opts.size !== undefined) checkDocumentSize(opts.size, what);
    return this.fetchBlob(repo, digest, opts, async (stream) => {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > max) {
          stream.destroy();
          throw new Error(`${what}: more than ${max} bytes; stream it with openBlob`);
        }
        chunks.push(chunk);
      }
      return Buffer.concat(chunks, size);
    });
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
      const { reply: res, body } = await this.http.document(
        { method: "GET", url: next, scopes: [repositoryScope(repo, "pull")], ok: [200, 404], signal },
        MAX_TAG_PAGE_BYTES,
        `tags of ${this.registry}/${repo}`,
      );
      if (res.status === 404) {
        const errors = parseErrorBody(body);
        if (errors.some((e) => e.code === "NAME_UNKNOWN")) return [];
        throw new RegistryError({ registry: this.registry, method: "GET", path: res.path, status: 404, errors });
      }
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
