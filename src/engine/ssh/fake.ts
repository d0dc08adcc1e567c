/**
 * A scripted Connection for phase unit tests: records every command and upload, and answers
 * commands from rules (first match wins; a rule may be limited to a number of uses).
 *
 *   const host = new FakeConnection("10.0.0.7")
 *     .on(/^kubeadm join/, { code: 1, stderr: "token expired" })
 *     .on("uname -m", { stdout: "x86_64\n" });
 */
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";
import type { Connection, ExecOptions, ExecResult, UploadOptions, UploadResult, UploadSource } from "./connection";
import { failureOf } from "./connection";
import { RemoteCommandError } from "./errors";
import { envSecrets, redact } from "./redact";
import { checkTargetDir, isTarFileSource, isTarSource, packEntries, tarFileStream } from "./upload";

export interface FakeReply {
  code?: number;
  stdout?: string;
  stderr?: string;
  signal?: string;
}

export type FakeAnswer = FakeReply | Error | ((command: string, match: RegExpMatchArray, opts: ExecOptions) => FakeReply | Error | Promise<FakeReply | Error>);

export interface FakeRule {
  /** A RegExp, or a string that must equal the whole command. */
  match: RegExp | string;
  answer: FakeAnswer;
  /** How many times the rule answers before it is used up. @default unlimited */
  times?: number;
}

export interface FakeCommand {
  command: string;
  sudo: boolean;
  env?: Record<string, string>;
  /** stdin as text, when one was given. */
  stdin?: string;
}

export interface FakeUpload {
  target: string;
  sudo: boolean;
  /** Regular files by path inside the target. */
  files: Map<string, Buffer>;
  /** Other entries (directories, links) by path, with their type. */
  others: Map<string, string>;
  bytes: number;
}

export interface FakeConnectionOptions {
  /** What a command no rule matches gets: an Error thrown ("error"), or exit 0 ("ok"). @default "error" */
  unmatched?: "error" | "ok";
  secrets?: readonly string[];
}

export class FakeConnection implements Connection {
  readonly commands: FakeCommand[] = [];
  readonly uploads: FakeUpload[] = [];
  closed = false;
  private readonly rules: { match: RegExp | string; answer: FakeAnswer; left: number }[] = [];

  constructor(
    readonly host = "fake-host",
    rules: readonly FakeRule[] = [],
    private readonly opts: FakeConnectionOptions = {},
  ) {
    for (const r of rules) this.on(r.match, r.answer, r.times);
  }

  /** Adds a rule (after the existing ones). */
  on(match: RegExp | string, answer: FakeAnswer, times = Infinity): this {
    this.rules.push({ match, answer, left: times });
    return this;
  }

  /** The recorded commands that match `pattern`. */
  ran(pattern: RegExp | string): string[] {
    return this.commands.map((c) => c.command).filter((c) => (typeof pattern === "string" ? c === pattern : pattern.test(c)));
  }

  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (this.closed) throw new Error(`${this.host}: connection is closed`);
    const secrets = [...(this.opts.secrets ?? []), ...(opts.secrets ?? []), ...envSecrets(opts.env)];
    if (opts.signal?.aborted) {
      throw new RemoteCommandError(
        { host: this.host, command: redact(command, secrets), exitCode: null, stderrTail: "", aborted: true },
        { cause: opts.signal.reason },
      );
    }
    const stdin = opts.stdin === undefined ? undefined : await readAll(opts.stdin);
    this.commands.push({
      command,
      sudo: opts.sudo === true,
      ...(opts.env ? { env: { ...opts.env } } : {}),
      ...(stdin !== undefined ? { stdin: stdin.toString("utf8") } : {}),
    });
    for (const rule of this.rules) {
      if (rule.left <= 0) continue;
      const m = typeof rule.match === "string" ? (rule.match === command ? ([command] as RegExpMatchArray) : null) : command.match(rule.match);
      if (!m) continue;
      rule.left--;
      const answer = typeof rule.answer === "function" ? await rule.answer(command, m, opts) : rule.answer;
      if (answer instanceof Error) throw answer;
      const result: ExecResult = {
        code: answer.code ?? (answer.signal ? -1 : 0),
        stdout: answer.stdout ?? "",
        stderr: answer.stderr ?? "",
        ...(answer.signal ? { signal: answer.signal } : {}),
      };
      if (result.stdout) opts.onStdout?.(Buffer.from(result.stdout));
      if (result.stderr) opts.onStderr?.(Buffer.from(result.stderr));
      return result;
    }
    if (this.opts.unmatched === "ok") return { code: 0, stdout: "", stderr: "" };
    throw new Error(`${this.host}: no fake rule matches the command: ${redact(command, secrets)}`);
  }

  async run(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const result = await this.exec(command, opts);
    const failure = failureOf(this.host, command, result, [...(this.opts.secrets ?? []), ...(opts.secrets ?? []), ...envSecrets(opts.env)]);
    if (failure) throw failure;
    return result;
  }

  /** Reads the whole tar (gunzipped when asked) and records its entries. */
  async upload(targetDir: string, given: UploadSource, opts: UploadOptions = {}): Promise<UploadResult> {
    if (this.closed) throw new Error(`${this.host}: connection is closed`);
    const source = isTarFileSource(given) ? tarFileStream(given) : given;
    const target = checkTargetDir(targetDir);
    const started = Date.now();
    const raw = isTarSource(source) ? source.tar : packEntries(source);
    let bytes = 0;
    raw.on("data", (c: Buffer) => (bytes += c.length));
    const stream = isTarSource(source) && source.gzip ? raw.pipe(createGunzip()) : raw;
    raw.on("error", (err) => stream.destroy(err));
    const record: FakeUpload = { target, sudo: opts.sudo === true, files: new Map(), others: new Map(), bytes: 0 };
    const extract = tar.extract();
    const done = (async () => {
      for await (const entry of extract) {
        const name = entry.header.name.replace(/^\.\//, "").replace(/\/$/, "");
        if (entry.header.type === "file") record.files.set(name, await readAll(entry as unknown as Readable));
        else {
          record.others.set(name, entry.header.type);
          entry.resume();
        }
      }
    })();
    stream.on("error", (err) => extract.destroy(err));
    stream.pipe(extract as unknown as NodeJS.WritableStream);
    await done;
    record.bytes = bytes;
    this.uploads.push(record);
    const elapsedMs = Date.now() - started;
    const progress = { bytes, elapsedMs, mibPerSec: elapsedMs > 0 ? bytes / (1 << 20) / (elapsedMs / 1000) : 0 };
    opts.onProgress?.(progress);
    return { ...progress, target };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

async function readAll(src: Readable | string | Buffer): Promise<Buffer> {
  if (typeof src === "string") return Buffer.from(src);
  if (Buffer.isBuffer(src)) return src;
  const chunks: Buffer[] = [];
  for await (const c of src) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks);
}
