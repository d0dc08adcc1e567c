import * as http from "node:http";
import * as https from "node:https";
import type { Readable } from "node:stream";
import * as tls from "node:tls";
import { abortError } from "../../util/abort";
import { DIRECT, TunnelAgent, proxiedRequest, proxyLabel, type ProxyRule } from "./proxy";

export { abortError };

export interface TransportOptions {
  /** Skip TLS verification (https). */
  insecure: boolean;
  /** Extra CA certificates (PEM), trusted in addition to the system ones. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Connections per origin; further requests queue. */
  maxSockets: number;
  /** Stall timeout: no answer within this long, or a body delivering under 1 KiB in this long, fails with ETIMEDOUT. */
  timeoutMs: number;
  userAgent: string;
  /** Which requests go through an HTTP proxy. @default direct */
  proxy?: ProxyRule;
}

export type RequestBody = Buffer | Readable;

export interface SendOptions {
  method: string;
  url: URL;
  headers?: Record<string, string | number>;
  body?: RequestBody;
  signal?: AbortSignal;
}

/**
 * One HTTP exchange at a time, over keep-alive agents (one for http, one for https) so
 * requests reuse connections. No retries, no auth, no redirects: the client layers those.
 * The caller must consume or destroy every response body it gets.
 */
export class HttpTransport {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  /** Per proxy: a tunnelling agent for https and a keep-alive agent for plain http to the proxy. */
  private readonly proxyAgents = new Map<string, { https: TunnelAgent; http: http.Agent }>();
  private readonly common: http.AgentOptions;
  private readonly tlsOptions: https.AgentOptions;

  constructor(private readonly opts: TransportOptions) {
    this.common = { keepAlive: true, maxSockets: opts.maxSockets, maxFreeSockets: opts.maxSockets, scheduling: "lifo" as const };
    this.httpAgent = new http.Agent(this.common);
    let ca: Array<string | Buffer> | undefined;
    if (opts.ca !== undefined) ca = [...tls.rootCertificates, ...(Array.isArray(opts.ca) ? opts.ca : [opts.ca])];
    this.tlsOptions = { rejectUnauthorized: !opts.insecure, ...(ca ? { ca } : {}) };
    this.httpsAgent = new https.Agent({ ...this.common, ...this.tlsOptions });
  }

  /** Tunnels opened through proxies so far. */
  get tunnels(): number {
    let n = 0;
    for (const a of this.proxyAgents.values()) n += a.https.tunnels;
    return n;
  }

  private agentFor(url: URL): { agent: http.Agent; proxy: URL | undefined } {
    const isHttps = url.protocol === "https:";
    const proxy = (this.opts.proxy ?? DIRECT).proxyFor(url);
    if (!proxy) return { agent: isHttps ? this.httpsAgent : this.httpAgent, proxy };
    let agents = this.proxyAgents.get(proxy.href);
    if (!agents) {
      agents = {
        https: new TunnelAgent(proxy, { ...this.common, ...this.tlsOptions, connectTimeoutMs: this.opts.timeoutMs }),
        http: new http.Agent(this.common),
      };
      this.proxyAgents.set(proxy.href, agents);
    }
    return { agent: isHttps ? agents.https : agents.http, proxy };
  }

  send(req: SendOptions): Promise<http.IncomingMessage> {
    const { url, method, body, signal } = req;
    const isHttps = url.protocol === "https:";
    if (!isHttps && url.protocol !== "http:") return Promise.reject(new Error(`unsupported URL scheme in ${url.protocol}//${url.host}`));
    const headers: Record<string, string | number> = { "User-Agent": this.opts.userAgent, ...req.headers };
    if (Buffer.isBuffer(body) && !hasHeader(headers, "content-length")) headers["Content-Length"] = body.length;
    if (body === undefined && (method === "PUT" || method === "POST" || method === "PATCH") && !hasHeader(headers, "content-length")) {
      headers["Content-Length"] = 0;
    }
    return new Promise<http.IncomingMessage>((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      const { agent, proxy } = this.agentFor(url);
      const options: http.RequestOptions = { method, headers, agent, timeout: this.opts.timeoutMs };
      if (signal) options.signal = signal;
      const request = proxiedRequest(url, options, proxy);
      let settled = false;
      request.on("timeout", () => {
        request.destroy(Object.assign(new Error(`no answer from ${url.host} within ${seconds(this.opts.timeoutMs)}`), { code: "ETIMEDOUT" }));
      });
      request.on("error", (err) => {
        if (settled) return;
        settled = true;
        if (body && !Buffer.isBuffer(body)) body.destroy();
        // Plain http through a proxy: a connection error is the proxy's, and says so.
        if (proxy && !isHttps && (err as { proxy?: string }).proxy === undefined) Object.assign(err, { proxy: proxyLabel(proxy) });
        reject(signal?.aborted ? abortError(signal) : err);
      });
      request.on("response", (res) => {
        settled = true;
        // From here the body's own watchdog judges progress; the socket's idle timer would also
        // fire while a slow consumer (not the registry) holds the flow back.
        request.setTimeout(0);
        watchBody(res, this.opts.timeoutMs, url.host);
        resolve(res);
      });
      if (body === undefined) {
        request.end();
      } else if (Buffer.isBuffer(body)) {
        request.end(body);
      } else {
        body.on("error", (err) => request.destroy(err));
        body.pipe(request);
      }
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    for (const a of this.proxyAgents.values()) {
      a.https.destroy();
      a.http.destroy();
    }
  }
}

/** Fewer bytes than this in one stall window, while nothing waits for the consumer, is a stalled body. */
const STALL_MIN_BYTES = 1024;

/**
 * Fails a response body that stalls or trickles: fewer than STALL_MIN_BYTES arriving in a window
 * of `windowMs`, while its buffer is empty (a full buffer means the consumer is slow, not the
 * registry). The body is destroyed with an ETIMEDOUT error that its consumer sees. An 'error'
 * listener is always attached, so a body destroyed before its consumer listens cannot crash the
 * process with an unhandled 'error' event.
 */
function watchBody(res: http.IncomingMessage, windowMs: number, host: string): void {
  res.on("error", () => undefined);
  const socket = res.socket;
  if (!socket || windowMs <= 0) return;
  let last = socket.bytesRead;
  const timer = setInterval(() => {
    const now = socket.bytesRead;
    const got = now - last;
    last = now;
    if (got < STALL_MIN_BYTES && res.readableLength === 0 && !res.complete) {
      clearInterval(timer);
      res.destroy(Object.assign(new Error(`stalled: ${got} bytes from ${host} in ${seconds(windowMs)}`), { code: "ETIMEDOUT" }));
    }
  }, windowMs);
  timer.unref();
  const stop = (): void => clearInterval(timer);
  res.once("end", stop);
  res.once("close", stop);
}

export function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

function hasHeader(headers: Record<string, unknown>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

/**
 * Reads a whole response body, failing when it exceeds `limit` bytes. A body that breaks off
 * fails with what `broken` makes of the error and the bytes received so far.
 */
export async function readBody(
  res: http.IncomingMessage,
  limit: number,
  what: string,
  broken: (err: unknown, received: number) => unknown = (err) => err,
): Promise<Buffer> {
  const declared = Number(res.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    res.destroy();
    throw new Error(`${what}: the registry announces ${declared} bytes, more than the limit of ${limit} for this kind of document`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) break;
      chunks.push(chunk);
    }
  } catch (err) {
    throw broken(err, size);
  }
  if (size > limit) {
    res.destroy();
    throw new Error(`${what}: more than the limit of ${limit} bytes for this kind of document`);
  }
  if (!res.complete) throw broken(new Error("the body ended early"), size);
  return Buffer.concat(chunks, size);
}

/** Reads at most `limit` bytes of an error body and discards the rest; never throws. */
export async function readErrorBody(res: http.IncomingMessage, limit = 64 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (size < limit) {
        chunks.push(chunk);
        size += chunk.length;
      }
    }
  } catch {
    // A broken error body still leaves us the status.
  }
  return Buffer.concat(chunks).subarray(0, limit);
}

/** Discards a response body so the connection can be reused. */
export function discard(res: http.IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    // Even a complete response must be read to its end, or the socket never returns to the agent.
    if (res.readableEnded || res.destroyed) {
      resolve();
      return;
    }
    res.on("end", resolve);
    res.on("error", () => resolve());
    res.on("close", resolve);
    res.resume();
  });
}
