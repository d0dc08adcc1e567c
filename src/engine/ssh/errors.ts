/**
 * Errors of the SSH layer. Every message starts with the host (`127.0.10.2: ...`) and carries
 * no secret: commands and output are redacted before an error is built. `reason` is the
 * message without the host, for aggregated reports that name the host themselves.
 */

export class SshError extends Error {
  constructor(
    readonly host: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`${host}: ${reason}`, options);
    this.name = "SshError";
  }
}

export interface RemoteCommandFailure {
  host: string;
  /** The command as the caller wrote it (not the sudo/env wrapper), secrets redacted. */
  command: string;
  /** null when the command did not exit by itself (killed by a signal, timed out, aborted, connection lost). */
  exitCode: number | null;
  signal?: string;
  /** Last lines of stderr (of stdout when stderr was empty), secrets redacted. */
  stderrTail: string;
  timedOut?: { ms: number };
  aborted?: boolean;
  /** The connection ended while the command ran. */
  connectionLost?: boolean;
}

/** A remote command that failed: non-zero exit, killed, timed out, aborted, or cut off. */
export class RemoteCommandError extends SshError {
  readonly command: string;
  readonly exitCode: number | null;
  readonly signal: string | undefined;
  readonly stderrTail: string;
  readonly timedOut: boolean;
  readonly aborted: boolean;
  readonly connectionLost: boolean;

  constructor(f: RemoteCommandFailure, options?: ErrorOptions) {
    super(f.host, describeFailure(f), options);
    this.name = "RemoteCommandError";
    this.command = f.command;
    this.exitCode = f.exitCode;
    this.signal = f.signal;
    this.stderrTail = f.stderrTail;
    this.timedOut = f.timedOut !== undefined;
    this.aborted = f.aborted === true;
    this.connectionLost = f.connectionLost === true;
  }
}

function describeFailure(f: RemoteCommandFailure): string {
  const cmd = displayCommand(f.command);
  let what: string;
  if (f.timedOut) what = `${cmd} timed out after ${f.timedOut.ms} ms`;
  else if (f.aborted) what = `${cmd} aborted`;
  else if (f.connectionLost) what = `${cmd}: connection lost while the command ran`;
  else if (f.signal !== undefined) what = `${cmd} was killed by ${f.signal}`;
  else what = `${cmd} exited ${f.exitCode}`;
  return f.stderrTail === "" ? what : `${what}: ${f.stderrTail}`;
}

/** A long or multi-line command (a script) is shown by its first 200 characters, on one line. */
export function displayCommand(command: string, max = 200): string {
  const one = command.replace(/\s*\n\s*/g, "; ").trim();
  return one.length <= max ? one : `${one.slice(0, max)}...`;
}

/**
 * Why a connection could not be made. `refused`, `unreachable`, `timeout` and `closed` are
 * what a host that is still booting looks like and are retried; `auth`, `host-key`, `config`
 * and `protocol` fail at once.
 */
export type ConnectFailureKind = "refused" | "unreachable" | "timeout" | "closed" | "auth" | "host-key" | "config" | "protocol";

export const RETRYABLE_CONNECT_FAILURES: ReadonlySet<ConnectFailureKind> = new Set(["refused", "unreachable", "timeout", "closed"]);

export class SshConnectError extends SshError {
  /** Attempts made before giving up (1 for failures that are not retried). */
  attempts = 1;

  constructor(
    host: string,
    readonly kind: ConnectFailureKind,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(host, reason, options);
    this.name = "SshConnectError";
  }

  get retryable(): boolean {
    return RETRYABLE_CONNECT_FAILURES.has(this.kind);
  }
}

export interface HostKeyInfo {
  keyType: string;
  /** SHA256:base64 (no padding), as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

/** The host presented a key that the policy does not trust: unknown, changed, or revoked. */
export class HostKeyError extends SshConnectError {
  constructor(
    host: string,
    readonly presented: HostKeyInfo,
    readonly problem: "unknown" | "changed" | "revoked",
    reason: string,
    /** The keys the policy knew for this host (empty when unknown). */
    readonly expected: readonly (HostKeyInfo & { source: string })[] = [],
  ) {
    super(host, "host-key", reason);
    this.name = "HostKeyError";
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
