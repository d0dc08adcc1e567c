/**
 * The parse driver: logical lines -> instructions, each handed to the parser of its family
 * (from-arg.ts, copy-add.ts, run.ts, env-label.ts, apps.ts, launch.ts), then the rules that need
 * the whole file (rules.ts), then the typed result. Pure: no file system, no process.env.
 */
import { parseApp, parseAppCmds, parseAppEnv } from "./apps";
import { parseCopy } from "./copy-add";
import { parseEnv, parseKubeVersion, parseLabel, parseMaintainer } from "./env-label";
import { KubefileSyntaxError, LineError, quoteList, type KubefileError } from "./errors";
import { parseArg, parseFrom } from "./from-arg";
import { KUBEFILE_INSTRUCTIONS, type Instruction, type InstructionKind, type Kubefile } from "./instructions";
import { parseCmd, parseCmds, parseLaunch } from "./launch";
import { splitLogicalLines, type LogicalLine } from "./lexer";
import type { ParseKubefileOptions, ParseKubefileResult } from "./options";
import { checkWholeFile } from "./rules";
import { parseRun } from "./run";
import { ParseState } from "./state";
import { unknownInstructionMessage } from "./unknown-instruction";
import { splitCommand } from "./words";

export type { ParseKubefileOptions, ParseKubefileResult } from "./options";

function instruction(st: ParseState, l: LogicalLine): void {
  if (l.text.includes("\u0000")) {
    // No file name, variable or command can hold a NUL: a binary file, or one saved as UTF-16.
    st.error(l.line, "the line holds a NUL character: a Kubefile is UTF-8 text (was it saved as UTF-16, or is it a binary file?)");
    return;
  }
  const { word, flags, rest } = splitCommand(l.text);
  const upper = word.toUpperCase();
  const known = (KUBEFILE_INSTRUCTIONS as readonly string[]).includes(upper);
  st.seen.push({ kind: known ? upper : word, line: l.line });

  if (!known) {
    st.error(l.line, unknownInstructionMessage(word));
    return;
  }
  const kind = upper as InstructionKind;
  st.instructionKind = kind;
  st.expandedInInstruction = 0;
  st.secretArgsUsed.clear();

  if (st.from === undefined && kind !== "FROM" && kind !== "ARG" && st.beforeFrom === undefined) {
    st.beforeFrom = { kind, line: l.line };
  }

  try {
    if (flags.length > 0 && kind !== "FROM" && kind !== "COPY" && kind !== "ADD" && kind !== "RUN") {
      throw new LineError(`${kind} does not take flags (got ${flags.map((f) => `--${f.replace(/^--/, "")}`).join(" ")})`);
    }
    const ins = dispatch(st, kind, flags, rest, l.line);
    if (ins !== undefined) st.instructions.push(ins);
    if ((kind === "ENV" || kind === "LABEL" || kind === "APPENV") && st.secretArgsUsed.size > 0) {
      // Build args are not secrets in Docker either; these names say the value is one.
      const names = [...st.secretArgsUsed].map((n) => `"${n}"`).join(", ");
      st.warn(
        l.line,
        `${kind} stores the build argument ${names} in the image, where anyone who can pull it reads it; give secrets to the hosts through the Clusterfile's env instead`,
      );
    }
  } catch (e) {
    if (e instanceof LineError) st.error(l.line, e.message);
    else throw e;
  }
}

function dispatch(st: ParseState, kind: InstructionKind, flags: string[], rest: string, line: number): Instruction | undefined {
  switch (kind) {
    case "FROM":
      return parseFrom(st, flags, rest, line);
    case "ARG":
      return parseArg(st, rest, line);
    case "COPY":
    case "ADD":
      return parseCopy(st, kind, flags, rest, line);
    case "RUN":
      return parseRun(st, flags, rest, line);
    case "ENV":
      return parseEnv(st, rest, line);
    case "LABEL":
      return parseLabel(st, rest, line);
    case "MAINTAINER":
      return parseMaintainer(st, rest, line);
    case "APP":
    case "CNI":
    case "CSI":
      return parseApp(st, kind, rest, line);
    case "APPCMDS":
      return parseAppCmds(st, rest, line);
    case "APPENV":
      return parseAppEnv(st, rest, line);
    case "LAUNCH":
      return parseLaunch(st, rest, line);
    case "CMDS":
      return parseCmds(st, rest, line);
    case "CMD":
      return parseCmd(st, rest, line);
    case "KUBEVERSION":
      return parseKubeVersion(st, rest, line);
  }
}

function result(st: ParseState): ParseKubefileResult {
  const errors = [...st.errors].sort((a, b) => a.line - b.line);
  if (errors.length > 0 || st.from === undefined) {
    return { ok: false, errors, warnings: st.warnings };
  }
  const args: Record<string, string> = {};
  for (const [k, v] of st.stageArgs) if (v !== undefined) args[k] = v;
  const env: Record<string, string> = Object.fromEntries(st.env);
  const kubefile: Kubefile = {
    file: st.file,
    from: st.from,
    instructions: st.instructions,
    args,
    env,
    labels: st.labels,
    ...(st.maintainer !== undefined ? { maintainer: st.maintainer } : {}),
    ...(st.kubeVersion !== undefined ? { kubeVersion: st.kubeVersion } : {}),
    apps: [...st.apps.values()],
    appCmds: st.appCmds,
    appEnv: st.appEnv,
    ...(st.launch !== undefined ? { launch: st.launch } : {}),
    cmds: st.cmds,
    baseAppRefs: st.baseAppRefs,
    warnings: st.warnings,
  };
  return { ok: true, kubefile };
}

/**
 * Parse a Kubefile. Pure: no file system, no process.env. Returns the typed Kubefile, or every
 * error found (each with file and 1-based line), plus warnings either way.
 */
export function parseKubefile(text: string, opts: ParseKubefileOptions = {}): ParseKubefileResult {
  const st = new ParseState(opts.file ?? "Kubefile", opts);
  const lexed = splitLogicalLines(text, st.file);
  st.escape = lexed.escape;
  st.errors.push(...lexed.errors);
  st.warnings.push(...lexed.warnings);
  for (const l of lexed.lines) instruction(st, l);
  checkWholeFile(st, lexed.lines);
  return result(st);
}

/** `parseKubefile`, throwing a KubefileSyntaxError that lists every error. */
export function parseKubefileOrThrow(text: string, opts: ParseKubefileOptions = {}): Kubefile {
  const r = parseKubefile(text, opts);
  if (!r.ok) throw new KubefileSyntaxError(r.errors, r.warnings);
  return r.kubefile;
}

/**
 * Check the references a Kubefile made to apps of its FROM image (`kubefile.baseAppRefs`) once
 * that image's app names are known. Returns one error per missing app reference.
 */
export function checkBaseAppRefs(kubefile: Kubefile, baseApps: readonly string[]): KubefileError[] {
  const declaredAt = new Map<string, number>();
  for (const app of kubefile.apps) declaredAt.set(app.name, app.line);
  const out: KubefileError[] = [];
  for (const r of kubefile.baseAppRefs) {
    if (baseApps.includes(r.name)) continue;
    const later = declaredAt.get(r.name);
    out.push({
      file: kubefile.file,
      line: r.line,
      message:
        later !== undefined && later > r.line
          ? `${r.instruction} refers to app "${r.name}", which is declared only below (line ${later}) and the base image ${kubefile.from.image} does not provide; declare it with APP above ${r.instruction}`
          : `${r.instruction} refers to app "${r.name}", which neither this Kubefile nor the base image ${kubefile.from.image} declares (the base image has ${baseApps.length === 0 ? "no apps" : quoteList(baseApps)})`,
    });
  }
  return out;
}
