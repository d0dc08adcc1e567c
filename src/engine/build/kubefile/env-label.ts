import { LineError } from "./errors";
import { LABEL_SUPPORTED_KUBE_VERSION, type Instruction } from "./instructions";
import { kubeVersionRangeProblem } from "./kube-version";
import type { ParseState } from "./state";
import { parseWords } from "./words";

/** ENV/LABEL: `k=v k2="v 2"` or the legacy `k v...` (Docker's parseNameVal). */
function nameValues(st: ParseState, kind: "ENV" | "LABEL", rest: string): Record<string, string> {
  const words = parseWords(rest, st.escape);
  if (words.length === 0) throw new LineError(`${kind} requires at least one argument: ${kind} <key>=<value> ...`);
  const pairs: Record<string, string> = {};
  if (!words[0].includes("=")) {
    const m = /[\t\v\f\r ]+/.exec(rest);
    if (m === null) throw new LineError(`${kind} must have two arguments: ${kind} <key>=<value> (or the legacy ${kind} <key> <value>)`);
    const key = st.expand(rest.slice(0, m.index));
    if (key === "") throw new LineError(`${kind} names can not be blank`);
    if (kind === "ENV") checkVariableName("ENV", key);
    pairs[key] = st.expand(rest.slice(m.index + m[0].length));
    return pairs;
  }
  for (const w of words) {
    const eq = w.indexOf("=");
    if (eq < 0) throw new LineError(`syntax error - can't find = in "${w}". Must be of the form: name=value`);
    const key = st.expand(w.slice(0, eq));
    if (key === "") throw new LineError(`${kind} names can not be blank (in "${w}")`);
    if (kind === "ENV") checkVariableName("ENV", key);
    pairs[key] = st.expand(w.slice(eq + 1));
  }
  return pairs;
}

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * ENV, ARG and APPENV names become variables of a shell on the hosts (and of RUN's shell here):
 * a name a POSIX shell cannot export (`1BAD`, `a.b`, `a-b`) would only fail there, later.
 */
export function checkVariableName(kind: string, name: string): void {
  if (!VARIABLE_NAME.test(name)) {
    throw new LineError(
      `${kind} name "${name}" is not a valid variable name: use letters, digits and _, not starting with a digit (a name every host's shell accepts)`,
    );
  }
}

export function parseEnv(st: ParseState, rest: string, line: number): Instruction {
  const pairs = nameValues(st, "ENV", rest);
  for (const [k, v] of Object.entries(pairs)) st.env.set(k, v);
  return { kind: "ENV", line, pairs };
}

export function parseLabel(st: ParseState, rest: string, line: number): Instruction {
  const pairs = nameValues(st, "LABEL", rest);
  Object.assign(st.labels, pairs);
  return { kind: "LABEL", line, pairs };
}

/** MAINTAINER <name>: the whole rest of the line, unexpanded. */
export function parseMaintainer(st: ParseState, rest: string, line: number): Instruction {
  if (rest === "") throw new LineError("MAINTAINER requires a name: MAINTAINER <name>");
  st.maintainer = rest;
  return { kind: "MAINTAINER", line, maintainer: rest };
}

/** KUBEVERSION <range>: recorded as sealer's supported-kube-version label too. */
export function parseKubeVersion(st: ParseState, rest: string, line: number): Instruction {
  if (rest === "") throw new LineError("KUBEVERSION requires a version range, e.g. KUBEVERSION 1.22 - 1.24");
  const problem = kubeVersionRangeProblem(rest);
  if (problem !== undefined) {
    throw new LineError(`KUBEVERSION "${rest}" is not a version range: ${problem} (e.g. KUBEVERSION 1.22 - 1.24, >=1.22 <1.25, ~1.24 || ^1.26)`);
  }
  st.kubeVersion = rest;
  st.labels[LABEL_SUPPORTED_KUBE_VERSION] = rest;
  return { kind: "KUBEVERSION", line, version: rest };
}
