import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import type { Sandbox, SandboxHost } from "./types";

export interface HostExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface HostExecOptions {
  /** Written to the command's stdin. */
  input?: string;
  /** Killed after this long (the result is then exit code 124 and says so). @default 30000 */
  timeoutMs?: number;
  /** Extra environment (the command otherwise gets PATH, HOME=/root and LANG only). */
  env?: Record<string, string>;
}

const HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * Runs `argv` inside a running host without SSH (for diagnosis, or when sshd itself is the
 * problem): `nsenter` into all the host's namespaces (mount, UTS, IPC, network, PID, cgroup) and
 * its root, as root, with a clean environment. In Kubernetes mode the command also joins the
 * host's cgroups, so it is accounted to the host like anything started inside it.
 */
export function hostExec(sb: Sandbox, host: SandboxHost | string, argv: string[], opts: HostExecOptions = {}): Promise<HostExecResult> {
  const h = typeof host === "string" ? sb.hosts.find((x) => x.hostname === host || x.ip === host) : host;
  if (!h) return Promise.reject(new Error(`sandbox "${sb.name}" has no host "${String(host)}"`));
  if (!h.running || !h.pid) return Promise.reject(new Error(`${h.hostname} (${h.ip}) is not running`));
  if (!argv.length) return Promise.reject(new Error("hostExec: no command"));
  const env = Object.entries({ PATH: HOST_PATH, HOME: "/root", LANG: "C.UTF-8", ...opts.env }).map(([k, v]) => `${k}=${v}`);
  // Inside a Kubernetes-mode host every /sys/fs/cgroup/* is rooted at the host's own cgroup.
  const join = sb.kubernetes
    ? 'for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/*/cgroup.procs; do [ ! -w "$f" ] || echo $$ > "$f" 2> /dev/null || :; done; '
    : "";
  const args = [
    "-t",
    String(h.pid),
    "-m",
    "-u",
    "-i",
    "-n",
    "-p",
    "-C",
    "-r",
    "-w",
    "--",
    "/usr/bin/env",
    "-i",
    ...env,
    "/bin/sh",
    "-c",
    `${join}exec "$@"`,
    "sh",
    ...argv,
  ];
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn("nsenter", args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let settled = false;
    const settle = (r: HostExecResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      // nsenter forked the command into the host's PID namespace: kill that child too, then stop
      // waiting (something it started in the background may still hold the output pipes).
      void readFile(`/proc/${child.pid}/task/${child.pid}/children`, "utf8")
        .catch(() => "")
        .then((kids) => {
          for (const k of kids.split(/\s+/).filter(Boolean)) {
            try {
              process.kill(Number(k), "SIGKILL");
            } catch {
              // gone
            }
          }
          child.kill("SIGKILL");
          child.stdout.destroy();
          child.stderr.destroy();
          settle({ code: 124, stdout, stderr: `${stderr}\n(killed after ${timeoutMs} ms)` });
        });
    }, timeoutMs);
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
    child.on("error", (err) => {
      clearTimeout(timer);
      settled = true;
      reject(new Error(`nsenter into ${h.hostname}: ${err.message}`));
    });
    child.on("close", (code, sig) => settle({ code: code ?? (sig ? 128 : -1), stdout, stderr }));
  });
}
