import { Readable } from "node:stream";
import { DigestMismatchError, type Digest } from "../digest";
import { repositoryScope } from "./auth";
import { RegistryError } from "./errors";
import type { PushBlobOptions } from "./options";
import type { RegistryHttp, Reply } from "./requests";
import { BlobSourceError, ChunkReader, VerifyingStream } from "./streams";
import { discard } from "./transport";
import { checkRepository } from "./validate";

/** What uploads need of the client: its name for messages, requests, and the retry loop for a whole upload. */
export type UploadHttp = Pick<RegistryHttp, "registry" | "request" | "retrying">;

export interface UploadSizes {
  /** Blobs larger than this go up in chunks unless the caller says otherwise. */
  chunkedThreshold: number;
  chunkSize: number;
}

interface BlobDesc {
  digest: Digest;
  size: number;
}

/**
 * Gets a blob the registry does not have yet into `repo`: a cross-repository mount when one of
 * `mountFrom` has it, else an upload (one PUT, or PATCH chunks and a closing PUT above the chunk
 * threshold). `open` is called again for each retry.
 */
export async function uploadBlob(
  http: UploadHttp,
  repo: string,
  desc: BlobDesc,
  open: () => Readable,
  opts: PushBlobOptions,
  sizes: UploadSizes,
): Promise<"mounted" | "uploaded"> {
  const signal = opts.signal;
  const mount = await mountBlob(http, repo, desc.digest, opts.mountFrom ?? [], signal);
  if (mount === "mounted") return "mounted";
  let session = mount;
  const chunked = opts.chunked ?? desc.size > sizes.chunkedThreshold;
  const chunkSize = opts.chunkSize ?? sizes.chunkSize;
  if (chunked && (!Number.isSafeInteger(chunkSize) || chunkSize < 1)) throw new Error(`invalid chunk size ${chunkSize}`);
  return http.retrying(
    async () => {
      const location = session ?? (await startUpload(http, repo, signal));
      session = undefined;
      if (chunked) await uploadChunked(http, repo, location, desc, open, chunkSize, opts);
      else await uploadMonolithic(http, repo, location, desc, open, opts);
      return "uploaded" as const;
    },
    () => `upload of ${desc.digest} to ${http.registry}/${repo}`,
    signal,
  );
}

/**
 * Tries a cross-repository mount from each of `from` in turn: "mounted", or the upload session the
 * registry opened instead of the last mount (to upload into), or undefined when nothing was tried.
 */
async function mountBlob(
  http: UploadHttp,
  repo: string,
  digest: Digest,
  from: string[],
  signal: AbortSignal | undefined,
): Promise<"mounted" | URL | undefined> {
  const pushScope = repositoryScope(repo, "pull,push");
  let session: URL | undefined;
  for (const source of from) {
    if (source === repo) continue;
    checkRepository(source);
    const res = await http.request({
      method: "POST",
      url: `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(source)}`,
      scopes: [pushScope, repositoryScope(source, "pull")],
      ok: [201, 202],
      signal,
    });
    await discard(res.res);
    if (res.status === 201) {
      if (session) await cancelUpload(http, session, pushScope);
      return "mounted";
    }
    // 202: the registry could not mount and opened an upload session instead.
    const next = uploadLocation(http, res);
    if (session) await cancelUpload(http, session, pushScope);
    session = next;
  }
  return session;
}

async function startUpload(http: UploadHttp, repo: string, signal: AbortSignal | undefined): Promise<URL> {
  const res = await http.request({
    method: "POST",
    url: `/v2/${repo}/blobs/uploads/`,
    scopes: [repositoryScope(repo, "pull,push")],
    ok: [202],
    signal,
  });
  await discard(res.res);
  return uploadLocation(http, res);
}

async function uploadMonolithic(http: UploadHttp, repo: string, location: URL, desc: BlobDesc, open: () => Readable, opts: PushBlobOptions): Promise<void> {
  const scopes = [repositoryScope(repo, "pull,push")];
  const { source, verifier, sourceError } = openSource(http, repo, desc, open, opts);
  const url = new URL(location);
  url.searchParams.set("digest", desc.digest);
  try {
    const res = await http.request({
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
    checkUploadedDigest(http, res, repo, desc.digest);
  } catch (err) {
    await cancelUpload(http, location, scopes[0]!);
    throw sourceError() ?? err;
  } finally {
    source.destroy();
  }
}

async function uploadChunked(
  http: UploadHttp,
  repo: string,
  location: URL,
  desc: BlobDesc,
  open: () => Readable,
  chunkSize: number,
  opts: PushBlobOptions,
): Promise<void> {
  const scopes = [repositoryScope(repo, "pull,push")];
  const { source, verifier, sourceError } = openSource(http, repo, desc, open, opts);
  const reader = new ChunkReader(verifier, `uploading blob ${desc.digest}`);
  let current = location;
  try {
    let offset = 0;
    while (offset < desc.size) {
      const length = Math.min(chunkSize, desc.size - offset);
      const body = Readable.from(reader.take(length, offset, desc.size), { objectMode: false });
      const res = await http.request({
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
      current = uploadLocation(http, res);
      const range = res.header("range");
      const m = range ? /^(?:bytes=)?0-(\d+)$/.exec(range.trim()) : null;
      if (m && Number(m[1]) !== offset + length - 1) {
        throw new RegistryError({
          registry: http.registry,
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
    const res = await http.request({ method: "PUT", url, scopes, ok: [201, 204], retry: false, signal: opts.signal });
    await discard(res.res);
    checkUploadedDigest(http, res, repo, desc.digest);
  } catch (err) {
    await cancelUpload(http, current, scopes[0]!);
    throw sourceError() ?? err;
  } finally {
    source.destroy();
  }
}

function openSource(
  http: UploadHttp,
  repo: string,
  desc: BlobDesc,
  open: () => Readable,
  opts: PushBlobOptions,
): { source: Readable; verifier: VerifyingStream; sourceError: () => Error | undefined } {
  const what = `uploading blob ${desc.digest} to ${http.registry}/${repo}`;
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

function checkUploadedDigest(http: UploadHttp, res: Reply, repo: string, digest: Digest): void {
  const header = res.header("docker-content-digest");
  if (header && header.startsWith("sha256:") && header !== digest) {
    throw new DigestMismatchError(`blob uploaded to ${http.registry}/${repo} (registry's digest)`, digest, header);
  }
}

/** Best effort: an abandoned session is garbage-collected by the registry anyway. */
async function cancelUpload(http: UploadHttp, location: URL, scope: string): Promise<void> {
  try {
    const res = await http.request({ method: "DELETE", url: location, scopes: [scope], ok: [200, 202, 204, 404], retry: false });
    await discard(res.res);
  } catch {
    // ignored on purpose: cancelling is cleanup, the upload error is what matters
  }
}

function uploadLocation(http: UploadHttp, res: Reply): URL {
  const loc = res.header("location");
  if (!loc) {
    throw new RegistryError({
      registry: http.registry,
      method: res.method,
      path: res.path,
      status: res.status,
      message: "the registry sent no Location for the upload",
    });
  }
  return new URL(loc, res.url);
}
