import { parseReference } from "../../image/reference";
import { KubefileSyntaxError, type KubefileError, type KubefileWarning } from "./errors";
import {
  KUBEFILE_INSTRUCTIONS,
  LABEL_KUBE_CNI_PREFIX,
  LABEL_KUBE_CSI_PREFIX,
  LABEL_SUPPORTED_KUBE_VERSION,
  type AppSource,
  type ArgDeclaration,
  type BaseAppRef,
  type FromInstruction,
  type Instruction,
  type InstructionKind,
  type Kubefile,
  type KubefileApp,
} from "./instructions";
import { splitLogicalLines, type EscapeToken, type LogicalLine } from "./lexer";
import { expand, SubstitutionError, type Lookup } from "./substitute";
import {
  looksLikeJson,
  NOT_STRINGS_MESSAGE,
  parseJsonArray,
  parseWords,
  splitCommand,
  splitWhitespace,
} from "./words";

export interface ParseKubefileOptions {
  /** Name used in messages. @default "Kubefile" */
  readonly file?: string;
  /** `--build-arg` values; they override ARG defaults, and only reach ARGs the Kubefile declares. */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** Target architecture, e.g. "amd64": the value of `$ARCH`/`${ARCH}` unless an ARG/ENV sets ARCH. */
  readonly arch?: string;
  /**
   * Names of the apps the FROM image already holds. When given (or when FROM is scratch),
   * LAUNCH/APPCMDS/APPENV references are checked completely; otherwise references to apps this
   * Kubefile does not declare are returned in `Kubefile.baseAppRefs` for the caller to check.
   */
  readonly baseApps?: readonly string[];
}

export type ParseKubefileResult =
  | { readonly ok: true; readonly kubefile: Kubefile }
  | { readonly ok: false; readonly errors: readonly KubefileError[]; readonly warnings: readonly KubefileWarning[] };

/** Docker instructions a Kubefile cannot use (sealer rejects them as unsupported commands). */
const DOCKERFILE_ONLY = new Set([
  "workdir",
  "user",
  "expose",
  "volume",
  "entrypoint",
  "onbuild",
  "healthcheck",
  "shell",
  "stopsignal",
]);

const EXPECTED = KUBEFILE_INSTRUCTIONS.join(", ");

/** An error about the instruction being parsed; the parse loop attaches file and line. */
class LineError extends Error {}

function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

function suggest(word: string): string | undefined {
  const upper = word.toUpperCase();
  let best: string | undefined;
  let bestD = 3;
  for (const k of KUBEFILE_INSTRUCTIONS) {
    const dd = distance(upper, k);
    if (dd < bestD) {
      best = k;
      bestD = dd;
    }
  }
  return best;
}

function quoteList(xs: readonly string[]): string {
  return xs.map((x) => `"${x}"`).join(", ");
}

interface Recorded {
  readonly kind: string;
  readonly line: number;
}

class Parser {
  readonly errors: KubefileError[] = [];
  readonly warnings: KubefileWarning[] = [];
  readonly instructions: Instruction[] = [];
  /** Every instruction seen (valid or not), for ordering rules. */
  private readonly seen: Recorded[] = [];

  private escape: EscapeToken = "\\";
  private from: FromInstruction | undefined;
  /** The first instruction other than ARG before FROM (reported only if the file has a FROM). */
  private beforeFrom: Recorded | undefined;

  // variables
  private readonly globalArgs = new Map<string, string | undefined>();
  private readonly stageArgs = new Map<string, string | undefined>();
  private readonly env = new Map<string, string>();
  private readonly declaredArgs = new Set<string>();

  // summary
  private readonly labels: Record<string, string> = {};
  private maintainer: string | undefined;
  private kubeVersion: string | undefined;
  private readonly apps = new Map<string, KubefileApp>();
  /** Names of APP/CNI/CSI lines so far, even unparsable ones (avoids follow-on errors). */
  private readonly appNamesSoFar = new Set<string>();
  /** First line each app name is declared on, over the whole file. */
  private readonly appFirstLine = new Map<string, number>();
  private readonly appCmds: Record<string, readonly string[]> = {};
  private readonly appEnv: Record<string, Record<string, string>> = {};
  private launch: string[] | undefined;
  private readonly cmds: string[] = [];
  private readonly baseAppRefs: BaseAppRef[] = [];
  private readonly badRefs: BaseAppRef[] = [];
  private cmdWarned = false;

  constructor(
    private readonly file: string,
    private readonly opts: ParseKubefileOptions,
  ) {}

  // ---- diagnostics ----------------------------------------------------------------------

  private error(line: number, message: string): void {
    this.errors.push({ file: this.file, line, message });
  }

  private warn(line: number | undefined, message: string): void {
    this.warnings.push(line === undefined ? { file: this.file, message } : { file: this.file, line, message });
  }

  // ---- variables ------------------------------------------------------------------------

  private lookup: Lookup = (name) => {
    if (this.from !== undefined) {
      const e = this.env.get(name);
      if (e !== undefined) return e;
      const a = this.stageArgs.get(name);
      if (a !== undefined) return a;
    } else {
      const g = this.globalArgs.get(name);
      if (g !== undefined) return g;
    }
    if (name === "ARCH") return this.opts.arch;
    return undefined;
  };

  /** Expand a word; errors become LineErrors. `quotes` false for JSON-form strings. */
  private x(word: string, quotes = true): string {
    try {
      return expand(word, this.lookup, {
        escape: this.escape,
        quotes,
        onUnset: (name) => {
          if (name === "ARCH") {
            throw new LineError("uses $ARCH, but no target architecture was given to the parser (opts.arch) and no ARG or ENV sets ARCH");
          }
        },
      });
    } catch (e) {
      if (e instanceof SubstitutionError) throw new LineError(`cannot expand "${word}": ${e.message}`);
      throw e;
    }
  }

  // ---- main loop ------------------------------------------------------------------------

  run(text: string): void {
    const lexed = splitLogicalLines(text, this.file);
    this.escape = lexed.escape;
    this.errors.push(...lexed.errors);
    this.warnings.push(...lexed.warnings);
    for (const l of lexed.lines) this.instruction(l);
    this.finish(lexed.lines);
  }

  private instruction(l: LogicalLine): void {
    const { word, flags, rest } = splitCommand(l.text);
    const cmd = word.toLowerCase();
    const upper = word.toUpperCase();
    const known = (KUBEFILE_INSTRUCTIONS as readonly string[]).includes(upper);
    this.seen.push({ kind: known ? upper : word, line: l.line });

    if (!known) {
      const hint = suggest(word);
      const what = DOCKERFILE_ONLY.has(cmd)
        ? `${upper} is a Dockerfile instruction that Kubefiles do not support`
        : `unknown instruction "${word}"`;
      this.error(l.line, `${what} (expected one of ${EXPECTED})${hint !== undefined && !DOCKERFILE_ONLY.has(cmd) ? `; did you mean ${hint}?` : ""}`);
      return;
    }
    const kind = upper as InstructionKind;

    if (this.from === undefined && kind !== "FROM" && kind !== "ARG" && this.beforeFrom === undefined) {
      this.beforeFrom = { kind, line: l.line };
    }

    try {
      if (flags.length > 0 && kind !== "FROM" && kind !== "COPY" && kind !== "ADD" && kind !== "RUN") {
        throw new LineError(`${kind} does not take flags (got ${flags.map((f) => `--${f.replace(/^--/, "")}`).join(" ")})`);
      }
      const ins = this.dispatch(kind, flags, rest, l.line);
      if (ins !== undefined) this.instructions.push(ins);
    } catch (e) {
      if (e instanceof LineError) this.error(l.line, e.message);
      else throw e;
    }
  }

  private dispatch(kind: InstructionKind, flags: string[], rest: string, line: number): Instruction | undefined {
    switch (kind) {
      case "FROM":
        return this.parseFrom(flags, rest, line);
      case "ARG":
        return this.parseArg(rest, line);
      case "COPY":
      case "ADD":
        return this.parseCopy(kind, flags, rest, line);
      case "RUN":
        return this.parseRun(flags, rest, line);
      case "ENV": {
        const pairs = this.nameValues("ENV", rest);
        for (const [k, v] of Object.entries(pairs)) this.env.set(k, v);
        return { kind, line, pairs };
      }
      case "LABEL": {
        const pairs = this.nameValues("LABEL", rest);
        Object.assign(this.labels, pairs);
        return { kind, line, pairs };
      }
      case "MAINTAINER":
        if (rest === "") throw new LineError("MAINTAINER requires a name: MAINTAINER <name>");
        this.maintainer = rest;
        return { kind, line, maintainer: rest };
      case "APP":
      case "CNI":
      case "CSI":
        return this.parseApp(kind, rest, line);
      case "APPCMDS":
        return this.parseAppCmds(rest, line);
      case "APPENV":
        return this.parseAppEnv(rest, line);
      case "LAUNCH":
        return this.parseLaunch(rest, line);
      case "CMDS":
        return this.parseCmds(rest, line);
      case "CMD":
        return this.parseCmd(rest, line);
      case "KUBEVERSION":
        if (rest === "") throw new LineError('KUBEVERSION requires a version range, e.g. KUBEVERSION 1.22 - 1.24');
        this.kubeVersion = rest;
        this.labels[LABEL_SUPPORTED_KUBE_VERSION] = rest;
        return { kind, line, version: rest };
    }
  }

  // ---- FROM / ARG -----------------------------------------------------------------------

  private parseFrom(flags: string[], rest: string, line: number): FromInstruction {
    if (this.from !== undefined) {
      throw new LineError(
        `only one FROM is allowed (the first is on line ${this.from.line}): Kubefiles build a single stage, multi-stage builds are not supported`,
      );
    }
    let platform: string | undefined;
    for (const f of flags) {
      const eq = f.indexOf("=");
      const name = (eq < 0 ? f : f.slice(0, eq)).replace(/^-+/, "");
      if (name !== "platform") throw new LineError(`flag --${name} is not available in FROM (only --platform=<os>/<arch>)`);
      if (eq < 0) throw new LineError(`flags should be like --platform=<value>, got "${f}"`);
      // sealer accepts --platform=a, --platform=a,b and --platform="[a, b]" and uses the first item.
      const items = this.x(f.slice(eq + 1))
        .replace(/^["[]+/, "")
        .replace(/["\]]+$/, "")
        .split(",")
        .map((s) => s.trim());
      if (items[0] === "") throw new LineError(`--platform needs a value, e.g. --platform=linux/amd64`);
      platform = items[0];
    }
    const words = splitWhitespace(rest);
    if (words.length === 0) throw new LineError("FROM requires an image: FROM <image> (or FROM scratch)");
    if (words.length === 2 || words.length > 3 || (words.length === 3 && words[1].toLowerCase() !== "as")) {
      throw new LineError(`FROM expects "FROM [--platform=<platform>] <image> [AS <name>]", got "FROM ${rest}"`);
    }
    const image = this.x(words[0]);
    if (image === "") throw new LineError(`FROM image "${words[0]}" expands to an empty string`);
    if (image !== "scratch") {
      try {
        parseReference(image);
      } catch (e) {
        throw new LineError(`FROM: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const from: FromInstruction = {
      kind: "FROM",
      line,
      image,
      ...(platform !== undefined ? { platform } : {}),
      ...(words.length === 3 ? { alias: words[2] } : {}),
    };
    this.from = from;
    return from;
  }

  private parseArg(rest: string, line: number): Instruction {
    const words = parseWords(rest, this.escape);
    if (words.length === 0) throw new LineError("ARG requires a name: ARG <name>[=<default>]");
    const decls: ArgDeclaration[] = [];
    const beforeFrom = this.from === undefined;
    const scope = beforeFrom ? this.globalArgs : this.stageArgs;
    const build = this.opts.buildArgs ?? {};
    for (const w of words) {
      const eq = w.indexOf("=");
      const name = eq < 0 ? w : w.slice(0, eq);
      if (name === "") throw new LineError(`ARG names can not be blank (in "${w}")`);
      const def = eq < 0 ? undefined : this.x(w.slice(eq + 1));
      this.declaredArgs.add(name);
      let value: string | undefined;
      if (Object.prototype.hasOwnProperty.call(build, name)) value = build[name];
      else if (def !== undefined) value = def;
      else if (!beforeFrom) value = this.globalArgs.get(name);
      scope.set(name, value);
      decls.push(def === undefined ? { name } : { name, default: def });
    }
    return { kind: "ARG", line, args: decls, beforeFrom };
  }

  // ---- COPY / ADD / RUN -----------------------------------------------------------------

  private parseCopy(kind: "COPY" | "ADD", flags: string[], rest: string, line: number): Instruction {
    let chown: string | undefined;
    let chmod: string | undefined;
    for (const f of flags) {
      const eq = f.indexOf("=");
      const name = (eq < 0 ? f : f.slice(0, eq)).replace(/^-+/, "");
      if (name === "from") {
        throw new LineError(`${kind} --from is not supported: Kubefiles have a single stage (no multi-stage builds or copying from images)`);
      }
      if (name !== "chown" && name !== "chmod") throw new LineError(`unknown flag --${name} for ${kind} (expected --chown=<user> or --chmod=<mode>)`);
      if (eq < 0) throw new LineError(`--${name} needs a value: --${name}=<value>`);
      const value = this.x(f.slice(eq + 1));
      if (name === "chown") chown = value;
      else chmod = value;
    }
    const words = this.listArgs(kind, rest, "glob");
    const usage = `${kind} requires at least two arguments: ${kind} <src>... <dest>`;
    if (words.length < 2) throw new LineError(words.length === 0 ? usage : `${usage} (got only "${words[0].text}")`);
    const expanded = words.map((w) => {
      try {
        return this.x(w.text, w.quotes);
      } catch (e) {
        if (e instanceof LineError && /matching (single|double)-quote/.test(e.message)) {
          throw new LineError(
            `${e.message}; ${kind} splits its arguments at blanks even inside quotes: use the JSON form ${kind} ["a b", "dest/"] for paths with blanks`,
          );
        }
        throw e;
      }
    });
    for (let i = 0; i < expanded.length; i++) {
      if (expanded[i] === "") throw new LineError(`${kind} argument "${words[i].text}" expands to an empty string`);
    }
    const sources = expanded.slice(0, -1);
    const dest = expanded[expanded.length - 1];
    if (sources.length > 1 && !dest.endsWith("/")) {
      throw new LineError(`when ${kind} has more than one source, the destination must be a directory ending with "/" (got "${dest}")`);
    }
    return {
      kind,
      line,
      sources,
      dest,
      ...(chown !== undefined ? { chown } : {}),
      ...(chmod !== undefined ? { chmod } : {}),
    };
  }

  private runEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    if (this.opts.arch !== undefined) env.ARCH = this.opts.arch;
    for (const [k, v] of this.stageArgs) if (v !== undefined) env[k] = v;
    for (const [k, v] of this.env) env[k] = v;
    return env;
  }

  private parseRun(flags: string[], rest: string, line: number): Instruction {
    if (rest === "") throw new LineError("RUN requires a command: RUN <command> or RUN [\"executable\", \"arg\", ...]");
    const json = parseJsonArray(rest);
    let command: string | string[];
    if (json.kind === "array") {
      if (json.values.length === 0) throw new LineError("RUN requires a command: the JSON array is empty");
      command = json.values;
    } else if (json.kind === "not-strings") {
      throw new LineError(`RUN: ${NOT_STRINGS_MESSAGE}`);
    } else {
      if (json.kind === "invalid" && looksLikeJson(rest)) {
        this.warn(line, `RUN looks like a JSON array but is not valid JSON (${json.reason}); running it as a shell command`);
      }
      command = rest;
    }
    return { kind: "RUN", line, command, flags: [...flags], env: this.runEnv() };
  }

  // ---- ENV / LABEL ----------------------------------------------------------------------

  /** ENV/LABEL: `k=v k2="v 2"` or the legacy `k v...` (Docker's parseNameVal). */
  private nameValues(kind: "ENV" | "LABEL", rest: string): Record<string, string> {
    const words = parseWords(rest, this.escape);
    if (words.length === 0) throw new LineError(`${kind} requires at least one argument: ${kind} <key>=<value> ...`);
    const pairs: Record<string, string> = {};
    if (!words[0].includes("=")) {
      const m = /[\t\v\f\r ]+/.exec(rest);
      if (m === null) throw new LineError(`${kind} must have two arguments: ${kind} <key>=<value> (or the legacy ${kind} <key> <value>)`);
      const key = this.x(rest.slice(0, m.index));
      if (key === "") throw new LineError(`${kind} names can not be blank`);
      pairs[key] = this.x(rest.slice(m.index + m[0].length));
      return pairs;
    }
    for (const w of words) {
      const eq = w.indexOf("=");
      if (eq < 0) throw new LineError(`syntax error - can't find = in "${w}". Must be of the form: name=value`);
      const key = this.x(w.slice(0, eq));
      if (key === "") throw new LineError(`${kind} names can not be blank (in "${w}")`);
      pairs[key] = this.x(w.slice(eq + 1));
    }
    return pairs;
  }

  // ---- apps -----------------------------------------------------------------------------

  /**
   * Arguments in JSON form or whitespace-separated (sealer's parseMaybeJSONToList). Text that
   * starts with `[` but is not a JSON array is an error, except in `glob` mode (COPY/ADD) where
   * `[ab]*.yaml` is a pattern unless it starts like `["`.
   */
  private listArgs(kind: string, rest: string, mode: "strict" | "glob"): { text: string; quotes: boolean }[] {
    const json = parseJsonArray(rest);
    if (json.kind === "array") return json.values.map((text) => ({ text, quotes: false }));
    if (json.kind === "not-strings") throw new LineError(`${kind}: ${NOT_STRINGS_MESSAGE}`);
    if (json.kind === "invalid" && (mode === "strict" || looksLikeJson(rest))) {
      throw new LineError(`${kind}: malformed JSON array (${json.reason})`);
    }
    return splitWhitespace(rest).map((text) => ({ text, quotes: true }));
  }

  /** An app name: declared by APP/CNI/CSI (`declares`) or referred to by LAUNCH/APPCMDS/APPENV. */
  private appName(kind: string, raw: string, quotes: boolean, declares = false): string {
    const name = this.x(raw, quotes).trim();
    if (name === "") throw new LineError(`${kind}: app name "${raw}" expands to an empty string`);
    if (declares && name.includes("://")) {
      throw new LineError(`${kind} requires a name before its sources: ${kind} <name> local://<path>|https://<url>... (got "${name}" as the name)`);
    }
    if (name.includes("/") || name === "." || name === "..") {
      throw new LineError(
        `${kind}: invalid app name "${name}" (an app name is a directory name under application/apps/: no "/", not "." or "..")`,
      );
    }
    return name;
  }

  private parseApp(kind: "APP" | "CNI" | "CSI", rest: string, line: number): Instruction {
    const usage = `${kind} <name> local://<path>|http(s)://<url>...`;
    const words = this.listArgs(kind, rest, "strict");
    if (words.length === 0) throw new LineError(`${kind} requires a name and at least one source: ${usage}`);
    const name = this.appName(kind, words[0].text, words[0].quotes, true);
    this.appNamesSoFar.add(name);
    if (words.length === 1) throw new LineError(`${kind} "${name}" has no sources: ${usage}`);
    const sources: AppSource[] = [];
    for (const w of words.slice(1)) {
      const s = this.x(w.text, w.quotes);
      if (s.startsWith("local://")) {
        const path = s.slice("local://".length);
        if (path === "") throw new LineError(`${kind} "${name}": source "${s}" has an empty path`);
        sources.push({ type: "local", path });
      } else if (s.startsWith("http://") || s.startsWith("https://")) {
        if (s.length === s.indexOf("://") + 3) throw new LineError(`${kind} "${name}": source "${s}" has no host`);
        sources.push({ type: "remote", url: s });
      } else {
        throw new LineError(
          `${kind} "${name}": source "${s}" must start with local:// (a path in the build context), http:// or https://`,
        );
      }
    }
    const previous = this.apps.get(name);
    if (previous !== undefined) {
      this.warn(
        line,
        `${kind} "${name}" redeclares the app declared by ${previous.kind} on line ${previous.line}; the later declaration wins`,
      );
    }
    this.apps.set(name, { name, kind, sources, line });
    if (kind === "CNI") this.labels[`${LABEL_KUBE_CNI_PREFIX}${name}`] = "true";
    if (kind === "CSI") this.labels[`${LABEL_KUBE_CSI_PREFIX}${name}`] = "true";
    return { kind, line, name, sources };
  }

  /** Check that `name` is an app declared above, or one the base image may hold. */
  private ref(instruction: BaseAppRef["instruction"], name: string, line: number): void {
    if (this.appNamesSoFar.has(name)) return;
    const ref: BaseAppRef = { name, line, instruction };
    const fromScratch = this.from?.image === "scratch";
    // FROM scratch has no apps; otherwise the caller may tell us which apps the base image holds.
    const known = fromScratch ? (this.opts.baseApps ?? []) : this.opts.baseApps;
    if (known === undefined) {
      this.baseAppRefs.push(ref);
      return;
    }
    if (!known.includes(name)) this.badRefs.push(ref);
  }

  private parseAppCmds(rest: string, line: number): Instruction {
    const usage = 'APPCMDS <app> ["command", ...]';
    if (rest === "") throw new LineError(`APPCMDS requires an app name and a JSON array of commands: ${usage}`);
    if (rest.startsWith("[")) throw new LineError(`APPCMDS needs the app name before the JSON array: ${usage}`);
    const m = /^(\S+)\s*([\s\S]*)$/.exec(rest);
    const rawName = m?.[1] ?? rest;
    const app = this.appName("APPCMDS", rawName, true);
    const json = parseJsonArray(m?.[2] ?? "");
    if (json.kind === "not-strings") throw new LineError(`APPCMDS ${app}: ${NOT_STRINGS_MESSAGE}`);
    if (json.kind !== "array") {
      const why = json.kind === "invalid" ? ` (malformed JSON: ${json.reason})` : "";
      throw new LineError(`APPCMDS ${app}: the commands must be a JSON array of strings${why}, e.g. APPCMDS ${app} ["kubectl apply -f app.yaml"]`);
    }
    this.ref("APPCMDS", app, line);
    this.appCmds[app] = json.values;
    return { kind: "APPCMDS", line, app, commands: json.values };
  }

  private parseAppEnv(rest: string, line: number): Instruction {
    const json = parseJsonArray(rest);
    let words: { text: string; quotes: boolean }[];
    if (json.kind === "array") words = json.values.map((text) => ({ text, quotes: false }));
    else if (json.kind === "not-strings") throw new LineError(`APPENV: ${NOT_STRINGS_MESSAGE}`);
    else if (json.kind === "invalid") throw new LineError(`APPENV: malformed JSON array (${json.reason})`);
    else words = parseWords(rest, this.escape).map((text) => ({ text, quotes: true }));
    if (words.length === 0) throw new LineError("APPENV requires an app name and key=value pairs: APPENV <app> <key>=<value> ...");
    const app = this.appName("APPENV", words[0].text, words[0].quotes);
    const pairs: Record<string, string> = {};
    for (const w of words.slice(1)) {
      const eq = w.text.indexOf("=");
      if (eq < 0) {
        this.warn(line, `APPENV ${app}: "${w.text}" is not of the form key=value and is ignored (as sealer does)`);
        continue;
      }
      const key = this.x(w.text.slice(0, eq), w.quotes);
      if (key === "") throw new LineError(`APPENV ${app}: names can not be blank (in "${w.text}")`);
      pairs[key] = this.x(w.text.slice(eq + 1), w.quotes);
    }
    if (words.length === 1) this.warn(line, `APPENV ${app} sets no variables`);
    this.ref("APPENV", app, line);
    this.appEnv[app] = { ...(this.appEnv[app] ?? {}), ...pairs };
    return { kind: "APPENV", line, app, pairs };
  }

  // ---- LAUNCH / CMDS / CMD --------------------------------------------------------------

  private parseLaunch(rest: string, line: number): Instruction {
    const words = this.listArgs("LAUNCH", rest, "strict");
    const apps = words.map((w) => this.appName("LAUNCH", w.text, w.quotes));
    if (apps.length === 0) this.warn(line, "LAUNCH lists no apps; nothing will be launched");
    const dup = apps.filter((a, i) => apps.indexOf(a) !== i);
    if (dup.length > 0) this.warn(line, `LAUNCH lists ${quoteList([...new Set(dup)])} more than once`);
    for (const a of apps) this.ref("LAUNCH", a, line);
    this.launch = apps;
    return { kind: "LAUNCH", line, apps };
  }

  /** JSON array -> commands; otherwise the whole text is one command. */
  private commands(kind: "CMDS" | "CMD", rest: string, line: number): string[] {
    const json = parseJsonArray(rest);
    if (json.kind === "array") return json.values;
    if (json.kind === "not-strings") throw new LineError(`${kind}: ${NOT_STRINGS_MESSAGE}`);
    if (json.kind === "invalid" && looksLikeJson(rest)) {
      this.warn(line, `${kind} looks like a JSON array but is not valid JSON (${json.reason}); using it as one shell command`);
    } else if (kind === "CMDS" && /\s/.test(rest)) {
      this.warn(
        line,
        `CMDS in shell form is used as one command; sealer would split it at whitespace into separate commands. Write CMDS ["${rest.replace(/["\\]/g, "\\$&")}"]`,
      );
    }
    return [rest];
  }

  private parseCmds(rest: string, line: number): Instruction {
    if (rest === "") {
      this.warn(line, "CMDS lists no commands");
      return { kind: "CMDS", line, commands: [] };
    }
    const commands = this.commands("CMDS", rest, line);
    this.cmds.push(...commands);
    return { kind: "CMDS", line, commands };
  }

  private parseCmd(rest: string, line: number): Instruction {
    if (rest === "") throw new LineError("CMD requires a command: CMD <command> (CMD is deprecated: prefer CMDS [\"...\"] or LAUNCH)");
    if (!this.cmdWarned) {
      this.cmdWarned = true;
      this.warn(line, "CMD is deprecated; use CMDS [\"...\"] or APP + LAUNCH");
    }
    const commands = this.commands("CMD", rest, line);
    this.cmds.push(...commands);
    return { kind: "CMD", line, commands };
  }

  // ---- whole-file rules -----------------------------------------------------------------

  private finish(lines: readonly LogicalLine[]): void {
    if (!this.seen.some((s) => s.kind === "FROM")) {
      const line = lines[0]?.line ?? 1;
      this.error(
        line,
        lines.length === 0
          ? "the Kubefile is empty: expected FROM <image> (or FROM scratch)"
          : "no FROM instruction: a Kubefile must start with FROM <image> (or FROM scratch)",
      );
    } else if (this.beforeFrom !== undefined) {
      const fromLine = this.seen.find((s) => s.kind === "FROM")?.line;
      this.error(
        this.beforeFrom.line,
        `${this.beforeFrom.kind} before FROM (line ${fromLine}): FROM must be the first instruction (only ARG may come before it)`,
      );
    }

    // for each app name, the first line that declares it (for "declared below" messages)
    for (const ins of this.instructions) {
      if ((ins.kind === "APP" || ins.kind === "CNI" || ins.kind === "CSI") && !this.appFirstLine.has(ins.name)) {
        this.appFirstLine.set(ins.name, ins.line);
      }
    }
    const baseNote =
      this.from !== undefined && this.from.image !== "scratch" ? ` and the base image ${this.from.image} does not provide` : "";
    for (const r of this.badRefs) {
      const later = this.appFirstLine.get(r.name);
      this.error(r.line, later !== undefined
        ? `${r.instruction} refers to app "${r.name}", which is declared only below (line ${later}); declare it with APP above ${r.instruction}`
        : `${r.instruction} refers to app "${r.name}", which no APP, CNI or CSI above declares${baseNote}`);
    }

    this.orderRules();

    const build = this.opts.buildArgs ?? {};
    for (const name of Object.keys(build)) {
      if (!this.declaredArgs.has(name)) this.warn(undefined, `build argument "${name}" was given but no ARG declares it; it is ignored`);
    }
  }

  /** sealer: LAUNCH and CMDS at most once each and last; LAUNCH excludes CMDS and CMD. */
  private orderRules(): void {
    const seen = this.seen;
    const launches = seen.filter((s) => s.kind === "LAUNCH");
    const cmdss = seen.filter((s) => s.kind === "CMDS");
    const cmd = seen.find((s) => s.kind === "CMD");
    for (const extra of launches.slice(1)) {
      this.error(extra.line, `only one LAUNCH instruction is allowed (the first is on line ${launches[0].line})`);
    }
    for (const extra of cmdss.slice(1)) {
      this.error(extra.line, `only one CMDS instruction is allowed (the first is on line ${cmdss[0].line})`);
    }
    if (launches.length > 0 && cmdss.length > 0) {
      const [a, b] = launches[0].line < cmdss[0].line ? [launches[0], cmdss[0]] : [cmdss[0], launches[0]];
      this.error(b.line, `LAUNCH and CMDS are mutually exclusive (${a.kind} on line ${a.line}, ${b.kind} on line ${b.line})`);
    }
    if (launches.length > 0 && cmd !== undefined) {
      this.error(launches[0].line, `CMD and LAUNCH are mutually exclusive (CMD on line ${cmd.line}); use APPCMDS for app commands, or CMDS instead of LAUNCH`);
    }
    for (let i = 0; i < seen.length; i++) {
      const s = seen[i];
      if (s.kind !== "LAUNCH" && s.kind !== "CMDS") continue;
      const after = seen.slice(i + 1).find((t) => t.kind !== "LAUNCH" && t.kind !== "CMDS");
      if (after !== undefined) {
        this.error(s.line, `${s.kind} must be the last instruction; found ${after.kind} on line ${after.line} after it`);
      }
    }
  }

  result(): ParseKubefileResult {
    const errors = [...this.errors].sort((a, b) => a.line - b.line);
    if (errors.length > 0 || this.from === undefined) {
      return { ok: false, errors, warnings: this.warnings };
    }
    const args: Record<string, string> = {};
    for (const [k, v] of this.stageArgs) if (v !== undefined) args[k] = v;
    const env: Record<string, string> = Object.fromEntries(this.env);
    const kubefile: Kubefile = {
      file: this.file,
      from: this.from,
      instructions: this.instructions,
      args,
      env,
      labels: this.labels,
      ...(this.maintainer !== undefined ? { maintainer: this.maintainer } : {}),
      ...(this.kubeVersion !== undefined ? { kubeVersion: this.kubeVersion } : {}),
      apps: [...this.apps.values()],
      appCmds: this.appCmds,
      appEnv: this.appEnv,
      ...(this.launch !== undefined ? { launch: this.launch } : {}),
      cmds: this.cmds,
      baseAppRefs: this.baseAppRefs,
      warnings: this.warnings,
    };
    return { ok: true, kubefile };
  }
}

/**
 * Parse a Kubefile. Pure: no file system, no process.env. Returns the typed Kubefile, or every
 * error found (each with file and 1-based line), plus warnings either way.
 */
export function parseKubefile(text: string, opts: ParseKubefileOptions = {}): ParseKubefileResult {
  const p = new Parser(opts.file ?? "Kubefile", opts);
  p.run(text);
  return p.result();
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
