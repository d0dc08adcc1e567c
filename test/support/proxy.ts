import * as http from "node:http";
import * as net from "node:net";

/**
 * A real HTTP forward proxy on loopback, as a company's squid is to sealant: `CONNECT host:port`
 * tunnels (counted, with their targets) and plain-HTTP requests in absolute form (counted too).
 * `hosts` is the proxy's own name resolution (e.g. registry.test -> 127.0.0.1): behind a proxy
 * the client often cannot resolve the registry's name at all, only the proxy can, which is what
 * lets a test prove a request really went through it.
 */
export interface TestProxy {
  /** http://127.0.0.1:port */
  url: string;
  /** CONNECT targets ("host:port"), in order. */
  tunnels: string[];
  /** Absolute-form requests ("GET http://..."), in order. */
  forwarded: string[];
  /** Proxy-Authorization headers received (tests check that credentials arrive, and where). */
  authorizations: string[];
  stop(): Promise<void>;
}

export async function startProxy(opts: { hosts?: Record<string, string>; requireAuth?: string } = {}): Promise<TestProxy> {
  const resolveName = (host: string): string => opts.hosts?.[host] ?? host;
  const sockets = new Set<net.Socket>();
  const state = { tunnels: [] as string[], forwarded: [] as string[], authorizations: [] as string[] };
  const authorized = (req: http.IncomingMessage): boolean => {
    const header = req.headers["proxy-authorization"];
    if (header) state.authorizations.push(header);
    return opts.requireAuth === undefined || header === `Basic ${Buffer.from(opts.requireAuth).toString("base64")}`;
  };
  const server = http.createServer((req, res) => {
    if (!authorized(req)) {
      res.writeHead(407, { "Proxy-Authenticate": 'Basic realm="test"' }).end();
      return;
    }
    let target: URL;
    try {
      target = new URL(req.url ?? "");
    } catch {
      res.writeHead(400).end("absolute-form request expected");
      return;
    }
    state.forwarded.push(`${req.method} ${target.href}`);
    const headers = { ...req.headers };
    delete headers["proxy-authorization"];
    const upstream = http.request(
      { host: resolveName(target.hostname), port: target.port || 80, method: req.method, path: `${target.pathname}${target.search}`, headers, agent: false },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("connect", (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    if (!authorized(req)) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n\r\n');
      return;
    }
    const target = req.url ?? "";
    state.tunnels.push(target);
    const m = /^(.+):(\d+)$/.exec(target);
    if (!m) {
      client.end("HTTP/1.1 400 Bad Request\r\n\r\n");
      return;
    }
    const upstream = net.connect(Number(m[2]), resolveName(m[1]!.replace(/^\[|\]$/g, "")), () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    ...state,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
