/**
 * Real CNCF distribution registries (Debian's `docker-registry`, distribution 2.8) for tests:
 * one child process per registry on a free 127.0.0.1 port, filesystem storage in a temp dir.
 *
 * Variants:
 * - `auth: "none"`: anonymous pull and push.
 * - `auth: "htpasswd"`: HTTP basic auth from an htpasswd file generated with `htpasswd -Bbn`.
 *   distribution 2.8 accepts htpasswd over plain HTTP (no TLS needed), answering
 *   `WWW-Authenticate: Basic realm="..."`.
 * - `auth: "token"`: the registry's own `auth.token` (bearer JWT) with `rootcertbundle` = a
 *   self-signed EC certificate made by openssl; the token *issuer* is a tiny node:http server in
 *   the calling process that checks basic credentials and signs ES256 JWTs carrying the cert in
 *   the `x5c` header. The registry verifies them as it would tokens of any auth server.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { X509Certificate, createPrivateKey, randomBytes, randomUUID, sign, type KeyObject } from "node:crypto";
import { createWriteStream, promises as fs } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

const execFileP = promisify(execFile);
const REGISTRY_BIN = process.env["SEALANT_REGISTRY_BIN"] ?? "/usr/bin/docker-registry";

export type RegistryAuthKind = "none" | "htpasswd" | "token";

export interface RegistryUser {
  username: string;
  password: string;
  /** Token variant only: what this user may do. @default "push" (pull and push) */
  access?: "pull" | "push";
}

export interface StartRegistryOptions {
  auth?: RegistryAuthKind;
  /** @default one user "sealant" with a random password */
  users?: RegistryUser[];
  /** Token variant: anonymous clients get pull tokens (like Docker Hub). @default false */
  anonymousPull?: boolean;
  /** Token variant: token lifetime in seconds. @default 300 */
  tokenExpiresIn?: number;
  /** A pull-through cache of this URL (`proxy.remoteurl`). */
  proxyRemoteUrl?: string;
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1 (made by openssl; PEM in `tlsCert`). */
  tls?: boolean;
  /**
   * With `tls`: sign the server certificate with a private CA of its own instead (as a company's
   * Harbor is), the CA's PEM in `tlsCert`; the server certificate is not a CA and cannot be
   * trusted alone. @default false
   */
  privateCa?: boolean;
  /** Extra subject alternative names of the TLS certificate (`DNS:x`, `IP:y`). */
  tlsNames?: string[];
}

/** What crosses from globalSetup to the test workers (plain JSON). */
export interface RegistryInfo {
  /** host:port, e.g. 127.0.0.1:41234 */
  host: string;
  /** The registry's filesystem storage root (`<dir>/storage`). */
  storageDir: string;
  auth: RegistryAuthKind;
  users: RegistryUser[];
  /** TLS variant: the registry's self-signed certificate (PEM), to trust it as a CA; with `privateCa`, that CA's certificate. */
  tlsCert?: string;
}

export interface TestRegistry extends RegistryInfo {
  /** http://host (https://host for the TLS variant) */
  url: string;
  /** Temp dir holding config, storage, htpasswd/certs and the log. */
  dir: string;
  /** Token variant: how many token requests the issuer answered (in this process). */
  tokenRequests(): number;
  /** The last lines of the registry's log. */
  logTail(lines?: number): Promise<string>;
  stop(): Promise<void>;
}

/** Where distribution's filesystem driver keeps a blob's bytes. */
export function blobDataPath(storageDir: string, digest: string): string {
  const hex = digest.replace(/^sha256:/, "");
  return path.join(storageDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => resolve(addr.port));
    });
  });
}

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? "none";
  const users = auth === "none" ? [] : (opts.users ?? [{ username: "sealant", password: randomBytes(9).toString("base64url") }]);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `sealant-registry-${auth}-`));
  const storageDir = path.join(dir, "storage");
  await fs.mkdir(storageDir);
  let issuer: TokenIssuer | undefined;
  try {
    let authConfig = "";
    if (auth === "htpasswd") {
      const lines: string[] = [];
      for (const u of users) {
        const { stdout } = await execFileP("htpasswd", ["-Bbn", u.username, u.password]);
        lines.push(stdout.trim());
      }
      await fs.writeFile(path.join(dir, "htpasswd"), lines.join("\n") + "\n", { mode: 0o600 });
      authConfig = `auth:\n  htpasswd:\n    realm: sealant-test\n    path: ${path.join(dir, "htpasswd")}\n`;
    } else if (auth === "token") {
      issuer = await TokenIssuer.start(dir, users, opts.anonymousPull ?? false, opts.tokenExpiresIn ?? 300);
      authConfig =
        `auth:\n  token:\n    realm: ${issuer.realm}\n    service: ${TokenIssuer.service}\n` +
        `    issuer: ${TokenIssuer.issuer}\n    rootcertbundle: ${issuer.certPath}\n`;
    }
    const proxy = opts.proxyRemoteUrl ? `proxy:\n  remoteurl: ${opts.proxyRemoteUrl}\n` : "";
    let tlsConfig = "";
    let tlsCert: string | undefined;
    if (opts.tls) {
      const keyPath = path.join(dir, "tls.key");
      const certPath = path.join(dir, "tls.crt");
      const names = ["IP:127.0.0.1", "DNS:localhost", ...(opts.tlsNames ?? [])].join(",");
      if (opts.privateCa) {
        tlsCert = await signedByPrivateCa(dir, keyPath, certPath, names);
      } else {
        await execFileP("openssl", [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-keyout",
          keyPath,
          "-out",
          certPath,
          "-days",
          "2",
          "-subj",
          "/CN=127.0.0.1",
          "-addext",
          `subjectAltName=${names}`,
        ]);
        tlsCert = await fs.readFile(certPath, "utf8");
      }
      tlsConfig = `  tls:\n    certificate: ${certPath}\n    key: ${keyPath}\n`;
    }
    let lastError: Error | undefined;
    for (let tries = 0; tries < 5; tries++) {
      const port = await freePort();
      const host = `127.0.0.1:${port}`;
      const config =
        `version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n` +
        `storage:\n  filesystem:\n    rootdirectory: ${storageDir}\n  delete:\n    enabled: true\n` +
        `  maintenance:\n    uploadpurging:\n      enabled: false\n  redirect:\n    disable: true\n` +
        `http:\n  addr: ${host}\n  secret: ${randomBytes(16).toString("hex")}\n` +
        tlsConfig +
        authConfig +
        proxy;
      const configPath = path.join(dir, "config.yml");
      await fs.writeFile(configPath, config);
      const logPath = path.join(dir, "registry.log");
      const child = await spawnLogged(REGISTRY_BIN, ["serve", configPath], logPath, dir);
      try {
        await waitUntilServing(host, child, logPath, opts.tls ?? false);
      } catch (err) {
        lastError = err as Error;
        const inUse = /address already in use/.test(await tail(logPath, 20));
        // Keep the dir (htpasswd, certs) for the next port: the watchdog removes it otherwise.
        const keep = path.join(dir, ".keep");
        await fs.writeFile(keep, "");
        await killChild(child);
        await fs.rm(keep, { force: true });
        if (inUse) continue;
        throw err;
      }
      const stopIssuer = issuer;
      const info: TestRegistry = {
        host,
        url: `${opts.tls ? "https" : "http"}://${host}`,
        ...(tlsCert !== undefined ? { tlsCert } : {}),
        dir,
        storageDir,
        auth,
        users,
        tokenRequests: () => stopIssuer?.requests ?? 0,
        logTail: (lines = 30) => tail(logPath, lines),
        stop: async () => {
          await killChild(child);
          await stopIssuer?.close();
          await fs.rm(dir, { recursive: true, force: true });
        },
      };
      return info;
    }
    throw lastError ?? new Error("could not start docker-registry");
  } catch (err) {
    await issuer?.close();
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A CA (kept in `dir`) and a server key and certificate it signs for `names`; returns the CA's PEM. */
async function signedByPrivateCa(dir: string, keyPath: string, certPath: string, names: string): Promise<string> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const ca = { key: path.join(dir, "ca.key"), crt: path.join(dir, "ca.crt") };
  await execFileP("openssl", [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    ca.key,
    "-out",
    ca.crt,
    "-days",
    "2",
    "-subj",
    "/CN=sealant test private CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  const csr = path.join(dir, "tls.csr");
  const ext = path.join(dir, "tls.ext");
  await fs.writeFile(ext, `subjectAltName=${names}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`);
  await execFileP("openssl", ["req", "-new", ...ec, "-keyout", keyPath, "-out", csr, "-subj", "/CN=registry"]);
  await execFileP("openssl", ["x509", "-req", "-in", csr, "-CA", ca.crt, "-CAkey", ca.key, "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", certPath]);
  return fs.readFile(ca.crt, "utf8");
}

/** The registries global-setup starts once for the whole run. */
export interface SharedRegistries {
  /** A plain registry: anonymous pull/push. */
  upstream: RegistryInfo;
  /** An htpasswd registry with one user (users[0]). */
  basic: RegistryInfo;
}

declare module "vitest" {
  export interface ProvidedContext {
    sealantRegistries: SharedRegistries;
  }
}

/**
 * Inside a test (or any process started under the test run): the shared registries started by
 * test/support/global-setup.ts. Read from SEALANT_TEST_REGISTRIES (JSON, set by the global setup
 * and inherited by workers), so this module does not need vitest; `inject("sealantRegistries")`
 * gives the same value.
 */
export function sharedRegistries(): SharedRegistries {
  const raw = process.env[SHARED_ENV];
  if (!raw) throw new Error(`${SHARED_ENV} is not set: is test/support/global-setup.ts the vitest globalSetup?`);
  return JSON.parse(raw) as SharedRegistries;
}

export const SHARED_ENV = "SEALANT_TEST_REGISTRIES";

// ------------------------------------------------------------------ flaky proxy

export interface FlakyProxyOptions {
  /** Fail the first N requests (0: a plain forwarding proxy). */
  failFirst: number;
  /** How: an HTTP status (e.g. 503, 429) or "reset" (destroy the socket). @default 503 */
  failWith?: number | "reset";
  /** Retry-After header value to send with failures (seconds). */
  retryAfter?: string;
  /** Only requests whose method+path match count as failure candidates. @default every request */
  match?: (method: string, url: string) => boolean;
  /** Answers a request itself instead of forwarding it when it returns true (after failure injection). */
  intercept?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
  /** Edits the registry's response headers before they are passed on. */
  mutateResponse?: (method: string, url: string, status: number, headers: http.IncomingHttpHeaders) => void;
}

export interface FlakyProxy {
  host: string;
  /** Requests seen, in order: "METHOD /path". */
  seen: string[];
  failures(): number;
  /** TCP connections accepted so far (to check connection reuse and bounds). */
  connections(): number;
  /** Most connections open at the same time. */
  maxOpenConnections(): number;
  close(): Promise<void>;
}

/**
 * A node:http proxy in front of a real registry that fails the first N (matching) requests and
 * forwards the rest unchanged (Host header kept, so the registry's Location URLs point back here).
 */
export async function startFlakyProxy(targetHost: string, opts: FlakyProxyOptions): Promise<FlakyProxy> {
  const [targetName, targetPort] = targetHost.split(":") as [string, string];
  let failed = 0;
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const candidate = opts.match ? opts.match(req.method ?? "", req.url ?? "") : true;
    if (candidate && failed < opts.failFirst) {
      failed++;
      if (opts.failWith === "reset") {
        req.socket.destroy();
        return;
      }
      const headers: Record<string, string> = { "Content-Type": "application/json" };
      if (opts.retryAfter !== undefined) headers["Retry-After"] = opts.retryAfter;
      req.resume();
      res.writeHead(opts.failWith ?? 503, headers);
      res.end(JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: "injected failure" }] }));
      return;
    }
    if (opts.intercept?.(req, res)) return;
    const upstream = http.request({ host: targetName, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers }, (up) => {
      opts.mutateResponse?.(req.method ?? "", req.url ?? "", up.statusCode ?? 502, up.headers);
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  let connections = 0;
  let open = 0;
  let maxOpen = 0;
  server.on("connection", (socket: net.Socket) => {
    connections++;
    maxOpen = Math.max(maxOpen, ++open);
    socket.on("close", () => open--);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    seen,
    failures: () => failed,
    connections: () => connections,
    maxOpenConnections: () => maxOpen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ------------------------------------------------------------------ token issuer

class TokenIssuer {
  static readonly service = "sealant-test-registry";
  static readonly issuer = "sealant-test-issuer";
  private constructor(
    private readonly server: http.Server,
    readonly realm: string,
    readonly certPath: string,
    private readonly counter: { requests: number },
  ) {}

  /** Token requests answered so far. */
  get requests(): number {
    return this.counter.requests;
  }

  static async start(dir: string, users: RegistryUser[], anonymousPull: boolean, expiresIn: number): Promise<TokenIssuer> {
    const keyPath = path.join(dir, "token.key");
    const certPath = path.join(dir, "token.crt");
    await execFileP("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      certPath,
      "-days",
      "2",
      "-subj",
      "/CN=sealant-test-token-issuer",
    ]);
    const key = createPrivateKey(await fs.readFile(keyPath));
    const certDer = new X509Certificate(await fs.readFile(certPath)).raw.toString("base64");
    const counter = { requests: 0 };
    const server = http.createServer((req, res) => {
      counter.requests++;
      handleTokenRequest(req, res, { key, certDer, users, anonymousPull, expiresIn });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    return new TokenIssuer(server, `http://127.0.0.1:${port}/token`, certPath, counter);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

function handleTokenRequest(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  ctx: { key: KeyObject; certDer: string; users: RegistryUser[]; anonymousPull: boolean; expiresIn: number },
): void {
  const url = new URL(req.url ?? "/", "http://issuer");
  const reply = (status: number, body: unknown) => {
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
  };
  if (url.pathname !== "/token") return reply(404, { details: "not found" });
  let user: RegistryUser | undefined;
  const header = req.headers.authorization;
  if (header) {
    const m = /^Basic (.+)$/i.exec(header);
    const decoded = m ? Buffer.from(m[1]!, "base64").toString("utf8") : "";
    const colon = decoded.indexOf(":");
    const name = decoded.slice(0, colon);
    const pass = decoded.slice(colon + 1);
    user = ctx.users.find((u) => u.username === name && u.password === pass);
    if (!user) return reply(401, { details: "invalid username or password" });
  }
  const access: Array<{ type: string; name: string; actions: string[] }> = [];
  for (const scope of url.searchParams.getAll("scope")) {
    for (const one of scope.split(" ")) {
      const parts = one.split(":");
      if (parts.length < 3) continue;
      const type = parts[0]!;
      const actions = parts[parts.length - 1]!.split(",");
      const name = parts.slice(1, -1).join(":");
      const allowed = user ? (user.access === "pull" ? ["pull"] : ["pull", "push", "delete", "*"]) : ctx.anonymousPull ? ["pull"] : [];
      const granted = actions.filter((a) => allowed.includes(a));
      if (granted.length > 0) access.push({ type, name, actions: granted });
    }
  }
  const now = Math.floor(Date.now() / 1000);
  const headerJson = { alg: "ES256", typ: "JWT", x5c: [ctx.certDer] };
  const claims = {
    iss: TokenIssuer.issuer,
    sub: user?.username ?? "",
    aud: url.searchParams.get("service") ?? TokenIssuer.service,
    exp: now + ctx.expiresIn,
    nbf: now - 30,
    iat: now,
    jti: randomUUID(),
    access,
  };
  const input = `${b64url(JSON.stringify(headerJson))}.${b64url(JSON.stringify(claims))}`;
  const signature = sign("sha256", Buffer.from(input), { key: ctx.key, dsaEncoding: "ieee-p1363" });
  const token = `${input}.${signature.toString("base64url")}`;
  reply(200, { token, access_token: token, expires_in: ctx.expiresIn, issued_at: new Date(now * 1000).toISOString() });
}

function b64url(s: string): string {
  return Buffer.from(s, "utf8").toString("base64url");
}

// ------------------------------------------------------------------ process plumbing

/**
 * The registry runs under a small sh watchdog that holds a pipe from this process on its stdin:
 * when the pipe closes (stop(), or this process dying in any way, even SIGKILL) the watchdog
 * terminates the registry and removes its temp dir. So no registry outlives the test run.
 */
const WATCHDOG =
  '"$0" "$@" </dev/null & pid=$!\ncat >/dev/null\nkill $pid 2>/dev/null\nwait $pid\n' +
  'if [ -n "$SEALANT_REGISTRY_DIR" ] && [ ! -e "$SEALANT_REGISTRY_DIR/.keep" ]; then rm -rf "$SEALANT_REGISTRY_DIR"; fi';

async function spawnLogged(cmd: string, args: string[], logPath: string, dir: string): Promise<ChildProcess> {
  const log = createWriteStream(logPath, { flags: "a" });
  await new Promise<void>((resolve, reject) => {
    log.once("open", () => resolve());
    log.once("error", reject);
  });
  const child = spawn("/bin/sh", ["-c", WATCHDOG, cmd, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    detached: true,
    env: { ...process.env, SEALANT_REGISTRY_DIR: dir },
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  // Do not keep the test process alive for the watchdog's sake.
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", () => resolve());
    child.once("error", reject);
  });
  return child;
}

async function waitUntilServing(host: string, child: ChildProcess, logPath: string, tls: boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`docker-registry exited (${child.exitCode ?? child.signalCode}) before serving ${host}:\n${await tail(logPath, 20)}`);
    }
    const status = await new Promise<number | undefined>((resolve) => {
      const get = tls ? https.get : http.get;
      const req = get(`${tls ? "https" : "http"}://${host}/v2/`, { agent: false, timeout: 1000, rejectUnauthorized: false }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on("error", () => resolve(undefined));
      req.on("timeout", () => req.destroy());
    });
    if (status !== undefined) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not answer on ${host} within 15 s:\n${await tail(logPath, 20)}`);
}

/** Closes the watchdog's stdin (it then stops the registry and waits for it); SIGKILLs the group after 5 s. */
async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.stdin?.end();
  const timer = setTimeout(() => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }, 5000);
  await exited;
  clearTimeout(timer);
}

async function tail(file: string, lines: number): Promise<string> {
  try {
    const text = await fs.readFile(file, "utf8");
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
