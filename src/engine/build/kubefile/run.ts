import { LineError } from "./errors";
import type { Instruction } from "./instructions";
import type { ParseState } from "./state";
import { looksLikeJson, NOT_STRINGS_MESSAGE, parseJsonArray } from "./words";

/** The environment a RUN sees: ARCH, then the stage ARGs, then ENV (later wins). */
function runEnv(st: ParseState): Record<string, string> {
  const env: Record<string, string> = {};
  if (st.opts.arch !== undefined) env.ARCH = st.opts.arch;
  for (const [k, v] of st.stageArgs) if (v !== undefined) env[k] = v;
  for (const [k, v] of st.env) env[k] = v;
  return env;
}

/** RUN <command> (shell form, kept as written) or RUN ["executable", "arg", ...]. */
export function parseRun(st: ParseState, flags: string[], rest: string, line: number): Instruction {
  if (rest === "") throw new LineError('RUN requires a command: RUN <command> or RUN ["executable", "arg", ...]');
  const json = parseJsonArray(rest);
  let command: string | string[];
  if (json.kind === "array") {
    if (json.values.length === 0) throw new LineError("RUN requires a command: the JSON array is empty");
    command = json.values;
  } else if (json.kind === "not-strings") {
    throw new LineError(`RUN: ${NOT_STRINGS_MESSAGE}`);
  } else {
    if (json.kind === "invalid" && looksLikeJson(rest)) {
      st.warn(line, `RUN looks like a JSON array but is not valid JSON (${json.reason}); running it as a shell command`);
    }
    command = rest;
  }
  return { kind: "RUN", line, command, flags: [...flags], env: runEnv(st) };
}
