import { appName, refApp } from "./apps";
import { LineError, quoteList } from "./errors";
import type { Instruction } from "./instructions";
import type { ParseState } from "./state";
import { listArgs, looksLikeJson, NOT_STRINGS_MESSAGE, parseJsonArray } from "./words";

/** LAUNCH [app, ...] (or whitespace-separated): the apps to run when the cluster starts. */
export function parseLaunch(st: ParseState, rest: string, line: number): Instruction {
  const words = listArgs("LAUNCH", rest, "strict");
  const apps = words.map((w) => appName(st, "LAUNCH", w.text, w.quotes));
  if (apps.length === 0) st.warn(line, "LAUNCH lists no apps; nothing will be launched");
  const dup = apps.filter((a, i) => apps.indexOf(a) !== i);
  if (dup.length > 0) st.warn(line, `LAUNCH lists ${quoteList([...new Set(dup)])} more than once`);
  for (const a of apps) refApp(st, "LAUNCH", a, line);
  st.launch = apps;
  return { kind: "LAUNCH", line, apps };
}

/** JSON array -> commands; otherwise the whole text is one command. */
function commandList(st: ParseState, kind: "CMDS" | "CMD", rest: string, line: number): string[] {
  const json = parseJsonArray(rest);
  if (json.kind === "array") return json.values;
  if (json.kind === "not-strings") throw new LineError(`${kind}: ${NOT_STRINGS_MESSAGE}`);
  if (json.kind === "invalid" && looksLikeJson(rest)) {
    st.warn(line, `${kind} looks like a JSON array but is not valid JSON (${json.reason}); using it as one shell command`);
  } else if (kind === "CMDS" && /\s/.test(rest)) {
    st.warn(
      line,
      `CMDS in shell form is used as one command; sealer would split it at whitespace into separate commands. Write CMDS ["${rest.replace(/["\\]/g, "\\$&")}"]`,
    );
  }
  return [rest];
}

/** CMDS ["command", ...]: commands to run when the cluster starts, instead of LAUNCH. */
export function parseCmds(st: ParseState, rest: string, line: number): Instruction {
  if (rest === "") {
    st.warn(line, "CMDS lists no commands");
    return { kind: "CMDS", line, commands: [] };
  }
  const commands = commandList(st, "CMDS", rest, line);
  st.cmds.push(...commands);
  return { kind: "CMDS", line, commands };
}

/** CMD <command>: deprecated (warned about once), otherwise like CMDS. */
export function parseCmd(st: ParseState, rest: string, line: number): Instruction {
  if (rest === "") throw new LineError('CMD requires a command: CMD <command> (CMD is deprecated: prefer CMDS ["..."] or LAUNCH)');
  if (!st.cmdWarned) {
    st.cmdWarned = true;
    st.warn(line, 'CMD is deprecated; use CMDS ["..."] or APP + LAUNCH');
  }
  const commands = commandList(st, "CMD", rest, line);
  st.cmds.push(...commands);
  return { kind: "CMD", line, commands };
}
