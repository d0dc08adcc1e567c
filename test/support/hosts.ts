/**
 * Running a command on a sandbox host: over ssh as root with the system client (host key verified,
 * as a user's ssh would), or — without ssh — inside the host's own namespaces (`inHost`).
 */
import { spawn } from "node:child_process";
import { hostExec, sshArgs, type Sandbox, type SandboxHost } from "../../src/engine/sandbox";

export interface HostResult {
  code: number;
  /** Trimmed. */
  stdout: string;
  /** Trimmed. */
  stderr: string;
}

export interface HostRunOptions {
  /** Written to the command's stdin. @default nothing */
  input?: string;
  /** The call fails when ssh has not finished by then. @default 120 s */
  timeoutMs?: number;
}

const nameOf = (host: SandboxHost | string) => (typeof host === "string" ? host : host.hostname);

/** Runs a shell command as root on a sandbox host (by IP, hostname or host) over ssh; never throws on a non-zero exit. */
export function runOnHost(sb: Sandbox, host: SandboxHost | string, command: string, opts: HostRunOptions = {}): Promise<HostResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const child = spawn("ssh", sshArgs(sb, host, command), { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`ssh ${nameOf(host)} ${command}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.stdin.end(opts.input ?? "");
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: stdout.trim(), stderr: stderr.trim() });
    });
  });
}

/** The same, failing with the host, command, exit code and stderr unless the command exits 0; returns trimmed stdout. */
export async function onHost(sb: Sandbox, host: SandboxHost | string, command: string, opts: HostRunOptions = {}): Promise<string> {
  const r = await runOnHost(sb, host, command, opts);
  if (r.code !== 0) throw new Error(`${nameOf(host)}: \`${command}\` exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A command inside a sandbox host (its own namespaces, no ssh), failing with its stderr; returns trimmed stdout. */
export async function inHost(sb: Sandbox, ip: string, script: string): Promise<string> {
  const r = await hostExec(sb, ip, ["/bin/sh", "-c", script], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${ip}: \`${script}\` exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}
