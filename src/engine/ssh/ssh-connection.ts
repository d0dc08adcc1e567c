/**
 * The real Connection: ONE ssh2 connection per host, reused for every command (each exec is
 * a channel on it), re-opened on the next command if it was lost.
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Readable } from "node:stream";
import type { Client, ClientChannel } from "ssh2";
import type { Connection, ExecOptions, ExecResult, UploadOptions, UploadResult, UploadSource } from "./connection";
import { drained } from "../util/streams";
import { failureOf } from "./connection";
import { dial, endpointName, endpointSecrets, validateEndpoint, type Dialed, type DialOptions, type Negotiated, type SshEndpoint } from "./dial";
import { RemoteCommandError, SshError, errorMessage } from "./errors";
import { MarkerLineFilter, TailBuffer, tailOf } from "./output";
import { envSecrets, redact } from "./redact";
import { PID_MARKER, killGroupCommand, withPidReport, wireCommand, type SudoMode, type Wire } from "./shell";
import { uploadWith, type SendFile } from "./upload";
import { bulkPool } from "./bulk";
import { bulkPathFor, bulkSendFile } from "./bulk-send";

export interface SshConnectionOptions extends SshEndpoint, Omit<DialOptions, "signal"> {
  /** How the host is named in messages. @default host, or host:port off port 22 */
  name?: string;
  /** For sudo when the user is not root and sudo asks for one. @default password */
  sudoPassword?: string;
  /**
   * Commands running at once on this connection; more wait their turn (OpenSSH refuses
   * channels beyond its MaxSessions, 10 by default). @default 8
   */
  maxSessions?: number;
  /**
   * Stream tar-file uploads (image layers) from a worker thread over a data connection of its
   * own (same login, the host key this connection verified), so several hosts' streams use
   * every core. Off through a bastion, or with SEALANT_BULK_WORKERS=0. @default true
   */
  bulkWorkers?: boolean;
}

const KILL_GRACE_MS = 2000;

export class SshConnection implements Connection {
  readonly host: string;
  /** Connections opened so far: 1, unless the connection was lost and opened again. */
  connects = 0;
  private dialed: Dialed | undefined;
  private dialing: Promise<Dialed> | undefined;
  private closing = false;
  private sudoMode: Promise<SudoMode> | undefined;
  private readonly secrets: string[];
  private readonly sessions: Slots;
  private readonly bulk: SendFile | undefined;
  private readonly bulkKey = randomBytes(8).toString("hex");

  private constructor(private readonly opts: SshConnectionOptions) {
    this.host = opts.name ?? endpointName(opts);
    this.secrets = [...endpointSecrets(opts), ...(opts.sudoPassword ? [opts.sudoPassword] : []), ...(opts.secrets ?? [])];
    this.sessions = new Slots(Math.max(1, opts.maxSessions ?? 8));
    this.bulk = bulkPathFor(opts, opts.bulkWorkers)
      ? bulkSendFile({
          host: this.host,
          endpoint: opts,
          key: this.bulkKey,
          secrets: this.secrets,
          ...(opts.sudoPassword !== undefined ? { sudoPassword: opts.sudoPassword } : {}),
          sudo: (signal) => this.sudo(signal),
          verifiedHostKey: async (signal) => {
            await this.client(signal);
            return this.dialed!.hostKey;
          },
          kill: async (pid, sudo) => {
            await this.execWith(killGroupCommand(pid), { sudo, timeoutMs: KILL_GRACE_MS }, false);
          },
        })
      : undefined;
  }

  /** Validates the options, then connects (with retries; see SshEndpoint / RetryOptions). */
  static async connect(opts: SshConnectionOptions, signal?: AbortSignal): Promise<SshConnection> {
    validateEndpoint(opts);
    const conn = new SshConnection(opts);
    await conn.client(signal);
    return conn;
  }

  /** The algorithms of the current connection (cipher, compression, kex, host key). */
  get negotiated(): Negotiated | undefined {
    return this.dialed?.negotiated;
  }

  get user(): string {
    return this.opts.user ?? "root";
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.execWith(command, opts, true);
  }

  /** `queued`: wait for a free session slot (kills of stuck commands do not, or they could wait forever). */
  private async execWith(command: string, opts: ExecOptions, queued: boolean): Promise<ExecResult> {
    const secrets = [...this.secrets, ...(opts.secrets ?? []), ...envSecrets(opts.env)];
    const shown = redact(command, secrets);
    if (opts.signal?.aborted)
      throw new RemoteCommandError({ host: this.host, command: shown, exitCode: null, stderrTail: "", aborted: true }, { cause: opts.signal.reason });
    const sudo = opts.sudo ? await this.sudo(opts.signal) : "none";
    const wire = wireCommand(command, { ...(opts.env ? { env: opts.env } : {}), sudo });
    const release = queued ? await this.sessions.acquire() : () => undefined;
    try {
      const client = await this.client(opts.signal);
      this.log(`$ ${shown}`);
      const started = performance.now();
      const result = await this.runChannel(client, wire, shown, sudo, opts, secrets);
      this.log(`exit ${result.signal ?? result.code} in ${(performance.now() - started).toFixed(1)} ms: ${shown}`);
      return result;
    } finally {
      release();
    }
  }

  async run(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const result = await this.exec(command, opts);
    const failure = failureOf(this.host, command, result, [...this.secrets, ...(opts.secrets ?? []), ...envSecrets(opts.env)]);
    if (failure) throw failure;
    return result;
  }

  upload(targetDir: string, source: UploadSource, opts: UploadOptions = {}): Promise<UploadResult> {
    return uploadWith((c, o) => this.exec(c, o), this.host, targetDir, source, opts, this.secrets, this.bulk);
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.bulk) bulkPool().forget(this.bulkKey);
    const dialed = this.dialed ?? (await this.dialing?.catch(() => undefined));
    this.dialed = undefined;
    await dialed?.end();
  }

  private log(line: string): void {
    this.opts.log?.(`${this.host}: ${redact(line, this.secrets)}`);
  }

  /** The open client; connects (again) when there is none. */
  private async client(signal?: AbortSignal): Promise<Client> {
    if (this.closing) throw new SshError(this.host, "connection is closed");
    if (this.dialed) return this.dialed.client;
    if (!this.dialing) {
      if (this.connects > 0) this.log("connection was lost; reconnecting");
      const dialOpts: DialOptions = { ...this.opts, secrets: this.secrets, ...(signal ? { signal } : {}), log: (l) => this.opts.log?.(l) };
      this.dialing = dial(this.opts, dialOpts).then(
        (d) => {
          this.connects++;
          this.dialing = undefined;
          this.dialed = d;
          void d.closed.then(() => {
            if (this.dialed === d) this.dialed = undefined;
          });
          return d;
        },
        (err: unknown) => {
          this.dialing = undefined;
          throw err;
        },
      );
    }
    return (await this.dialing).client;
  }

  /**
   * How to become root: not at all for root; `sudo -n` when that works without a password;
   * otherwise the sudo password on stdin. Probed once per connection, the password checked
   * then, alone on stdin: sudo -S takes up to three lines as attempts, so a wrong password
   * on a real command would feed it the command's own input (its env block, a tar stream).
   */
  private sudo(signal?: AbortSignal): Promise<SudoMode> {
    if (this.user === "root") return Promise.resolve("none");
    this.sudoMode ??= (async () => {
      const limits = { timeoutMs: 30_000, ...(signal ? { signal } : {}) };
      const probe = await this.exec("sudo -n -- sh -c true", limits);
      if (probe.code === 0) return "nopasswd" as const;
      const password = this.opts.sudoPassword ?? this.opts.password;
      if (password === undefined) {
        throw new SshError(
          this.host,
          `sudo needs a password for user "${this.user}" (sudo -n: ${redact(tailOf(probe.stderr), this.secrets) || `exit ${probe.code}`}); set sudoPassword`,
        );
      }
      const check = await this.exec(wireCommand("true", { sudo: "password" }).line, { ...limits, stdin: `${password}\n` });
      if (check.code === 0) return "password" as const;
      const said = redact(lastLine(check.stderr), this.secrets) || `exit ${check.code}`;
      throw new SshError(
        this.host,
        /incorrect password/.test(check.stderr)
          ? `sudo refused the password given for user "${this.user}" (${said})`
          : `sudo with the password given for user "${this.user}" failed (${said})`,
      );
    })();
    this.sudoMode.catch(() => (this.sudoMode = undefined));
    return this.sudoMode;
  }

  private async runChannel(client: Client, wire: Wire, shown: string, sudo: SudoMode, opts: ExecOptions, secrets: string[]): Promise<ExecResult> {
    const { channel, exit } = await openExec(client, withPidReport(wire.line)).catch((err: unknown) => {
      throw new SshError(this.host, `${shown}: cannot open a session: ${redact(errorMessage(err), secrets)}`, { cause: err });
    });
    const out = new TailBuffer(opts.maxStdoutBytes ?? 16 << 20);
    const err = new TailBuffer(opts.maxStderrBytes ?? 1 << 20);
    channel.on("data", (c: Buffer) => {
      out.push(c);
      opts.onStdout?.(c);
    });
    const pidLine = new MarkerLineFilter(PID_MARKER, (c) => {
      err.push(c);
      opts.onStderr?.(c);
    });
    channel.stderr.on("data", (c: Buffer) => pidLine.push(c));
    let isClosed = false;
    const closed = Promise.all([
      new Promise<void>((r) => channel.once("close", () => r())),
      new Promise<void>((r) => {
        channel.stderr.once("end", r);
        channel.stderr.once("close", r);
      }),
    ]).then(() => {
      isClosed = true;
    });

    // Stopping: a KILL signal request (OpenSSH honours it for non-root users only), then
    // `kill -KILL -- -PID` of the command's process group over another channel, then closing
    // the channel - so when exec rejects, the remote command is gone.
    let stopped: { why: "timeout" | "abort" | "stdin"; cause?: unknown } | undefined;
    let forceClosed!: () => void;
    const forced = new Promise<void>((r) => (forceClosed = r));
    const stop = (why: "timeout" | "abort" | "stdin", cause?: unknown): void => {
      if (stopped || isClosed) return;
      stopped = { why, cause };
      sendSignal(channel, "KILL");
      const pid = Number(pidLine.value);
      const killed =
        Number.isSafeInteger(pid) && pid > 1
          ? this.execWith(killGroupCommand(pid), { ...(opts.sudo ? { sudo: true } : {}), timeoutMs: KILL_GRACE_MS }, false).then(
              () => undefined,
              () => undefined,
            )
          : Promise.resolve();
      void killed.then(() => {
        channel.close();
        setTimeout(forceClosed, KILL_GRACE_MS).unref();
      });
    };
    const timer = opts.timeoutMs !== undefined ? setTimeout(() => stop("timeout"), opts.timeoutMs) : undefined;
    const onAbort = (): void => stop("abort", opts.signal?.reason);
    opts.signal?.addEventListener("abort", onAbort, { once: true });

    const password = sudo === "password" ? (this.opts.sudoPassword ?? this.opts.password)! : undefined;
    const head = [...(password !== undefined ? [`${password}\n`] : []), ...(wire.stdinPrefix !== undefined ? [wire.stdinPrefix] : [])];
    feedStdin(channel, head.length > 0 ? head.join("") : undefined, opts.stdin, () => isClosed).catch((e: unknown) => stop("stdin", e));

    await Promise.race([closed, forced]);
    pidLine.flush();
    // The command is over: a stdin stream it did not read to the end is not read any further.
    const stdin = opts.stdin;
    if (stdin !== undefined && typeof stdin !== "string" && !Buffer.isBuffer(stdin) && !stdin.readableEnded) stdin.destroy();
    if (timer) clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);

    const stdout = out.toString();
    const stderr = err.toString();
    const base = { host: this.host, command: shown, exitCode: null, stderrTail: tailOf(redact(stderr.trim() !== "" ? stderr : stdout, secrets)) };
    if (stopped?.why === "timeout") throw new RemoteCommandError({ ...base, timedOut: { ms: opts.timeoutMs! } });
    if (stopped?.why === "abort") throw new RemoteCommandError({ ...base, aborted: true }, { cause: stopped.cause });
    if (stopped?.why === "stdin") {
      throw new SshError(this.host, `${shown}: stopped: reading its stdin failed: ${redact(errorMessage(stopped.cause), secrets)}`, { cause: stopped.cause });
    }
    const { code, signal: signalName } = exit;
    if (code === undefined && signalName === undefined) throw new RemoteCommandError({ ...base, connectionLost: true });
    const dropped = out.dropped + err.dropped;
    return {
      code: code ?? -1,
      ...(signalName !== undefined ? { signal: signalName } : {}),
      stdout,
      stderr,
      ...(dropped > 0 ? { truncatedBytes: dropped } : {}),
    };
  }
}

/** The last non-empty line (sudo's verdict after its "Sorry, try again." lines). */
function lastLine(text: string): string {
  return text.trim().split("\n").at(-1)?.trim() ?? "";
}

/**
 * Opens an exec channel. The exit status is listened for inside ssh2's callback: packets that
 * arrived in the same read as the exec's confirmation are dispatched before any promise
 * continuation runs, and an 'exit' event nobody listens to yet is lost (data is not: it waits
 * in the stream's buffer).
 */
function openExec(client: Client, command: string): Promise<{ channel: ClientChannel; exit: { code?: number; signal?: string } }> {
  return new Promise((resolve, reject) => {
    try {
      client.exec(command, (err, channel) => {
        if (err) return reject(err);
        const exit: { code?: number; signal?: string } = {};
        channel.on("exit", (c: number | null, s?: string) => {
          if (typeof c === "number") exit.code = c;
          else if (s) exit.signal = s;
        });
        resolve({ channel, exit });
      });
    } catch (err) {
      reject(err); // ssh2 throws "Not connected" synchronously when the socket is gone
    }
  });
}

/**
 * Sends a signal request. ssh2's `channel.signal()` is a no-op once stdin has been ended
 * (it checks `writable`), which is when a timeout usually strikes; the protocol allows the
 * request until the channel closes, so it is sent through the protocol object directly.
 */
function sendSignal(channel: ClientChannel, name: string): void {
  const ch = channel as unknown as { outgoing?: { state?: string; id?: number }; _client?: { _protocol?: { signal?(id: number, name: string): void } } };
  const proto = ch._client?._protocol;
  try {
    if (proto?.signal && ch.outgoing?.id !== undefined && (ch.outgoing.state === "open" || ch.outgoing.state === "eof")) {
      proto.signal(ch.outgoing.id, name);
    } else {
      channel.signal(name);
    }
  } catch {
    // the channel is going away anyway
  }
}

/**
 * Writes what goes ahead of stdin (sudo's password line, the env block), then stdin, honouring
 * backpressure, then EOF.
 * Stops quietly if the command closed the channel first (it need not read all its input).
 * ssh2 never calls back a write on a closed channel, so every wait also ends on 'close'.
 */
async function feedStdin(channel: ClientChannel, head: string | undefined, stdin: ExecOptions["stdin"], isClosed: () => boolean): Promise<void> {
  const write = async (chunk: Buffer): Promise<void> => {
    if (isClosed() || channel.write(chunk)) return;
    await drained(channel);
  };
  if (head !== undefined) await write(Buffer.from(head));
  if (typeof stdin === "string" || Buffer.isBuffer(stdin)) {
    await write(Buffer.from(stdin));
  } else if (stdin !== undefined) {
    for await (const chunk of stdin as Readable) {
      if (isClosed()) break;
      await write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
    }
  }
  if (!isClosed()) channel.end();
}

/** A counting semaphore: at most `size` holders, the rest wait in order. */
class Slots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}

  async acquire(): Promise<() => void> {
    if (this.used >= this.size) await new Promise<void>((r) => this.waiting.push(r));
    else this.used++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.used--;
    };
  }
}
