import type { LogicalLine } from "./lexer";
import type { ParseState } from "./state";

/** FROM must exist and come first; only ARG may precede it. */
function fromRules(st: ParseState, lines: readonly LogicalLine[]): void {
  if (!st.seen.some((s) => s.kind === "FROM")) {
    const line = lines[0]?.line ?? 1;
    st.error(
      line,
      lines.length === 0
        ? "the Kubefile is empty: expected FROM <image> (or FROM scratch)"
        : "no FROM instruction: a Kubefile must start with FROM <image> (or FROM scratch)",
    );
  } else if (st.beforeFrom !== undefined) {
    const fromLine = st.seen.find((s) => s.kind === "FROM")?.line;
    st.error(st.beforeFrom.line, `${st.beforeFrom.kind} before FROM (line ${fromLine}): FROM must be the first instruction (only ARG may come before it)`);
  }
}

/** LAUNCH/APPCMDS/APPENV references to apps known to be missing, saying where they are declared if below. */
function appRefRules(st: ParseState): void {
  // for each app name, the first line that declares it (for "declared below" messages)
  const appFirstLine = new Map<string, number>();
  for (const ins of st.instructions) {
    if ((ins.kind === "APP" || ins.kind === "CNI" || ins.kind === "CSI") && !appFirstLine.has(ins.name)) {
      appFirstLine.set(ins.name, ins.line);
    }
  }
  const baseNote = st.from !== undefined && st.from.image !== "scratch" ? ` and the base image ${st.from.image} does not provide` : "";
  for (const r of st.badRefs) {
    const later = appFirstLine.get(r.name);
    st.error(
      r.line,
      later !== undefined
        ? `${r.instruction} refers to app "${r.name}", which is declared only below (line ${later}); declare it with APP above ${r.instruction}`
        : `${r.instruction} refers to app "${r.name}", which no APP, CNI or CSI above declares${baseNote}`,
    );
  }
}

/** sealer: LAUNCH and CMDS at most once each and last; LAUNCH excludes CMDS and CMD. */
function orderRules(st: ParseState): void {
  const seen = st.seen;
  const launches = seen.filter((s) => s.kind === "LAUNCH");
  const cmdss = seen.filter((s) => s.kind === "CMDS");
  const cmd = seen.find((s) => s.kind === "CMD");
  for (const extra of launches.slice(1)) {
    st.error(extra.line, `only one LAUNCH instruction is allowed (the first is on line ${launches[0].line})`);
  }
  for (const extra of cmdss.slice(1)) {
    st.error(extra.line, `only one CMDS instruction is allowed (the first is on line ${cmdss[0].line})`);
  }
  if (launches.length > 0 && cmdss.length > 0) {
    const [a, b] = launches[0].line < cmdss[0].line ? [launches[0], cmdss[0]] : [cmdss[0], launches[0]];
    st.error(b.line, `LAUNCH and CMDS are mutually exclusive (${a.kind} on line ${a.line}, ${b.kind} on line ${b.line})`);
  }
  if (launches.length > 0 && cmd !== undefined) {
    st.error(launches[0].line, `CMD and LAUNCH are mutually exclusive (CMD on line ${cmd.line}); use APPCMDS for app commands, or CMDS instead of LAUNCH`);
  }
  for (let i = 0; i < seen.length; i++) {
    const s = seen[i];
    if (s.kind !== "LAUNCH" && s.kind !== "CMDS") continue;
    const after = seen.slice(i + 1).find((t) => t.kind !== "LAUNCH" && t.kind !== "CMDS");
    if (after !== undefined) {
      st.error(s.line, `${s.kind} must be the last instruction; found ${after.kind} on line ${after.line} after it`);
    }
  }
}

/** Like docker, warn about `--build-arg`s no ARG declares. */
function buildArgRules(st: ParseState): void {
  const build = st.opts.buildArgs ?? {};
  for (const name of Object.keys(build)) {
    if (!st.declaredArgs.has(name)) st.warn(undefined, `build argument "${name}" was given but no ARG declares it; it is ignored`);
  }
}

/** The rules that need the whole file, checked once every instruction has been read. */
export function checkWholeFile(st: ParseState, lines: readonly LogicalLine[]): void {
  fromRules(st, lines);
  appRefRules(st);
  orderRules(st);
  buildArgRules(st);
}
