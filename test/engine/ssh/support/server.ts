/**
 * A real SSH server in the test process (ssh2's Server) that really runs what it is asked:
 * every exec is `sh -c <command>` in the server's directory, with stdin, stdout, stderr, exit
 * status and signals wired through. Optionally a jump host (direct-tcpip forwarding).
 * Binds 127.0.0.1 only.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, chmodSync, mkdirSync } from "node:fs";
import { createServer, connect as netConnect, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server, utils, type Connection as ServerClient, type PublicKeyAuthContext } from "ssh2";
import { keyFingerprint } from "../../../../src/engine/ssh/host-keys";

export interface KeyPair {
  private: string;
  /** OpenSSH public key line (`ssh-ed25519 AAAA...`). */
  public: string;
  /** The public key blob (what a host verifier sees). */
  blob: Buffer;
  fingerprint: string;
}

export function generateKey(type: "ed25519" | "ecdsa" | "rsa" = "ed25519", passphrase?: string): KeyPair {
  const opts = {
    ...(type === "ecdsa" ? { bits: 256 } : type === "rsa" ? { bits: 2048 } : {}),
    ...(passphrase !== undefined ? { passphrase, cipher: "aes256-ctr", rounds: 4 } : {}),
  };
  const generate = utils.generateKeyPairSync as (t: string, o: object) => { private: string; public: string };
  let pair = generate(type, opts);
  // ssh2 1.17 strips the BIT STRING's leading zero bytes, so an ed25519 key whose public half
  // starts with 0x00 (1 in 256) comes out malformed: generate another one.
  while (utils.parseKey(pair.private, passphrase) instanceof Error) pair = generate(type, opts);
  const blob = Buffer.from(pair.public.trim().split(/\s+/)[1]!, "base64");
  return { private: pair.private, public: pair.public.trim(), blob, fingerprint: keyFingerprint(blob) };
}

export interface TestUser {
  password?: string;
  /** Take the password only as keyboard-interactive (like sshd with PasswordAuthentication no). */
  keyboardInteractive?: boolean;
  /**
   * The keyboard-interactive prompts (PAM's, say a one-time code after the password); the login
   * succeeds when the answer to the first prompt mentioning "password" is the password.
   * @default [{ prompt: "Password: ", echo: false }]
   */
  keyboardPrompts?: { prompt: string; echo: boolean }[];
  /** Allowed public keys (OpenSSH public key lines). */
  publicKeys?: string[];
}

export interface TestServerOptions {
  /** @default { root: { password: "root-pw" } } */
  users?: Record<string, TestUser>;
  /** @default one fresh ed25519 key */
  hostKeys?: KeyPair[];
  /** @default 0 (a free port) */
  port?: number;
  /** Environment of the commands run. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Accept direct-tcpip channels (be a jump host). @default false */
  forwarding?: boolean;
  /**
   * Behave like OpenSSH with a root login: refuse signal requests ("session signalling
   * requires privilege separation") and leave a command running when its channel closes.
   * @default false
   */
  likeOpenSshRoot?: boolean;
}

export interface TestServer {
  host: string;
  port: number;
  /** The directory commands run in (removed on close). */
  dir: string;
  hostKeys: KeyPair[];
  /** TCP connections accepted so far. */
  connections: number;
  /** Authentication attempts by method (never the secrets themselves). */
  authAttempts: { user: string; method: string }[];
  /** Keyboard-interactive answers received that were the user's password, as `user: prompt` (never the answers). */
  passwordAnswers: string[];
  /** Every exec command line received, as received. */
  execs: string[];
  /** Signals received for running commands. */
  signals: string[];
  /** direct-tcpip forwards opened. */
  forwards: number;
  close(): Promise<void>;
}

export const DEFAULT_PASSWORD = "root-pw";

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const users = opts.users ?? { root: { password: DEFAULT_PASSWORD } };
  const hostKeys = opts.hostKeys ?? [generateKey()];
  const dir = mkdtempSync(join(tmpdir(), "sealant-sshd-"));
  const clients = new Set<ServerClient>();
  const children = new Set<ChildProcess>();
  const sockets = new Set<Socket>();
  const state: TestServer = {
    host: "127.0.0.1",
    port: 0,
    dir,
    hostKeys,
    connections: 0,
    authAttempts: [],
    passwordAnswers: [],
    execs: [],
    signals: [],
    forwards: 0,
    close: async () => undefined,
  };

  const server = new Server({ hostKeys: hostKeys.map((k) => k.private) }, (client) => {
    state.connections++;
    clients.add(client);
    client.on("close", () => clients.delete(client));
    client.on("error", () => undefined);
    client.on("authentication", (ctx) => {
      state.authAttempts.push({ user: ctx.username, method: ctx.method });
      const user = users[ctx.username];
      if (!user) return ctx.reject(["password", "publickey"]);
      const methods: ("password" | "publickey" | "keyboard-interactive")[] = user.keyboardInteractive
        ? ["keyboard-interactive", "publickey"]
        : ["password", "publickey"];
      if (ctx.method === "password" && !user.keyboardInteractive) {
        return user.password !== undefined && ctx.password === user.password ? ctx.accept() : ctx.reject(methods);
      }
      if (ctx.method === "keyboard-interactive" && user.keyboardInteractive) {
        const prompts = user.keyboardPrompts ?? [{ prompt: "Password: ", echo: false }];
        return ctx.prompt(prompts, (answers) => {
          prompts.forEach((p, i) => {
            if (answers[i] !== undefined && answers[i] === user.password) state.passwordAnswers.push(`${ctx.username}: ${p.prompt}`);
          });
          const at = prompts.findIndex((p) => /password/i.test(p.prompt));
          return at >= 0 && answers[at] === user.password ? ctx.accept() : ctx.reject(methods);
        });
      }
      if (ctx.method === "publickey") return publicKeyAuth(ctx, user);
      return ctx.reject(methods);
    });
    client.on("ready", () => {
      // sshd writes a command's exit status, EOF and close at once; ssh2's Server writes them
      // one by one, and with Nagle on each exec would wait for a delayed ACK (~40 ms).
      (client as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true); // missing from @types/ssh2
      client.on("session", (acceptSession) => {
        const session = acceptSession();
        let child: ChildProcess | undefined;
        const kill = (sig: NodeJS.Signals): void => {
          if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
            try {
              process.kill(-child.pid, sig);
            } catch {
              // already gone
            }
          }
        };
        session.on("signal", (accept, _reject, info) => {
          accept?.();
          const name = info.name.replace(/^SIG/, "");
          state.signals.push(name);
          if (!opts.likeOpenSshRoot) kill(`SIG${name}` as NodeJS.Signals);
        });
        session.on("env", (accept) => accept?.());
        session.on("exec", (accept, _reject, info) => {
          const stream = accept();
          state.execs.push(info.command);
          const proc = spawn("sh", ["-c", info.command], { cwd: dir, env: opts.env ?? process.env, detached: true, stdio: "pipe" });
          child = proc;
          children.add(proc);
          proc.stdin.on("error", () => undefined); // the command need not read its stdin
          stream.pipe(proc.stdin);
          proc.stdout.pipe(stream, { end: false });
          proc.stderr.pipe(stream.stderr, { end: false });
          if (!opts.likeOpenSshRoot) stream.on("close", () => kill("SIGKILL"));
          proc.on("error", (err) => {
            stream.stderr.write(`${err.message}\n`);
            stream.exit(127);
            stream.end();
          });
          proc.on("close", (code, signal) => {
            children.delete(proc);
            if (code !== null) stream.exit(code);
            else stream.exit((signal ?? "SIGKILL").replace(/^SIG/, ""), false, "");
            stream.end();
          });
        });
      });
      client.on("tcpip", (accept, reject, info) => {
        if (!opts.forwarding) return reject();
        const sock = netConnect(info.destPort, info.destIP);
        sockets.add(sock);
        sock.once("error", () => reject());
        sock.once("connect", () => {
          state.forwards++;
          const channel = accept();
          sock.removeAllListeners("error");
          sock.on("error", () => channel.destroy());
          channel.on("error", () => sock.destroy());
          channel.on("close", () => sock.destroy());
          sock.on("close", () => {
            sockets.delete(sock);
            channel.end();
          });
          sock.pipe(channel).pipe(sock);
        });
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  state.port = (server.address() as AddressInfo).port;
  state.close = async () => {
    for (const c of children) {
      try {
        if (c.pid !== undefined) process.kill(-c.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    for (const s of sockets) s.destroy();
    for (const c of clients) c.end();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  };
  return state;
}

function publicKeyAuth(ctx: PublicKeyAuthContext, user: TestUser): void {
  const allowed = (user.publicKeys ?? [])
    .map((line) => utils.parseKey(line))
    .find((k) => {
      if (k instanceof Error) return false;
      return k.type === ctx.key.algo && k.getPublicSSH().equals(ctx.key.data);
    });
  if (!allowed || allowed instanceof Error) return ctx.reject(["password", "publickey"]);
  if (!ctx.signature) return ctx.accept(); // the client asks whether the key would do
  if (allowed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true) return ctx.accept();
  ctx.reject(["password", "publickey"]);
}

/** A TCP port that was free a moment ago (for a server started later on purpose). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/**
 * A `sudo` stand-in on PATH for the server's commands (the server runs everything as its own
 * user): `-n` succeeds only when FAKE_SUDO_NOPASSWD=1; `-S` reads one line from stdin and
 * compares it with FAKE_SUDO_PASSWORD. The command then runs with SUDO_OK=1.
 */
export function fakeSudoEnv(opts: { nopasswd?: boolean; password?: string }): { env: NodeJS.ProcessEnv; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "sealant-fake-sudo-"));
  mkdirSync(join(dir, "bin"));
  const script = join(dir, "bin", "sudo");
  writeFileSync(
    script,
    `#!/bin/sh
mode=n
while [ $# -gt 0 ]; do
  case "$1" in
    -n) mode=n; shift;;
    -k) shift;;
    -S) mode=S; shift;;
    -p) shift 2;;
    --) shift; break;;
    *) break;;
  esac
done
if [ "$mode" = n ]; then
  if [ "$FAKE_SUDO_NOPASSWD" = 1 ]; then SUDO_OK=1 exec "$@"; fi
  echo "sudo: a password is required" >&2; exit 1
fi
IFS= read -r pw
if [ "$pw" != "$FAKE_SUDO_PASSWORD" ]; then echo "sudo: 1 incorrect password attempt" >&2; exit 1; fi
SUDO_OK=1 exec "$@"
`,
  );
  chmodSync(script, 0o755);
  return {
    env: {
      ...process.env,
      PATH: `${join(dir, "bin")}:${process.env["PATH"] ?? "/usr/bin:/bin"}`,
      FAKE_SUDO_NOPASSWD: opts.nopasswd ? "1" : "0",
      FAKE_SUDO_PASSWORD: opts.password ?? "",
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
