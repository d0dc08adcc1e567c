import { envSecrets, redact, type Connection, type ExecResult } from "../../ssh";
import { POSIX_ENV_NAME } from "../spec";
import type { ClusterEvent } from "./context";

/**
 * The env a command on a host gets: the names a shell can export. sealer-style names with "-"
 * or "." (`etcd-dir`) serve templates only (no shell can export them).
 */
export function commandEnv(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => POSIX_ENV_NAME.test(k)));
}

export interface StreamedCommand {
  command: string;
  env: Record<string, string>;
  /** The step id, for output events. */
  step: string;
  timeoutMs: number;
  signal?: AbortSignal;
  emit(e: ClusterEvent): void;
  secrets?: readonly string[];
  /** Fed to the command's stdin. */
  stdin?: string | Buffer;
  /** Resolve whatever the exit code (the caller looks at it). @default false: a non-zero exit throws */
  anyExitCode?: boolean;
}

/** Runs a step's command as root, its output streamed line by line as events (secrets redacted); a non-zero exit throws with the stderr tail. */
export async function runStreamed(conn: Connection, c: StreamedCommand): Promise<ExecResult> {
  const secrets = [...(c.secrets ?? []), ...envSecrets(c.env)];
  const lines = (stream: "stdout" | "stderr") => {
    let rest = "";
    const emit = (line: string): void => c.emit({ type: "output", host: conn.host, step: c.step, stream, line: redact(line, secrets) });
    return {
      add(chunk: Buffer): void {
        const parts = (rest + chunk.toString("utf8")).split("\n");
        rest = parts.pop() ?? "";
        parts.forEach(emit);
      },
      /** The last line, when the command ended without a newline. */
      flush(): void {
        if (rest !== "") emit(rest);
        rest = "";
      },
    };
  };
  const out = lines("stdout");
  const err = lines("stderr");
  try {
    return await (c.anyExitCode ? conn.exec : conn.run).call(conn, c.command, {
      sudo: true,
      env: commandEnv(c.env),
      timeoutMs: c.timeoutMs,
      onStdout: (b) => out.add(b),
      onStderr: (b) => err.add(b),
      ...(c.signal ? { signal: c.signal } : {}),
      ...(c.secrets ? { secrets: c.secrets } : {}),
      ...(c.stdin !== undefined ? { stdin: c.stdin } : {}),
    });
  } finally {
    out.flush();
    err.flush();
  }
}
