/**
 * Opening one SSH connection (ssh2 Client): auth, host-key verification, algorithms, bastion
 * hops, and retries with exponential backoff for hosts that are still booting.
 */
import { readFile } from "node:fs/promises";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, type ConnectConfig } from "ssh2";
import { HostKeyError, SshConnectError, errorMessage, type ConnectFailureKind } from "./errors";
import { hostKeyAlgorithmsFor, validateHostKeyOptions, verifyHostKey, type HostKeyOptions } from "./host-keys";
import { redact } from "./redact";

/** Where and how to log in: the target host, or a bastion on the way to it. */
export interface SshEndpoint {
  host: string;
  /** @default 22 */
  port?: number;
  /** @default "root" */
  user?: string;
  password?: string;
  /** OpenSSH or PEM private key text. */
  privateKey?: string | Buffer;
  /** Read when connecting (so the key itself need not pass through configuration). */
  privateKeyPath?: string;
  passphrase?: string;
  /** ssh-agent socket path, or true for $SSH_AUTH_SOCK. */
  agent?: string | boolean;
  /** @default { policy: "strict" } */
  hostKey?: HostKeyOptions;
  /** A jump host to reach this one through (direct-tcpip forwarding); may itself have one. */
  bastion?: SshEndpoint;
  /** Limit for one attempt's TCP connect + SSH handshake + auth. @default 20000 */
  connectTimeoutMs?: number;
}

export interface RetryOptions {
  /** Attempts in all (1 = no retry). @default 10 */
  attempts?: number;
  /** @default 250 */
  initialDelayMs?: number;
  /** @default 5000 */
  maxDelayMs?: number;
}

export interface DialOptions {
  retry?: RetryOptions;
  /** @default 15000 (0 disables) */
  keepaliveIntervalMs?: number;
  /** @default 3 */
  keepaliveCountMax?: number;
  signal?: AbortSignal;
  log?(line: string): void;
  /** Secret values to redact from messages (the endpoint's own are added). */
  secrets?: readonly string[];
}

/** Fastest first on x86 with AES-NI (TESTBED: chacha20 is 10-25% slower). Never compression. */
export const CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr", "chacha20-poly1305@openssh.com"] as const;

export interface Negotiated {
  kex: string;
  serverHostKey: string;
  cipher: string;
  compress: string;
}

/** An open, authenticated connection (and the bastion connections it runs through). */
export interface Dialed {
  client: Client;
  negotiated: Negotiated;
  /** The host key blob the target presented and verification accepted. */
  hostKey: Buffer;
  /** Resolves when the connection (or a hop below it) has closed. */
  closed: Promise<void>;
  end(): Promise<void>;
}

export function endpointName(ep: Pick<SshEndpoint, "host" | "port">): string {
  return (ep.port ?? 22) === 22 ? ep.host : `${ep.host}:${ep.port}`;
}

export function endpointSecrets(ep: SshEndpoint | undefined): string[] {
  const out: string[] = [];
  for (let e = ep; e; e = e.bastion) {
    if (e.password) out.push(e.password);
    if (e.passphrase) out.push(e.passphrase);
  }
  return out;
}

/** Checks what can be checked before connecting, with messages in the caller's terms. */
export function validateEndpoint(ep: SshEndpoint, what = "ssh"): void {
  if (typeof ep.host !== "string" || ep.host === "") throw new Error(`${what}.host is required`);
  if (ep.port !== undefined && (!Number.isInteger(ep.port) || ep.port < 1 || ep.port > 65535)) {
    throw new Error(`${what}.port ${ep.port} is not a TCP port (1-65535)`);
  }
  if (ep.password === undefined && ep.privateKey === undefined && ep.privateKeyPath === undefined && !ep.agent) {
    throw new Error(`${what}: no way to log in to ${endpointName(ep)}: give password, privateKey, privateKeyPath or agent`);
  }
  validateHostKeyOptions(ep.hostKey ?? {});
  if (ep.bastion) validateEndpoint(ep.bastion, `${what}.bastion`);
}

/**
 * Connects to `ep` (through its bastions), retrying refused connections, timeouts and early
 * disconnects with exponential backoff; authentication and host-key failures fail at once.
 */
export async function dial(ep: SshEndpoint, opts: DialOptions = {}): Promise<Dialed> {
  const secrets = [...endpointSecrets(ep), ...(opts.secrets ?? [])];
  const bastion = ep.bastion ? await dial(ep.bastion, opts) : undefined;
  try {
    const dialed = await withRetry(ep, opts, secrets, async () => {
      const sock = bastion ? await forward(bastion.client, ep) : undefined;
      return attempt(ep, opts, secrets, sock);
    });
    if (!bastion) return dialed;
    return {
      ...dialed,
      closed: Promise.race([dialed.closed, bastion.closed]),
      end: async () => {
        await dialed.end();
        await bastion.end();
      },
    };
  } catch (err) {
    await bastion?.end();
    throw err;
  }
}

async function withRetry<T>(ep: SshEndpoint, opts: DialOptions, secrets: string[], fn: () => Promise<T>): Promise<T> {
  const name = endpointName(ep);
  const attempts = Math.max(1, opts.retry?.attempts ?? 10);
  const maxDelay = opts.retry?.maxDelayMs ?? 5000;
  let delay = opts.retry?.initialDelayMs ?? 250;
  const started = Date.now();
  for (let n = 1; ; n++) {
    if (opts.signal?.aborted) throw new SshConnectError(name, "config", "connect aborted", { cause: opts.signal.reason });
    try {
      return await fn();
    } catch (raw) {
      const err = raw instanceof SshConnectError ? raw : new SshConnectError(name, "protocol", redact(errorMessage(raw), secrets), { cause: raw });
      if (!err.retryable || n >= attempts) {
        if (n === 1) throw err;
        const secs = ((Date.now() - started) / 1000).toFixed(1);
        const final = new SshConnectError(name, err.kind, `${err.reason} (gave up after ${n} attempts in ${secs} s)`, { cause: err });
        final.attempts = n;
        throw final;
      }
      const wait = Math.round(delay * (0.8 + Math.random() * 0.4));
      opts.log?.(`${name}: ${err.reason}; retrying in ${wait} ms (attempt ${n + 1} of ${attempts})`);
      try {
        await sleep(wait, undefined, opts.signal ? { signal: opts.signal } : {});
      } catch {
        throw new SshConnectError(name, "config", `connect aborted (last error: ${err.reason})`, { cause: opts.signal?.reason });
      }
      delay = Math.min(delay * 2, maxDelay);
    }
  }
}

/** A direct-tcpip channel from the bastion to the target, to carry the target's SSH session. */
function forward(bastion: Client, ep: SshEndpoint): Promise<Readable> {
  const name = endpointName(ep);
  return new Promise((resolve, reject) => {
    try {
      bastion.forwardOut("127.0.0.1", 0, ep.host, ep.port ?? 22, (err, channel) => {
        if (!err) return resolve(channel);
        // CONNECT_FAILED (2): the bastion could not reach the target - still booting, perhaps.
        const reason = (err as Error & { reason?: number }).reason;
        const kind: ConnectFailureKind = reason === 2 ? "refused" : reason === undefined || reason === 4 ? "closed" : "protocol";
        reject(new SshConnectError(name, kind, `connect through the bastion: ${err.message.replace(/^\(SSH\) /, "")}`, { cause: err }));
      });
    } catch (err) {
      reject(new SshConnectError(name, "closed", `connect through the bastion: ${errorMessage(err)}`, { cause: err }));
    }
  });
}

async function attempt(ep: SshEndpoint, opts: DialOptions, secrets: string[], sock: Readable | undefined): Promise<Dialed> {
  const name = endpointName(ep);
  const port = ep.port ?? 22;
  const user = ep.user ?? "root";
  const hostKey = ep.hostKey ?? {};
  const timeoutMs = ep.connectTimeoutMs ?? 20_000;
  const privateKey = ep.privateKey ?? (ep.privateKeyPath !== undefined ? await readKey(name, ep.privateKeyPath) : undefined);
  const agent = ep.agent === true ? process.env["SSH_AUTH_SOCK"] : ep.agent || undefined;
  if (ep.agent === true && !agent) throw new SshConnectError(name, "config", "agent: SSH_AUTH_SOCK is not set");
  const methods = [
    ep.password !== undefined ? "password" : "",
    privateKey !== undefined ? "publickey" : "",
    agent ? "agent" : "",
    ep.password !== undefined ? "keyboard-interactive" : "",
  ].filter(Boolean);

  let hostKeyError: HostKeyError | undefined;
  let hostKeyFailure: unknown;
  let verifiedKey: Buffer | undefined;
  const cfg: ConnectConfig = {
    host: ep.host,
    port,
    username: user,
    readyTimeout: timeoutMs,
    keepaliveInterval: opts.keepaliveIntervalMs ?? 15_000,
    keepaliveCountMax: opts.keepaliveCountMax ?? 3,
    algorithms: {
      cipher: [...CIPHERS],
      compress: ["none"],
      serverHostKey: (await hostKeyAlgorithmsFor(ep.host, port, hostKey)) as NonNullable<ConnectConfig["algorithms"]>["serverHostKey"],
    },
    // No hostHash: ssh2 then passes the raw key blob, and the fingerprint is computed here.
    hostVerifier: (key: Buffer, verify: (valid: boolean) => void): void => {
      verifyHostKey(ep.host, port, key, hostKey, name).then(
        () => {
          verifiedKey = Buffer.from(key);
          verify(true);
        },
        (err: unknown) => {
          if (err instanceof HostKeyError) hostKeyError = err;
          else hostKeyFailure = err;
          verify(false);
        },
      );
    },
    // Hosts that take passwords only as keyboard-interactive get the password there too.
    ...(ep.password !== undefined ? { password: ep.password, tryKeyboard: true } : {}),
    ...(privateKey !== undefined ? { privateKey } : {}),
    ...(ep.passphrase !== undefined ? { passphrase: ep.passphrase } : {}),
    ...(agent ? { agent } : {}),
    ...(sock ? { sock } : {}),
  };

  const client = new Client();
  return new Promise<Dialed>((resolve, reject) => {
    let negotiated: Negotiated | undefined;
    let settled = false;
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => (resolveClosed = r));
    const fail = (err: SshConnectError): void => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener("abort", onAbort);
      client.destroy();
      reject(err);
    };
    const onAbort = (): void => fail(new SshConnectError(name, "config", "connect aborted", { cause: opts.signal?.reason }));
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    client.on("handshake", (n) => {
      negotiated = { kex: n.kex, serverHostKey: n.serverHostKey, cipher: n.cs.cipher, compress: n.cs.compress };
    });
    client.on("keyboard-interactive", (_name, _instructions, _lang, prompts, finish) => {
      // The password answers a password prompt only: a server asking for anything else (a
      // one-time code, a yes/no) would otherwise be handed the password as the answer.
      const other = prompts.find((p) => !isPasswordPrompt(p));
      if (other === undefined) return finish(prompts.map(() => ep.password ?? ""));
      fail(
        new SshConnectError(
          name,
          "auth",
          `keyboard-interactive login asked ${JSON.stringify(other.prompt)}${other.echo ? " (answer shown as typed)" : ""}, which is not a password prompt: sealant answers only a hidden "Password:" prompt with the password (use a key, or password authentication)`,
        ),
      );
    });
    client.on("ready", () => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener("abort", onAbort);
      // Without this each exec on the open connection waits ~40 ms for Nagle (TESTBED).
      client.setNoDelay(true);
      resolve({ client, negotiated: negotiated!, hostKey: verifiedKey!, closed, end: () => endClient(client, closed) });
    });
    client.on("error", (err: Error & { level?: string; code?: string }) => {
      if (hostKeyError) return fail(hostKeyError);
      if (hostKeyFailure !== undefined) {
        return fail(new SshConnectError(name, "config", `checking the host key: ${redact(errorMessage(hostKeyFailure), secrets)}`, { cause: hostKeyFailure }));
      }
      fail(classify(name, user, methods, timeoutMs, err, secrets));
    });
    client.on("close", () => {
      resolveClosed();
      fail(new SshConnectError(name, "closed", "connection closed before the SSH handshake finished"));
    });
    try {
      client.connect(cfg);
    } catch (err) {
      // ssh2 parses the private key synchronously: a wrong passphrase lands here.
      const why = redact(errorMessage(err), secrets).replace(/^Cannot parse privateKey: /, "");
      fail(new SshConnectError(name, "auth", `private key cannot be read: ${why}`, { cause: err }));
    }
  });
}

/** A keyboard-interactive prompt that asks for the login password: "Password:", input not echoed. */
export function isPasswordPrompt(p: { prompt: string; echo?: boolean }): boolean {
  return p.echo !== true && /password/i.test(p.prompt);
}

async function readKey(name: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new SshConnectError(name, "config", `reading private key ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

const REFUSED = new Set(["ECONNREFUSED"]);
const UNREACHABLE = new Set(["EHOSTUNREACH", "ENETUNREACH", "ECONNRESET", "EPIPE", "EHOSTDOWN", "ENETDOWN"]);

function classify(
  name: string,
  user: string,
  methods: string[],
  timeoutMs: number,
  err: Error & { level?: string; code?: string },
  secrets: string[],
): SshConnectError {
  const msg = redact(err.message, secrets);
  const code = err.code ?? "";
  if (err.level === "client-authentication" || err.level === "agent") {
    return new SshConnectError(name, "auth", `authentication failed for user "${user}" (tried: ${methods.join(", ") || "none"}): ${msg}`, { cause: err });
  }
  if (err.level === "client-timeout" || code === "ETIMEDOUT") {
    return new SshConnectError(name, "timeout", `connect: timed out after ${timeoutMs} ms (no SSH handshake)`, { cause: err });
  }
  if (REFUSED.has(code)) return new SshConnectError(name, "refused", `connect: ${code}`, { cause: err });
  if (UNREACHABLE.has(code)) return new SshConnectError(name, "unreachable", `connect: ${code}`, { cause: err });
  if (err.level === "client-dns" || code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return new SshConnectError(name, "config", `connect: cannot resolve host (${code || msg})`, { cause: err });
  }
  if (/Connection lost before handshake/.test(err.message))
    return new SshConnectError(name, "closed", "connect: connection closed before the SSH handshake", { cause: err });
  return new SshConnectError(name, "protocol", `connect: ${msg}`, { cause: err });
}

/** Ends the connection politely, then forcefully if it has not closed within 2 s. */
async function endClient(client: Client, closed: Promise<void>): Promise<void> {
  client.end();
  const timer = new Promise<"late">((r) => setTimeout(() => r("late"), 2000).unref());
  if ((await Promise.race([closed.then(() => "closed" as const), timer])) === "late") client.destroy();
}
