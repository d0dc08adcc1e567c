import { spawn } from "node:child_process";
import { abortError } from "../util/abort";

export interface RunResult {
  code: number;
  stderrTail: string;
}

/** After SIGTERM to a RUN's process group, how long its processes get before SIGKILL. */
const KILL_GRACE_MS = 1000;

/**
 * Runs a RUN instruction with the build machine's shell, in the rootfs built so far. Output
 * goes to `onOutput` (progress) and the last lines of stderr are kept for the error message.
 *
 * The command gets a process group of its own, so an abort (the build interrupted) stops all
 * of it — `sh -c "sleep 600"` included, whose sleep would otherwise outlive the shell and hold
 * its output pipes open: SIGTERM to the group, SIGKILL after a second. The promise then fails
 * with the abort's reason.
 */
export function runBuildCommand(
  command: string | readonly string[],
  opts: { cwd: string; env: Record<string, string>; signal?: AbortSignal; onOutput?: (chunk: string) => void },
): Promise<RunResult> {
  const [file, args] = typeof command === "string" ? ["/bin/sh", ["-c", command]] : [command[0]!, command.slice(1)];
  return new Promise((resolve, reject) => {
    const signal = opts.signal;
    if (signal?.aborted) return reject(abortError(signal));
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: { PATH: process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: process.env.HOME ?? "/root", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, sig);
      } catch {
        // the group is gone already
      }
    };
    const onAbort = (): void => {
      killGroup("SIGTERM");
      killTimer = setTimeout(() => killGroup("SIGKILL"), KILL_GRACE_MS);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    let tail = "";
    child.stdout.on("data", (d: Buffer) => opts.onOutput?.(d.toString()));
    child.stderr.on("data", (d: Buffer) => {
      const s = d.toString();
      opts.onOutput?.(s);
      tail = (tail + s).slice(-4096);
    });
    const settle = (): void => {
      signal?.removeEventListener("abort", onAbort);
      clearTimeout(killTimer);
    };
    child.on("error", (err) => {
      settle();
      reject(signal?.aborted ? abortError(signal) : err);
    });
    child.on("close", (code, sig) => {
      settle();
      // A background process the command left behind would still be in the group: end it too.
      killGroup("SIGKILL");
      if (signal?.aborted) reject(abortError(signal));
      else resolve({ code: code ?? (sig ? 128 : 1), stderrTail: lastLines(tail, 10) });
    });
  });
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split("\n").slice(-n).join("\n");
}
