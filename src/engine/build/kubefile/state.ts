import { LineError, type KubefileError, type KubefileWarning } from "./errors";
import type { BaseAppRef, FromInstruction, Instruction, KubefileApp } from "./instructions";
import type { EscapeToken } from "./lexer";
import type { ParseKubefileOptions } from "./options";
import { expand as expandWord, ExpansionTooLongError, MAX_EXPANDED_LENGTH, SubstitutionError, type Lookup } from "./substitute";

/** An instruction as written (known or not), for the whole-file ordering rules. */
export interface Recorded {
  readonly kind: string;
  readonly line: number;
}

/**
 * What one parse knows while it reads a Kubefile top to bottom: its diagnostics, the variables in
 * scope, and the summary the typed `Kubefile` is built from. The instruction parsers
 * (from-arg.ts, copy-add.ts, ...) read and update it; nothing outlives the parse.
 */
export class ParseState {
  readonly errors: KubefileError[] = [];
  readonly warnings: KubefileWarning[] = [];
  readonly instructions: Instruction[] = [];
  /** Every instruction seen (valid or not), for ordering rules. */
  readonly seen: Recorded[] = [];

  escape: EscapeToken = "\\";
  from: FromInstruction | undefined;
  /** The first instruction other than ARG before FROM (reported only if the file has a FROM). */
  beforeFrom: Recorded | undefined;

  // variables
  readonly globalArgs = new Map<string, string | undefined>();
  readonly stageArgs = new Map<string, string | undefined>();
  readonly env = new Map<string, string>();
  readonly declaredArgs = new Set<string>();

  // summary
  readonly labels: Record<string, string> = {};
  maintainer: string | undefined;
  kubeVersion: string | undefined;
  readonly apps = new Map<string, KubefileApp>();
  /** Names of APP/CNI/CSI lines so far, even unparsable ones (avoids follow-on errors). */
  readonly appNamesSoFar = new Set<string>();
  readonly appCmds: Record<string, readonly string[]> = {};
  readonly appEnv: Record<string, Record<string, string>> = {};
  launch: string[] | undefined;
  readonly cmds: string[] = [];
  readonly baseAppRefs: BaseAppRef[] = [];
  /** References to apps that are known to be missing; reported once the whole file is read. */
  readonly badRefs: BaseAppRef[] = [];
  cmdWarned = false;
  /** The instruction being parsed, and the characters its words expanded to so far (capped at 1 MiB). */
  instructionKind = "";
  expandedInInstruction = 0;

  constructor(
    readonly file: string,
    readonly opts: ParseKubefileOptions,
  ) {}

  // ---- diagnostics ----------------------------------------------------------------------

  error(line: number, message: string): void {
    this.errors.push({ file: this.file, line, message: clip(visible(message)) });
  }

  warn(line: number | undefined, message: string): void {
    this.warnings.push(line === undefined ? { file: this.file, message } : { file: this.file, line, message });
  }

  // ---- variables ------------------------------------------------------------------------

  /** Build arguments with secret-looking names that the current instruction expanded. */
  readonly secretArgsUsed = new Set<string>();

  private lookup: Lookup = (name) => {
    if (this.from !== undefined) {
      const e = this.env.get(name);
      if (e !== undefined) return e;
      const a = this.stageArgs.get(name);
      if (a !== undefined) return this.noteArg(name, a);
    } else {
      const g = this.globalArgs.get(name);
      if (g !== undefined) return this.noteArg(name, g);
    }
    if (name === "ARCH") return this.opts.arch;
    return undefined;
  };

  private noteArg(name: string, value: string): string {
    if (isSecretName(name) && Object.prototype.hasOwnProperty.call(this.opts.buildArgs ?? {}, name)) this.secretArgsUsed.add(name);
    return value;
  }

  /** Expand a word; errors become LineErrors. `quotes` false for JSON-form strings. */
  expand(word: string, quotes = true): string {
    let out: string;
    try {
      out = expandWord(word, this.lookup, {
        escape: this.escape,
        quotes,
        onUnset: (name) => {
          if (name === "ARCH") {
            throw new LineError("uses $ARCH, but no target architecture was given to the parser (opts.arch) and no ARG or ENV sets ARCH");
          }
        },
        maxLength: MAX_EXPANDED_LENGTH - this.expandedInInstruction,
      });
    } catch (e) {
      if (e instanceof ExpansionTooLongError) {
        throw new LineError(
          `${this.instructionKind}: expanding "${clip(word, 200)}" gives more than 1 MiB of text, the limit for one instruction (a variable that doubles itself?)`,
        );
      }
      if (e instanceof SubstitutionError) throw new LineError(`cannot expand "${clip(word, 200)}": ${e.message}`);
      throw e;
    }
    this.expandedInInstruction += out.length;
    return out;
  }
}

/** Names that say a value is a secret (DB_PASSWORD, API_KEY, REGISTRY_TOKEN, ...). */
const SECRET_NAME = /pass|secret|token|credential|private|api_?key|(^|[_.-])(key|pwd|auth)([_.-]|$)/i;

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/**
 * A message quoting a huge word (a 10 MB line) is useless and floods the terminal: keep its
 * start and end, saying how much was left out.
 */
export function clip(text: string, max = 2000): string {
  if (text.length <= max) return text;
  const head = Math.floor(max * 0.75);
  const tail = max - head;
  return `${text.slice(0, head)}... (${text.length - max} characters left out) ...${text.slice(-tail)}`;
}

/**
 * Control characters from the Kubefile shown as escapes (`\x1b`): a message must not move the
 * cursor, recolour or clear the user's terminal.
 */
export function visible(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
