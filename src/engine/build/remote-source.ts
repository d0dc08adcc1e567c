import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { basename, join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { proxiedRequest, proxyFromEnv, proxyLabel, TunnelAgent, type ProxyRule } from "../image/registry/proxy";
import { BuildInputError, type Where } from "./context";

/** Bounds on one http(s) download of ADD or APP/CNI/CSI; every field has a default. */
export interface DownloadLimits {
  /** Largest body accepted, in bytes. @default 4 GiB */
  maxBytes?: number;
  /** From the request to the response headers, and the longest pause between two chunks. @default 60 s */
  idleTimeoutMs?: number;
  /** The whole download, redirects included. @default 1 hour */
  timeoutMs?: number;
}

export const DEFAULT_DOWNLOAD_LIMITS: Required<DownloadLimits> = { maxBytes: 4 * 1024 ** 3, idleTimeoutMs: 60_000, timeoutMs: 3_600_000 };

const MAX_REDIRECTS = 5;
/** ADD --checksum's `<algorithm>:<hex>`, checked by the parser (kubefile/copy-add.ts). */
const CHECKSUM = /^(sha256|sha384|sha512):([0-9a-f]+)$/;

export function isRemoteSource(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/**
 * Downloads an ADD or APP source given as an http(s) URL into the build's scratch space, named
 * after the URL's last path component. The body goes to a temporary name and is renamed only when
 * complete, within `limits` and matching `checksum` (hashed while it streams): a failed download
 * leaves nothing. Redirects are followed (at most 5, never from https to http). The build cache
 * hashes the downloaded content, so a changed file at the same URL rebuilds the layer.
 */
export async function downloadSource(
  url: string,
  scratch: string,
  where: Where,
  opts: { signal?: AbortSignal; checksum?: string; limits?: DownloadLimits; proxy?: ProxyRule } = {},
): Promise<string> {
  const limits = { ...DEFAULT_DOWNLOAD_LIMITS, ...opts.limits };
  const fail = (why: string): BuildInputError => new BuildInputError(where.file, where.line, `${where.instruction} ${url}: ${why}`);
  let name: string;
  try {
    name = basename(decodeURIComponent(new URL(url).pathname));
  } catch {
    throw new BuildInputError(where.file, where.line, `${where.instruction} source "${url}" is not a valid URL`);
  }
  // `%2e%2e` decodes to "..": the file must stay a file inside its download directory.
  if (name === "" || name === "." || name === ".." || name.includes("\u0000")) name = "download";
  const expected = opts.checksum ? CHECKSUM.exec(opts.checksum) : null;
  const dir = join(scratch, `download-${Math.random().toString(16).slice(2)}`);
  await mkdir(dir, { recursive: true });
  const partial = join(dir, `.${name}.partial`);
  // One controller for the build's signal, the overall deadline and the idle timer.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort(opts.signal?.reason);
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const deadline = setTimeout(() => stop.abort(fail(`the download took longer than ${seconds(limits.timeoutMs)}`)), limits.timeoutMs);
  try {
    opts.signal?.throwIfAborted();
    // HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as for registry requests (loopback is never proxied).
    const proxy = opts.proxy ?? proxyFromEnv(process.env);
    const res = await follow(new URL(url), stop.signal, limits, fail, proxy);
    const length = Number(res.headers["content-length"] ?? NaN);
    if (length > limits.maxBytes) {
      res.destroy();
      throw fail(`the server announces ${length} bytes, more than the limit of ${limits.maxBytes} bytes`);
    }
    const hash = createHash(expected?.[1] ?? "sha256");
    let received = 0;
    const idle = setTimeout(() => stop.abort(fail(`no data for ${seconds(limits.idleTimeoutMs)}`)), limits.idleTimeoutMs);
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        received += chunk.length;
        if (received > limits.maxBytes) return done(fail(`the body is larger than the limit of ${limits.maxBytes} bytes`));
        idle.refresh();
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(res, meter, createWriteStream(partial), { signal: stop.signal });
    } catch (err) {
      throw stop.signal.aborted ? stop.signal.reason : err instanceof BuildInputError ? err : fail(`download failed: ${(err as Error).message}`);
    } finally {
      clearTimeout(idle);
    }
    if (expected) {
      const got = hash.digest("hex");
      if (got !== expected[2]) throw fail(`checksum mismatch: expected ${expected[1]}:${expected[2]}, got ${expected[1]}:${got}`);
    }
    const target = join(dir, name);
    await rename(partial, target);
    return target;
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  } finally {
    clearTimeout(deadline);
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

/** GET `url`, following redirects; the response of the last one, which must be 2xx. */
async function follow(
  url: URL,
  signal: AbortSignal,
  limits: Required<DownloadLimits>,
  fail: (why: string) => BuildInputError,
  proxy: ProxyRule,
): Promise<IncomingMessage> {
  for (let hop = 0; ; hop++) {
    const res = await get(url, signal, limits.idleTimeoutMs, fail, proxy.proxyFor(url));
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (hop === MAX_REDIRECTS) throw fail(`more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(res.headers.location, url);
      if (next.protocol !== "http:" && next.protocol !== "https:") throw fail(`redirected to a ${next.protocol} URL, which cannot be downloaded`);
      // Content asked for over TLS must not silently arrive in plain text.
      if (url.protocol === "https:" && next.protocol === "http:") throw fail(`redirected from https to plain http (${next.host}); refused`);
      url = next;
      continue;
    }
    if (status < 200 || status >= 300) {
      res.resume();
      throw fail(`download failed: HTTP ${status} ${res.statusMessage ?? ""}`.trimEnd());
    }
    return res;
  }
}

function get(url: URL, signal: AbortSignal, idleTimeoutMs: number, fail: (why: string) => BuildInputError, proxy: URL | undefined): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const headers = { "user-agent": "sealant", "accept-encoding": "identity" };
    // One tunnel per download: no pool outlives it.
    const agent = proxy && url.protocol === "https:" ? new TunnelAgent(proxy, { keepAlive: false, connectTimeoutMs: idleTimeoutMs }) : undefined;
    const req = proxiedRequest(url, { method: "GET", signal, headers, ...(agent ? { agent } : {}) }, proxy);
    const via = proxy ? ` (through proxy ${proxyLabel(proxy)})` : "";
    // Connecting and waiting for the headers count as idle time too.
    const waiting = setTimeout(() => req.destroy(fail(`no response for ${seconds(idleTimeoutMs)}`)), idleTimeoutMs);
    req.on("response", (res) => {
      clearTimeout(waiting);
      resolve(res);
    });
    req.on("error", (err) => {
      clearTimeout(waiting);
      reject(signal.aborted ? signal.reason : err instanceof BuildInputError ? err : fail(`download failed${via}: ${err.message}`));
    });
    req.end();
  });
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
