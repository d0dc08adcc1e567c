/**
 * An SshConnection's bulk path: `upload` of a tar file streams it from a worker thread (bulk.ts)
 * while the connection itself stays the control channel — sudo is probed on it, and an aborted
 * or timed-out send's command is killed through it — so a send behaves as an exec would.
 */
import { readFile } from "node:fs/promises";
import type { ExecResult } from "./connection";
import { bulkPool, type BulkConnect } from "./bulk";
import { CIPHERS, type SshEndpoint } from "./dial";
import { RemoteCommandError, SshError, errorMessage } from "./errors";
import { tailOf } from "./output";
import { redact } from "./redact";
import { PID_MARKER, wireCommand, withPidReport, type SudoMode } from "./shell";
import type { SendFile } from "./upload";

export interface BulkHost {
  host: string;
  endpoint: SshEndpoint;
  /** Names the worker's connection: one per main connection. */
  key: string;
  secrets: readonly string[];
  sudoPassword?: string;
  sudo(signal?: AbortSignal): Promise<SudoMode>;
  /** The verified host key of the open main connection (connecting first if needed). */
  verifiedHostKey(signal?: AbortSignal): Promise<Buffer>;
  /** Kills a command's process group over the main connection. */
  kill(pid: number, sudo: boolean): Promise<void>;
}

/**
 * Whether sends to this endpoint can take the bulk path: not through a bastion (the worker
 * would have to re-open every hop), and not when `SEALANT_BULK_WORKERS=0` asks for the main
 * thread (for comparisons).
 */
export function bulkPathFor(ep: SshEndpoint, enabled: boolean | undefined): boolean {
  if (enabled === false || process.env["SEALANT_BULK_WORKERS"] === "0") return false;
  return ep.bastion === undefined;
}

export function bulkSendFile(h: BulkHost): SendFile {
  let keyText: Promise<string | Buffer | undefined> | undefined;
  return async (command, file, opts) => {
    const ep = h.endpoint;
    const shown = redact(command, h.secrets);
    const aborted = (cause?: unknown): RemoteCommandError =>
      new RemoteCommandError({ host: h.host, command: shown, exitCode: null, stderrTail: "", aborted: true }, { cause });
    if (opts.signal?.aborted) throw aborted(opts.signal.reason);
    const sudo = opts.sudo ? await h.sudo(opts.signal) : "none";
    const hostKey = await h.verifiedHostKey(opts.signal);
    keyText ??=
      ep.privateKey !== undefined ? Promise.resolve(ep.privateKey) : ep.privateKeyPath !== undefined ? readFile(ep.privateKeyPath) : Promise.resolve(undefined);
    const privateKey = await keyText.catch((err: unknown) => {
      keyText = undefined;
      throw new SshError(h.host, `reading private key ${ep.privateKeyPath}: ${errorMessage(err)}`, { cause: err });
    });
    const agent = ep.agent === true ? process.env["SSH_AUTH_SOCK"] : ep.agent || undefined;
    const connect: BulkConnect = {
      key: h.key,
      host: ep.host,
      port: ep.port ?? 22,
      username: ep.user ?? "root",
      readyTimeout: ep.connectTimeoutMs ?? 20_000,
      ciphers: [...CIPHERS],
      hostKey,
      ...(ep.password !== undefined ? { password: ep.password } : {}),
      ...(privateKey !== undefined ? { privateKey } : {}),
      ...(ep.passphrase !== undefined ? { passphrase: ep.passphrase } : {}),
      ...(agent ? { agent } : {}),
    };
    const wire = wireCommand(command, { sudo });
    const password = sudo === "password" ? (h.sudoPassword ?? ep.password)! : undefined;
    const head = [...(password !== undefined ? [`${password}\n`] : []), ...(wire.stdinPrefix !== undefined ? [wire.stdinPrefix] : [])].join("");

    // Stopping (abort or timeout): the worker closes its channel, the command's process group is
    // killed over the main connection, as exec does.
    const stop = new AbortController();
    let why: "abort" | "timeout" | undefined;
    let pid: number | undefined;
    let killed: Promise<void> | undefined;
    const stopNow = (w: "abort" | "timeout"): void => {
      if (why) return;
      why = w;
      stop.abort();
      if (pid !== undefined) killed = h.kill(pid, opts.sudo === true).catch(() => undefined);
    };
    const onAbort = (): void => stopNow("abort");
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const timer = opts.timeoutMs !== undefined ? setTimeout(() => stopNow("timeout"), opts.timeoutMs) : undefined;
    let r;
    try {
      r = await bulkPool().send(h.host, {
        connect,
        line: withPidReport(wire.line),
        ...(head !== "" ? { head: Buffer.from(head) } : {}),
        file,
        gunzip: opts.gunzip,
        ...(opts.growsTo !== undefined ? { growsTo: opts.growsTo } : {}),
        pidMarker: PID_MARKER,
        signal: stop.signal,
        onBytes: opts.onBytes,
        onPid: (p) => {
          if (!Number.isSafeInteger(p) || p <= 1) return;
          pid = p;
          if (why && !killed) killed = h.kill(pid, opts.sudo === true).catch(() => undefined);
        },
      });
    } catch (err) {
      // The worker (or its connection) is gone: the command must not outlive the send.
      if (pid !== undefined && !killed) killed = h.kill(pid, opts.sudo === true).catch(() => undefined);
      const reason = redact(err instanceof SshError && err.host === h.host ? err.reason : errorMessage(err), h.secrets);
      throw new SshError(h.host, `sending ${file} (worker thread): ${reason}`, { cause: err });
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
      if (timer) clearTimeout(timer);
      await killed;
    }
    const base = { host: h.host, command: shown, exitCode: null, stderrTail: tailOf(redact(r.stderr.trim() !== "" ? r.stderr : r.stdout, h.secrets)) };
    if (why === "timeout") throw new RemoteCommandError({ ...base, timedOut: { ms: opts.timeoutMs! } });
    if (why === "abort") throw new RemoteCommandError({ ...base, aborted: true }, { cause: opts.signal?.reason });
    if (r.code === undefined && r.signal === undefined) throw new RemoteCommandError({ ...base, connectionLost: true });
    const result: ExecResult = { code: r.code ?? -1, ...(r.signal !== undefined ? { signal: r.signal } : {}), stdout: r.stdout, stderr: r.stderr };
    return result;
  };
}
