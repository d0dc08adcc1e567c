/**
 * The narrow transport every phase uses (after k0sproject/rig): run a command, upload a tree,
 * close. SshConnection is the real one; FakeConnection (fake.ts) answers from a script.
 */
import type { Readable } from "node:stream";
import { RemoteCommandError } from "./errors";
import { tailOf } from "./output";
import { redact } from "./redact";

export interface ExecOptions {
  /**
   * Fed to the command's stdin, which is then closed; without it stdin is closed at once. A
   * stream is consumed with backpressure, and destroyed if the command ends before reading it all.
   */
  stdin?: Readable | string | Buffer;
  /** Kill the command (and fail) when it runs longer. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Run as root: through sudo when the login user is not root (no-op for root). */
  sudo?: boolean;
  /**
   * Environment for the command: sent on its stdin ahead of `stdin` and exported by the shell
   * that runs it, so it works whatever sshd's AcceptEnv says and no value shows in a process
   * list or sudo's log.
   */
  env?: Record<string, string>;
  /** Live output, as it arrives (also buffered into the result, up to the cap). */
  onStdout?(chunk: Buffer): void;
  onStderr?(chunk: Buffer): void;
  /** Cap for the buffered stdout (the tail is kept). @default 16 MiB */
  maxStdoutBytes?: number;
  /** Cap for the buffered stderr (the tail is kept). @default 1 MiB */
  maxStderrBytes?: number;
  /** More secret values to keep out of errors and logs (tokens in this command, say). */
  secrets?: readonly string[];
}

export interface ExecResult {
  /** Exit status; -1 when the command was killed by a signal (see `signal`). */
  code: number;
  /** `SIGKILL` etc. when the command was killed by a signal. */
  signal?: string;
  stdout: string;
  stderr: string;
  /** Bytes of output dropped from the front because the caps were reached. */
  truncatedBytes?: number;
}

/** A local file or directory (copied recursively, symlinks kept as links) or inline content. */
export type UploadEntry =
  | { /** Local path. */ local: string; /** Path inside the target directory ("." for the root). */ path: string; mode?: number }
  | { content: string | Buffer; path: string; mode?: number };

/** A ready tar stream (e.g. an image layer), optionally gzip-compressed. */
export interface UploadTar {
  tar: Readable;
  gzip?: boolean;
  /** Top-level paths in the tar not to extract (e.g. `registry` on hosts that serve no registry). */
  exclude?: readonly string[];
}

/**
 * A tar file on this machine (an image layer's blob, say), gunzipped on the way when `gunzip`.
 * The bulk path: an SshConnection streams it from a worker thread over a data connection of
 * its own (bulk.ts), so several hosts' streams use every core.
 */
export interface UploadTarFile {
  tarFile: string;
  /** Gunzip the file here and send plain tar (a gzip layer gzip does not shrink). */
  gunzip?: boolean;
  /** The bytes sent are gzip: the host extracts with `tar -xz`. */
  gzip?: boolean;
  exclude?: readonly string[];
  /**
   * The file is still being written (a plain copy of a layer, made once for every host that
   * is sent it): it is read as it grows until it holds this many bytes. Not with `gunzip`.
   */
  growsTo?: number;
}

export type UploadSource = readonly UploadEntry[] | UploadTar | UploadTarFile;

export interface UploadProgress {
  /** Bytes sent over the connection so far (compressed bytes for a gzip stream). */
  bytes: number;
  elapsedMs: number;
  mibPerSec: number;
}

export interface UploadOptions {
  sudo?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called at most every `progressIntervalMs` (default 250) and once at the end. */
  onProgress?(p: UploadProgress): void;
  progressIntervalMs?: number;
}

export interface UploadResult extends UploadProgress {
  /** The directory that now holds the upload. */
  target: string;
}

export interface Connection {
  /** How the host is named in messages (`127.0.10.2`, or `host:port` for a non-standard port). */
  readonly host: string;
  /** Runs a command; resolves whatever its exit code. Rejects on timeout, abort, or a lost connection. */
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Like exec, but a non-zero exit is a RemoteCommandError (host, command, exit code, stderr tail). */
  run(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /**
   * Makes `targetDir` hold exactly what `source` describes: the tar is extracted into a temp
   * directory beside it, which replaces `targetDir` only once the whole stream arrived and
   * extracted cleanly — an interrupted upload never looks complete.
   */
  upload(targetDir: string, source: UploadSource, opts?: UploadOptions): Promise<UploadResult>;
  close(): Promise<void>;
}

/** The error `run` throws for a result with a non-zero exit code (undefined when it succeeded). */
export function failureOf(host: string, command: string, result: ExecResult, secrets: Iterable<string | undefined>): RemoteCommandError | undefined {
  if (result.code === 0 && result.signal === undefined) return undefined;
  const secretList = [...secrets];
  const out = result.stderr.trim() !== "" ? result.stderr : result.stdout;
  return new RemoteCommandError({
    host,
    command: redact(command, secretList),
    exitCode: result.signal === undefined ? result.code : null,
    ...(result.signal !== undefined ? { signal: result.signal } : {}),
    stderrTail: tailOf(redact(out, secretList)),
  });
}
