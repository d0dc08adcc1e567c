import type { Connection, ExecResult } from "../../ssh";
import type { ClusterEvent } from "../context";

export interface StreamedCommand {
  command: string;
  env: Record<string, string>;
  /** The step id, for output events. */
  step: string;
  timeoutMs: number;
  signal?: AbortSignal;
  emit(e: ClusterEvent): void;
  secrets?: readonly string[];
}

/** Runs a step's command as root, its output streamed line by line as events; a non-zero exit throws with the stderr tail. */
export async function runStreamed(conn: Connection, c: StreamedCommand): Promise<ExecResult> {
  const lines = (stream: "stdout" | "stderr") => {
    let rest = "";
    return (chunk: Buffer): void => {
      const text = rest + chunk.toString("utf8");
      const parts = text.split("\n");
      rest = parts.pop() ?? "";
      for (const line of parts) c.emit({ type: "output", host: conn.host, step: c.step, stream, line });
    };
  };
  return conn.run(c.command, {
    sudo: true,
    env: c.env,
    timeoutMs: c.timeoutMs,
    onStdout: lines("stdout"),
    onStderr: lines("stderr"),
    ...(c.signal ? { signal: c.signal } : {}),
    ...(c.secrets ? { secrets: c.secrets } : {}),
  });
}
