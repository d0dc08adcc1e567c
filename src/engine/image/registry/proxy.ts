import * as http from "node:http";
import * as https from "node:https";
import { BlockList, isIP, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import * as tls from "node:tls";

/**
 * Which HTTP proxy a request goes through: the standard `HTTPS_PROXY` / `HTTP_PROXY` /
 * `NO_PROXY` variables (upper case first, then lower case, as Go's tools and so containerd and
 * docker read them), or a proxy a registry's configuration names. Loopback is never proxied: a
 * proxy elsewhere cannot reach this machine's own registries.
 */
export interface ProxyRule {
  /** The proxy for this URL, or undefined to connect directly. */
  proxyFor(url: URL): URL | undefined;
}

export const DIRECT: ProxyRule = { proxyFor: () => undefined };

/** Reads the proxy variables once; a malformed proxy URL fails here, naming the variable (never its credentials). */
export function proxyFromEnv(env: NodeJS.ProcessEnv = process.env): ProxyRule {
  const pick = (name: string): [string, string] | undefined => {
    for (const n of [name.toUpperCase(), name.toLowerCase()]) {
      const v = env[n]?.trim();
      if (v) return [n, v];
    }
    return undefined;
  };
  const httpsVar = pick("https_proxy");
  const httpVar = pick("http_proxy");
  const httpsProxy = httpsVar ? parseProxyUrl(httpsVar[1], httpsVar[0]) : undefined;
  const httpProxy = httpVar ? parseProxyUrl(httpVar[1], httpVar[0]) : undefined;
  if (!httpsProxy && !httpProxy) return DIRECT;
  const bypass = noProxyMatcher(pick("no_proxy")?.[1] ?? "");
  return {
    proxyFor(url) {
      if (isLoopbackHost(url.hostname) || bypass(url)) return undefined;
      return url.protocol === "https:" ? httpsProxy : httpProxy;
    },
  };
}

/** One proxy for every non-loopback request (a registry's own `proxy` setting). */
export function fixedProxy(proxy: URL): ProxyRule {
  return { proxyFor: (url) => (isLoopbackHost(url.hostname) ? undefined : proxy) };
}

/** `http://[user:pass@]host[:port]`, or a bare `host:port` (taken as http). `what` names the setting in errors. */
export function parseProxyUrl(text: string, what: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`${what}: not a URL (expected http://host:port)`);
  }
  if (url.protocol !== "http:")
    throw new Error(`${what}: the proxy must be reached over http:// (got ${url.protocol}//); https to the registry is tunnelled through it`);
  if (url.hostname === "") throw new Error(`${what}: the proxy URL has no host`);
  return url;
}

/** A proxy URL as logs and errors may show it: no credentials. */
export function proxyLabel(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * NO_PROXY as Go reads it: `*` (everything), a host or domain (`example.com` and `.example.com`
 * both cover its subdomains), an optional `:port`, an IP address, or a CIDR range.
 */
export function noProxyMatcher(text: string): (url: URL) => boolean {
  const entries = text
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (entries.includes("*")) return () => true;
  const ranges = new BlockList();
  const names: Array<{ host: string; port?: string }> = [];
  for (const entry of entries) {
    const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
    const family = cidr ? isIP(cidr[1]!) : 0;
    if (cidr && family) {
      ranges.addSubnet(cidr[1]!, Number(cidr[2]), family === 6 ? "ipv6" : "ipv4");
      continue;
    }
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry);
    if (!m) continue;
    names.push({ host: m[1]!.replace(/^\[|\]$/g, "").replace(/^\*?\./, ""), ...(m[2] ? { port: m[2] } : {}) });
  }
  return (url) => {
    const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    const family = isIP(host);
    if (family && ranges.check(host, family === 6 ? "ipv6" : "ipv4")) return true;
    return names.some((n) => (n.port === undefined || n.port === port) && (host === n.host || host.endsWith(`.${n.host}`)));
  };
}

function proxyAuthorization(proxy: URL): Record<string, string> {
  if (proxy.username === "") return {};
  const user = decodeURIComponent(proxy.username);
  const pass = decodeURIComponent(proxy.password);
  return { "Proxy-Authorization": `Basic ${Buffer.from(`${user}:${pass}`, "utf8").toString("base64")}` };
}

/**
 * An https agent whose connections are tunnels: `CONNECT host:port` to the proxy, then TLS to the
 * registry over that socket (the proxy sees only ciphertext). Connections are pooled like the
 * plain agent's, so one tunnel carries many requests.
 */
export class TunnelAgent extends https.Agent {
  /** Tunnels opened so far (tests and logs). */
  tunnels = 0;

  constructor(
    private readonly proxy: URL,
    opts: https.AgentOptions & { connectTimeoutMs?: number } = {},
  ) {
    super(opts);
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 30_000;
  }

  private readonly connectTimeoutMs: number;

  override createConnection(
    options: http.ClientRequestArgs & tls.ConnectionOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const done = callback ?? (() => undefined);
    const target = `${String(options.host ?? "").replace(/^\[?(.*?)\]?$/, (_m, h: string) => (isIP(h) === 6 ? `[${h}]` : h))}:${options.port ?? 443}`;
    const via = proxyLabel(this.proxy);
    const req = http.request({
      host: this.proxy.hostname.replace(/^\[|\]$/g, ""),
      port: this.proxy.port || 80,
      method: "CONNECT",
      path: target,
      headers: { Host: target, ...proxyAuthorization(this.proxy) },
      agent: false,
    });
    let settled = false;
    const fail = (why: string, code?: string): void => {
      if (settled) return;
      settled = true;
      done(Object.assign(new Error(why), { proxy: via }, code ? { code } : {}), undefined as unknown as Duplex);
    };
    req.setTimeout(this.connectTimeoutMs, () => {
      req.destroy();
      fail(`no tunnel to ${target} within ${this.connectTimeoutMs / 1000} s`, "ETIMEDOUT");
    });
    req.once("error", (err: NodeJS.ErrnoException) => fail(`${err.message}`, err.code));
    req.once("connect", (res: http.IncomingMessage, socket: Socket, head: Buffer) => {
      req.setTimeout(0);
      if (res.statusCode !== 200 || head.length > 0) {
        socket.destroy();
        // A 502/503/504 is the proxy failing to reach the registry (worth retrying); 407 or 403 is its policy (not).
        const status = res.statusCode ?? 0;
        fail(`refused the tunnel to ${target}: HTTP ${status} ${res.statusMessage ?? ""}`.trimEnd(), status >= 502 && status <= 504 ? "ECONNRESET" : "EPROXY");
        return;
      }
      this.tunnels++;
      settled = true;
      const { host: _h, port: _p, path: _path, ...rest } = options;
      done(null, tls.connect({ ...rest, socket }));
    });
    req.end();
    return undefined;
  }
}

/**
 * Sends a request to `url` through `proxy` when there is one: https via a CONNECT tunnel (the
 * agent must be a TunnelAgent for that proxy), plain http in absolute form to the proxy itself.
 */
export function proxiedRequest(url: URL, options: http.RequestOptions, proxy: URL | undefined): http.ClientRequest {
  if (!proxy || url.protocol === "https:") return (url.protocol === "https:" ? https : http).request(url, options);
  return http.request({
    ...options,
    host: proxy.hostname.replace(/^\[|\]$/g, ""),
    port: proxy.port || 80,
    path: url.href,
    headers: { ...options.headers, Host: url.host, ...proxyAuthorization(proxy) },
  });
}
