import { spawn } from "node:child_process";

export interface RunResult {
  code: number;
  stderrTail: string;
}

/**
 * Runs a RUN instruction with the build machine's shell, in the rootfs built so far. Output
 * goes to `onOutput` (progress) and the last lines of stderr are kept for the error message.
 */
export function runBuildCommand(
  command: string | readonly string[],
  opts: { cwd: string; env: Record<string, string>; signal?: AbortSignal; onOutput?: (chunk: string) => void },
): Promise<RunResult> {
  const [file, args] = typeof command === "string" ? ["/bin/sh", ["-c", command]] : [command[0]!, command.slice(1)];
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: { PATH: process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: process.env.HOME ?? "/root", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    let tail = "";
    child.stdout.on("data", (d: Buffer) => opts.onOutput?.(d.toString()));
    child.stderr.on("data", (d: Buffer) => {
      const s = d.toString();
      opts.onOutput?.(s);
      tail = (tail + s).slice(-4096);
    });
    child.on("error", reject);
    child.on("close", (code, sig) => resolve({ code: code ?? (sig ? 128 : 1), stderrTail: lastLines(tail, 10) }));
  });
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split("\n").slice(-n).join("\n");
}
