/**
 * A misbehaving registry for tests: a small node:http(s) server on 127.0.0.1 that speaks enough of
 * the distribution API to serve (and accept) a real one-layer image, and misbehaves in the way
 * the repository's first path component names: `drop-mid-blob/x`, `trickle/x`, `not-json/x`, ...
 * (BEHAVIOURS lists them all). Any other repository is served correctly.
 *
 * A second plain-HTTP listener (`tokenHost`) is a token realm on "another host": it records the
 * Authorization headers it is sent, so tests can prove where credentials went.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import * as tar from "tar-stream";

const execFileP = promisify(execFile);

export const BEHAVIOURS = {
  "drop-mid-blob": "a layer GET sends its headers and half the bytes, then the connection is closed",
  "drop-mid-manifest": "a manifest GET sends its headers and half the bytes, then the connection is closed",
  trickle: "a layer GET sends one byte every 2 s (trickleMs)",
  "trickle-manifest": "a manifest GET sends one byte every 2 s (trickleMs)",
  stall: "a manifest GET is never answered",
  "stall-blob": "a layer GET sends its headers, then nothing",
  "not-json": "the manifest is an HTML page served as an OCI manifest",
  "no-layers": "the manifest has no layers field",
  "bad-digest": "the manifest's layer digest is sha256:../../../etc/passwd",
  "wrong-mediatype": "the manifest's mediaType is text/html",
  "wrong-content-type": "an index served with an image manifest's Content-Type",
  "wrong-size": "the manifest says the layer is 10 GiB",
  "wrong-digest": "the layer's bytes do not hash to its digest",
  "huge-manifest": "a 64 MiB manifest without Content-Length",
  "huge-config": "the manifest says the config is 64 MiB",
  "config-garbage": "the config is JSON without rootfs",
  index: "a valid index with one linux/amd64 manifest",
  "index-garbage": "an index whose manifests are not descriptors",
  "empty-index": "an index that lists no manifest",
  "redirect-loop": "every request redirects to itself",
  "redirect-file": "every request redirects to file:///etc/passwd",
  "realm-not-url": "a bearer challenge whose realm is not a URL",
  "duplicate-digest": "the manifest lists the layer twice, with two sizes",
  "500": "every request under the repository answers 500 with an HTML page",
  "bad-token": "a bearer challenge whose realm answers with something that is not a token",
  "realm-other-host-http": "a bearer challenge whose realm is the plain-HTTP token listener (realmHost)",
  basic: "Basic auth (the users option); otherwise correct",
  "echo-credentials": "Basic auth; every authorised request fails with a body echoing the Authorization header",
  "drop-upload": "a blob upload PUT reads some bytes, then the connection is closed",
  "stall-upload": "a blob upload PUT is never answered",
} as const;

export type Behaviour = keyof typeof BEHAVIOURS;

export interface HostileRegistryOptions {
  /** Serve HTTPS with a self-signed certificate (PEM in `tlsCert`) for these names (default 127.0.0.1, localhost). */
  tls?: { names?: string[] };
  /** For `basic`, `echo-credentials` and the realms: accepted users. */
  users?: Array<{ username: string; password: string }>;
  /** `GET /v2/` asks for Basic credentials of `users` too (what `sealant login` checks). @default false */
  baseAuth?: boolean;
  /** host[:port] the `realm-other-host-http` challenge names (default: the token listener's 127.0.0.1:port). */
  realmHost?: string;
  /** Delay between trickled bytes. @default 2000 */
  trickleMs?: number;
  /** Random bytes in the layer's one file (incompressible: the layer is a little larger). @default 200 KiB */
  layerBytes?: number;
}

export interface HostileRegistry {
  /** 127.0.0.1:port */
  host: string;
  port: number;
  tlsCert?: string;
  /** The plain-HTTP token listener ("another host"): 127.0.0.1:port. */
  tokenHost: string;
  /** The image every correct repository serves under any tag. */
  image: { manifestDigest: string; layerDigest: string; layerSize: number; configDigest: string };
  /** "METHOD /path" of every request, in order. */
  requests: string[];
  /** The Authorization header of every request (undefined: none), in the same order. */
  authorizations: Array<string | undefined>;
  /** Authorization headers the token listener received (undefined: none sent). */
  tokenAuthorizations: Array<string | undefined>;
  close(): Promise<void>;
}

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

export async function startHostileRegistry(opts: HostileRegistryOptions = {}): Promise<HostileRegistry> {
  const content = await makeImage(opts.layerBytes ?? 200 * 1024);
  const users = opts.users ?? [];
  const trickleMs = opts.trickleMs ?? 2000;
  const requests: string[] = [];
  const authorizations: Array<string | undefined> = [];
  const tokenAuthorizations: Array<string | undefined> = [];
  const uploads = new Map<string, Buffer>();
  const pushed = new Map<string, Buffer>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const tokenServer = http.createServer((req, res) => {
    tokenAuthorizations.push(req.headers.authorization);
    json(res, 200, { token: "t0ken-from-the-other-host", expires_in: 300 });
  });
  await listen(tokenServer);
  const tokenHost = `127.0.0.1:${(tokenServer.address() as AddressInfo).port}`;

  let origin = "";
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    requests.push(`${req.method} ${req.url}`);
    authorizations.push(req.headers.authorization);
    const url = new URL(req.url ?? "/", "http://x");
    const basicOk = () => users.some((u) => req.headers.authorization === `Basic ${Buffer.from(`${u.username}:${u.password}`).toString("base64")}`);
    if (url.pathname === "/v2/" || url.pathname === "/v2") {
      if (opts.baseAuth && !basicOk()) return challenge(res);
      return json(res, 200, {});
    }
    if (url.pathname === "/token") return json(res, 200, url.searchParams.get("scope")?.includes("bad-token") ? "<html>no</html>" : { nothing: true });
    const m = /^\/v2\/((?:[^/]+\/)*[^/]+)\/(blobs\/uploads|manifests|blobs)\/?(.*)$/.exec(url.pathname);
    if (!m) return json(res, 404, { errors: [{ code: "NOT_FOUND" }] });
    const [, repo, kind, ref] = m as unknown as [string, string, string, string];
    const behaviour = repo.split("/")[0] as Behaviour;
    const auth = req.headers.authorization;
    if (behaviour === "basic" || behaviour === "echo-credentials") {
      if (!basicOk()) return challenge(res);
      if (behaviour === "echo-credentials") return json(res, 500, { errors: [{ code: "UNKNOWN", message: `you sent ${auth}` }] });
    }
    if (behaviour === "bad-token" || behaviour === "realm-other-host-http" || behaviour === "realm-not-url") {
      if (!auth?.startsWith("Bearer ")) {
        const realms = {
          "bad-token": `${origin}/token`,
          "realm-other-host-http": `http://${opts.realmHost ?? tokenHost}/token`,
          "realm-not-url": "::not a url",
        };
        const realm = realms[behaviour];
        res.writeHead(401, { "WWW-Authenticate": `Bearer realm="${realm}",service="hostile",scope="repository:${repo}:pull"` });
        return void res.end();
      }
    }
    if (behaviour === "500") {
      res.writeHead(500, { "Content-Type": "text/html" });
      return void res.end("<html><body><h1>500 Internal Server Error</h1></body></html>");
    }
    if (behaviour === "redirect-loop" || behaviour === "redirect-file") {
      res.writeHead(302, { Location: behaviour === "redirect-file" ? "file:///etc/passwd" : (req.url ?? "/") });
      return void res.end();
    }
    if (kind === "blobs/uploads") return upload(req, res, repo, behaviour, ref, url);
    if (kind === "manifests") return manifest(req, res, repo, behaviour, ref);
    return blob(req, res, behaviour, ref);
  };

  const manifest = (req: http.IncomingMessage, res: http.ServerResponse, repo: string, behaviour: Behaviour, ref: string): void => {
    if (req.method === "PUT") {
      return void collect(req).then((body) => {
        const digest = sha256(body);
        pushed.set(`${repo}:${ref}`, body);
        pushed.set(`${repo}:${digest}`, body);
        res.writeHead(201, { "Docker-Content-Digest": digest, Location: `/v2/${repo}/manifests/${digest}` });
        res.end();
      });
    }
    if (behaviour === "stall") return;
    if (behaviour === "huge-manifest") {
      res.writeHead(200, { "Content-Type": OCI_MANIFEST });
      return void streamZeros(res, 64 << 20);
    }
    const own = pushed.get(`${repo}:${ref}`);
    const doc = own ? { body: own, type: OCI_MANIFEST } : manifestFor(behaviour, ref);
    if (!doc) return json(res, 404, { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] });
    const headers = { "Content-Type": doc.type, "Content-Length": doc.body.length, "Docker-Content-Digest": sha256(doc.body) };
    if (req.method === "HEAD") return void res.writeHead(200, headers).end();
    if (behaviour === "drop-mid-manifest") return dropAfter(res, headers, doc.body, Math.floor(doc.body.length / 2));
    if (behaviour === "trickle-manifest") return trickle(res, headers, doc.body);
    res.writeHead(200, headers).end(doc.body);
  };

  const manifestFor = (behaviour: Behaviour, ref: string): { body: Buffer; type: string } | undefined => {
    const { configDesc, layerDesc } = content;
    const base = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDesc, layers: [layerDesc] };
    const docs: Partial<Record<Behaviour, unknown>> = {
      "no-layers": { schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDesc },
      "bad-digest": { ...base, layers: [{ ...layerDesc, digest: "sha256:../../../etc/passwd" }] },
      "wrong-mediatype": { ...base, mediaType: "text/html" },
      "wrong-size": { ...base, layers: [{ ...layerDesc, size: 10 * 1024 ** 3 }] },
      "huge-config": { ...base, config: { ...configDesc, size: 64 << 20 } },
      "config-garbage": { ...base, config: content.garbageConfigDesc },
      "wrong-digest": { ...base, layers: [content.wrongLayerDesc] },
      "duplicate-digest": { ...base, layers: [layerDesc, { ...layerDesc, size: layerDesc.size + 1 }] },
    };
    if (behaviour === "not-json") return { body: Buffer.from("<html><body>Welcome to nginx!</body></html>"), type: OCI_MANIFEST };
    if (ref.startsWith("sha256:")) return ref === content.manifestDigest ? { body: content.manifest, type: OCI_MANIFEST } : undefined;
    if (behaviour === "index" || behaviour === "wrong-content-type" || behaviour === "index-garbage" || behaviour === "empty-index") {
      const entry = {
        mediaType: OCI_MANIFEST,
        digest: content.manifestDigest,
        size: content.manifest.length,
        platform: { os: "linux", architecture: "amd64" },
      };
      const manifests = behaviour === "index-garbage" ? [{ digest: 42, platform: "linux" }, "not a descriptor"] : behaviour === "empty-index" ? [] : [entry];
      const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
      return { body, type: behaviour === "wrong-content-type" ? OCI_MANIFEST : OCI_INDEX };
    }
    return { body: behaviour in docs ? Buffer.from(JSON.stringify(docs[behaviour])) : content.manifest, type: OCI_MANIFEST };
  };

  const blob = (req: http.IncomingMessage, res: http.ServerResponse, behaviour: Behaviour, digest: string): void => {
    // The upload cases hold only what was pushed to them, so a push has to upload.
    const uploadCase = behaviour === "drop-upload" || behaviour === "stall-upload";
    const data = (uploadCase ? undefined : content.blobs.get(digest)) ?? pushed.get(`blob:${digest}`);
    if (!data) return json(res, 404, { errors: [{ code: "BLOB_UNKNOWN", message: "blob unknown" }] });
    const headers = { "Content-Type": "application/octet-stream", "Content-Length": data.length, "Docker-Content-Digest": digest };
    if (req.method === "HEAD") return void res.writeHead(200, headers).end();
    const isLayer = digest === content.layerDesc.digest;
    if (isLayer && behaviour === "drop-mid-blob") return dropAfter(res, headers, data, Math.floor(data.length / 2));
    if (isLayer && behaviour === "trickle") return trickle(res, headers, data);
    if (isLayer && behaviour === "stall-blob") return void res.writeHead(200, headers).flushHeaders();
    res.writeHead(200, headers).end(data);
  };

  const upload = (req: http.IncomingMessage, res: http.ServerResponse, repo: string, behaviour: Behaviour, id: string, url: URL): void => {
    if (req.method === "POST") {
      const session = randomBytes(8).toString("hex");
      uploads.set(session, Buffer.alloc(0));
      req.resume();
      res.writeHead(202, { Location: `/v2/${repo}/blobs/uploads/${session}`, Range: "0-0", "Content-Length": 0 });
      return void res.end();
    }
    if (req.method === "DELETE") return void res.writeHead(204).end();
    if (behaviour === "stall-upload") return void req.resume();
    if (behaviour === "drop-upload") {
      let seen = 0;
      req.on("data", (c: Buffer) => {
        seen += c.length;
        if (seen > 100) req.socket.destroy();
      });
      return;
    }
    void collect(req).then((body) => {
      const all = Buffer.concat([uploads.get(id) ?? Buffer.alloc(0), body]);
      uploads.set(id, all);
      if (req.method === "PATCH") return void res.writeHead(202, { Location: `/v2/${repo}/blobs/uploads/${id}`, Range: `0-${all.length - 1}` }).end();
      const digest = url.searchParams.get("digest") ?? "";
      if (sha256(all) !== digest) return json(res, 400, { errors: [{ code: "DIGEST_INVALID", message: "digest mismatch" }] });
      pushed.set(`blob:${digest}`, all);
      res.writeHead(201, { "Docker-Content-Digest": digest, Location: `/v2/${repo}/blobs/${digest}` }).end();
    });
  };

  const trickle = (res: http.ServerResponse, headers: http.OutgoingHttpHeaders, data: Buffer): void => {
    res.writeHead(200, headers);
    res.flushHeaders();
    let i = 0;
    const timer = setInterval(() => {
      if (res.destroyed || i >= data.length) {
        clearInterval(timer);
        timers.delete(timer);
        if (!res.destroyed) res.end();
        return;
      }
      res.write(data.subarray(i, ++i));
    }, trickleMs);
    timers.add(timer);
  };

  const tls = opts.tls ? await selfSigned(opts.tls.names ?? ["127.0.0.1", "localhost"]) : undefined;
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  for (const s of [server, tokenServer]) {
    s.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
  }
  await listen(server);
  const port = (server.address() as AddressInfo).port;
  origin = `${opts.tls ? "https" : "http"}://127.0.0.1:${port}`;
  const tlsCert = tls?.cert;
  return {
    host: `127.0.0.1:${port}`,
    port,
    ...(tlsCert !== undefined ? { tlsCert } : {}),
    tokenHost,
    image: {
      manifestDigest: content.manifestDigest,
      layerDigest: content.layerDesc.digest,
      layerSize: content.layerDesc.size,
      configDigest: content.configDesc.digest,
    },
    requests,
    authorizations,
    tokenAuthorizations,
    close: async () => {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      await Promise.all([server, tokenServer].map((s) => new Promise((r) => s.close(r))));
    },
  };
}

/** A one-layer image: a gzipped tar holding `bytes` random bytes (so a body spans many TCP reads), its config and manifest. */
async function makeImage(bytes: number) {
  const tarBytes = await new Promise<Buffer>((resolve, reject) => {
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    pack.on("data", (c: unknown) => void chunks.push(c as Buffer));
    pack.on("end", () => resolve(Buffer.concat(chunks)));
    pack.on("error", reject);
    pack.entry({ name: "data.bin", mode: 0o644, mtime: new Date(0) }, randomBytes(bytes));
    pack.finalize();
  });
  const layer = gzipSync(tarBytes);
  const layerDesc = { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(layer), size: layer.length };
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [sha256(tarBytes)] } }));
  const configDesc = { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length };
  const garbage = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", hello: "no rootfs here" }));
  const garbageConfigDesc = { ...configDesc, digest: sha256(garbage), size: garbage.length };
  // A "layer" whose bytes are the real layer's with one byte flipped, served under the real layer's size and a digest of other content.
  const wrong = Buffer.from(layer);
  wrong[wrong.length - 5] = wrong[wrong.length - 5]! ^ 0xff;
  const wrongLayerDesc = { ...layerDesc, digest: sha256(Buffer.concat([layer, Buffer.from("x")])) };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDesc, layers: [layerDesc] }));
  const blobs = new Map<string, Buffer>([
    [layerDesc.digest, layer],
    [configDesc.digest, config],
    [garbageConfigDesc.digest, garbage],
    [wrongLayerDesc.digest, wrong],
  ]);
  return { layerDesc, configDesc, garbageConfigDesc, wrongLayerDesc, manifest, manifestDigest: sha256(manifest), blobs };
}

function challenge(res: http.ServerResponse): void {
  res.writeHead(401, { "WWW-Authenticate": 'Basic realm="hostile"', "Content-Type": "application/json" });
  res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
}

function dropAfter(res: http.ServerResponse, headers: http.OutgoingHttpHeaders, data: Buffer, bytes: number): void {
  res.writeHead(200, headers);
  res.write(data.subarray(0, bytes), () => setTimeout(() => res.socket?.destroy(), 50));
}

function streamZeros(res: http.ServerResponse, total: number): void {
  const chunk = Buffer.alloc(1 << 20, 0x20);
  let sent = 0;
  const more = (): void => {
    while (sent < total && !res.destroyed) {
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once("drain", more);
    }
    if (!res.destroyed) res.end();
  };
  more();
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": text.length }).end(text);
}

function collect(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", () => resolve(Buffer.alloc(0)));
  });
}

function sha256(data: Buffer): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function listen(server: http.Server | https.Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
}

/** A self-signed EC certificate for `names` (IPs and DNS names), made by openssl. */
async function selfSigned(names: string[]): Promise<{ key: string; cert: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "sealant-hostile-tls-"));
  try {
    const san = names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
    const keyPath = path.join(dir, "key.pem");
    const certPath = path.join(dir, "cert.pem");
    await execFileP("openssl", [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-keyout", keyPath, "-out", certPath, "-days", "2", "-subj", `/CN=${names[0]}`, "-addext", `subjectAltName=${san}`],
    ]);
    return { key: await fs.readFile(keyPath, "utf8"), cert: await fs.readFile(certPath, "utf8") };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
