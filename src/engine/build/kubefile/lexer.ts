import type { KubefileError, KubefileWarning } from "./errors";

/**
 * Physical lines -> logical lines, as sealer's parser (adapted from Docker's) does it:
 * - a UTF-8 BOM is dropped; `\r\n` and `\n` both end a line;
 * - `# escape=\` or `` # escape=` `` at the very top (before any other line, blank lines and
 *   comments included) sets the escape character; it may appear once;
 * - a line whose first non-blank character is `#` is a comment (only full-line comments: `#`
 *   later in a line is text);
 * - the escape character at the end of a line (trailing blanks allowed) continues the instruction
 *   on the next line; the pieces are joined as they are, without adding spaces;
 * - inside a continuation, comment lines are skipped and blank lines are skipped with a warning
 *   (Docker: "empty continuation lines will become errors in a future release").
 */

export type EscapeToken = "\\" | "`";

export interface LogicalLine {
  /** The joined instruction text, escape characters at line ends removed. */
  readonly text: string;
  /** 1-based first physical line. */
  readonly line: number;
  /** 1-based last physical line. */
  readonly endLine: number;
}

export interface LexResult {
  readonly lines: LogicalLine[];
  readonly escape: EscapeToken;
  readonly errors: KubefileError[];
  readonly warnings: KubefileWarning[];
}

const ESCAPE_DIRECTIVE = /^#[ \t]*escape[ \t]*=[ \t]*(.).*$/;

function trimLeft(s: string): string {
  return s.replace(/^\s+/, "");
}

export function splitLogicalLines(text: string, file: string): LexResult {
  const errors: KubefileError[] = [];
  const warnings: KubefileWarning[] = [];
  const lines: LogicalLine[] = [];

  const source = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const physical = source.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
  // A final newline does not start another line.
  if (physical.length > 0 && physical[physical.length - 1] === "" && source.endsWith("\n")) physical.pop();

  let escape: EscapeToken = "\\";
  let directivesDone = false;
  let escapeSeen = false;
  let continuation = /\\[ \t]*$/;

  const directive = (candidate: string, lineNo: number): void => {
    if (directivesDone) return;
    const m = ESCAPE_DIRECTIVE.exec(candidate.toLowerCase());
    if (m === null) {
      directivesDone = true;
      return;
    }
    if (escapeSeen) {
      errors.push({ file, line: lineNo, message: "only one escape parser directive can be used" });
      return;
    }
    escapeSeen = true;
    const c = m[1];
    if (c !== "\\" && c !== "`") {
      errors.push({ file, line: lineNo, message: `invalid escape parser directive "${c}" (expected \\ or \`)` });
      return;
    }
    escape = c;
    continuation = c === "\\" ? /\\[ \t]*$/ : /`[ \t]*$/;
  };

  /** [text without the continuation mark, whether the instruction ends on this line] */
  const cut = (s: string): [string, boolean] => {
    const m = continuation.exec(s);
    return m === null ? [s, true] : [s.slice(0, m.index), false];
  };

  let i = 0;
  while (i < physical.length) {
    const lineNo = i + 1;
    let first = trimLeft(physical[i]);
    i++;
    directive(first, lineNo);
    if (first.startsWith("#")) first = "";
    let [joined, ended] = cut(first);
    if (ended && joined.trim() === "") continue;

    let emptyContinuation = false;
    while (!ended && i < physical.length) {
      const raw = physical[i];
      i++;
      const t = trimLeft(raw);
      if (t === "") {
        emptyContinuation = true;
        continue;
      }
      if (t.startsWith("#")) continue;
      const [piece, end] = cut(raw);
      joined += piece;
      ended = end;
    }
    if (emptyContinuation) {
      warnings.push({
        file,
        line: lineNo,
        message: "empty continuation line (a blank line inside an instruction continued with " + escape + "); Docker will make this an error",
      });
    }
    if (joined.trim() !== "") lines.push({ text: joined, line: lineNo, endLine: i });
  }

  return { lines, escape, errors, warnings };
}
