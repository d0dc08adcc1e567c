import { checkRemoteUrl } from "./copy-add";
import { checkVariableName } from "./env-label";
import { LineError } from "./errors";
import { LABEL_KUBE_CNI_PREFIX, LABEL_KUBE_CSI_PREFIX, type AppSource, type BaseAppRef, type Instruction } from "./instructions";
import type { ParseState } from "./state";
import { listArgs, NOT_STRINGS_MESSAGE, parseJsonArray, parseWords, type ArgWord } from "./words";

/** An app name: declared by APP/CNI/CSI (`declares`) or referred to by LAUNCH/APPCMDS/APPENV. */
export function appName(st: ParseState, kind: string, raw: string, quotes: boolean, declares = false): string {
  const name = st.expand(raw, quotes).trim();
  if (name === "") throw new LineError(`${kind}: app name "${raw}" expands to an empty string`);
  if (declares && name.includes("://")) {
    throw new LineError(`${kind} requires a name before its sources: ${kind} <name> local://<path>|https://<url>... (got "${name}" as the name)`);
  }
  if (/[\s\u0000-\u001f\u007f]/.test(name)) {
    throw new LineError(`${kind}: invalid app name "${name}" (an app name is a directory name and part of labels: no blanks or control characters)`);
  }
  if (name.includes("/") || name === "." || name === "..") {
    throw new LineError(`${kind}: invalid app name "${name}" (an app name is a directory name under application/apps/: no "/", not "." or "..")`);
  }
  return name;
}

/** Check that `name` is an app declared above, or one the base image may hold. */
export function refApp(st: ParseState, instruction: BaseAppRef["instruction"], name: string, line: number): void {
  if (st.appNamesSoFar.has(name)) return;
  const ref: BaseAppRef = { name, line, instruction };
  const fromScratch = st.from?.image === "scratch";
  // FROM scratch has no apps; otherwise the caller may tell us which apps the base image holds.
  const known = fromScratch ? (st.opts.baseApps ?? []) : st.opts.baseApps;
  if (known === undefined) {
    st.baseAppRefs.push(ref);
    return;
  }
  if (!known.includes(name)) st.badRefs.push(ref);
}

/** APP/CNI/CSI <name> local://<path>|http(s)://<url>...: declares an app (CNI/CSI also label it). */
export function parseApp(st: ParseState, kind: "APP" | "CNI" | "CSI", rest: string, line: number): Instruction {
  const usage = `${kind} <name> local://<path>|http(s)://<url>...`;
  const words = listArgs(kind, rest, "strict");
  if (words.length === 0) throw new LineError(`${kind} requires a name and at least one source: ${usage}`);
  const name = appName(st, kind, words[0].text, words[0].quotes, true);
  st.appNamesSoFar.add(name);
  if (words.length === 1) throw new LineError(`${kind} "${name}" has no sources: ${usage}`);
  const sources: AppSource[] = [];
  for (const w of words.slice(1)) {
    const s = st.expand(w.text, w.quotes);
    if (s.startsWith("local://")) {
      const path = s.slice("local://".length);
      if (path === "") throw new LineError(`${kind} "${name}": source "${s}" has an empty path`);
      sources.push({ type: "local", path });
    } else if (s.startsWith("http://") || s.startsWith("https://")) {
      if (s.length === s.indexOf("://") + 3) throw new LineError(`${kind} "${name}": source "${s}" has no host`);
      checkRemoteUrl(`${kind} "${name}":`, s);
      sources.push({ type: "remote", url: s });
    } else {
      throw new LineError(`${kind} "${name}": source "${s}" must start with local:// (a path in the build context), http:// or https://`);
    }
  }
  const previous = st.apps.get(name);
  if (previous !== undefined) {
    st.warn(line, `${kind} "${name}" redeclares the app declared by ${previous.kind} on line ${previous.line}; the later declaration wins`);
  }
  st.apps.set(name, { name, kind, sources, line });
  if (kind === "CNI") st.labels[`${LABEL_KUBE_CNI_PREFIX}${name}`] = "true";
  if (kind === "CSI") st.labels[`${LABEL_KUBE_CSI_PREFIX}${name}`] = "true";
  return { kind, line, name, sources };
}

/** APPCMDS <app> ["command", ...]: the commands that install an app (the last APPCMDS wins). */
export function parseAppCmds(st: ParseState, rest: string, line: number): Instruction {
  const usage = 'APPCMDS <app> ["command", ...]';
  if (rest === "") throw new LineError(`APPCMDS requires an app name and a JSON array of commands: ${usage}`);
  if (rest.startsWith("[")) throw new LineError(`APPCMDS needs the app name before the JSON array: ${usage}`);
  const m = /^(\S+)\s*([\s\S]*)$/.exec(rest);
  const rawName = m?.[1] ?? rest;
  const app = appName(st, "APPCMDS", rawName, true);
  const json = parseJsonArray(m?.[2] ?? "");
  if (json.kind === "not-strings") throw new LineError(`APPCMDS ${app}: ${NOT_STRINGS_MESSAGE}`);
  if (json.kind !== "array") {
    const why = json.kind === "invalid" ? ` (malformed JSON: ${json.reason})` : "";
    throw new LineError(`APPCMDS ${app}: the commands must be a JSON array of strings${why}, e.g. APPCMDS ${app} ["kubectl apply -f app.yaml"]`);
  }
  refApp(st, "APPCMDS", app, line);
  st.appCmds[app] = json.values;
  return { kind: "APPCMDS", line, app, commands: json.values };
}

/** APPENV <app> <key>=<value> ... (or the JSON form): variables for an app's commands (merged). */
export function parseAppEnv(st: ParseState, rest: string, line: number): Instruction {
  const json = parseJsonArray(rest);
  let words: ArgWord[];
  if (json.kind === "array") words = json.values.map((text) => ({ text, quotes: false }));
  else if (json.kind === "not-strings") throw new LineError(`APPENV: ${NOT_STRINGS_MESSAGE}`);
  else if (json.kind === "invalid") throw new LineError(`APPENV: malformed JSON array (${json.reason})`);
  else words = parseWords(rest, st.escape).map((text) => ({ text, quotes: true }));
  if (words.length === 0) throw new LineError("APPENV requires an app name and key=value pairs: APPENV <app> <key>=<value> ...");
  const app = appName(st, "APPENV", words[0].text, words[0].quotes);
  const pairs: Record<string, string> = {};
  for (const w of words.slice(1)) {
    const eq = w.text.indexOf("=");
    if (eq < 0) {
      st.warn(line, `APPENV ${app}: "${w.text}" is not of the form key=value and is ignored (as sealer does)`);
      continue;
    }
    const key = st.expand(w.text.slice(0, eq), w.quotes);
    if (key === "") throw new LineError(`APPENV ${app}: names can not be blank (in "${w.text}")`);
    checkVariableName(`APPENV ${app}:`, key);
    pairs[key] = st.expand(w.text.slice(eq + 1), w.quotes);
  }
  if (words.length === 1) st.warn(line, `APPENV ${app} sets no variables`);
  refApp(st, "APPENV", app, line);
  st.appEnv[app] = { ...(st.appEnv[app] ?? {}), ...pairs };
  return { kind: "APPENV", line, app, pairs };
}
