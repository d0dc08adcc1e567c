/**
 * The parsing half of sealant's text/template subset (see template.ts): text and actions, then
 * a tree of text, outputs and if-branches, with each action's line for error messages.
 */

export type Node =
  | { kind: "text"; text: string }
  | { kind: "output"; expr: Expr; line: number }
  | { kind: "if"; branches: { cond: Expr; body: Node[]; line: number }[]; otherwise: Node[] };

export type Expr =
  | { kind: "pipeline"; commands: Expr[][] }
  | { kind: "field"; name: string }
  | { kind: "dot" }
  | { kind: "literal"; value: string | number | boolean }
  | { kind: "ident"; name: string };

export class ParseFailure extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

interface Action {
  body: string;
  line: number;
}

/** Splits the text into text pieces and actions, applying trim markers; comments vanish. */
export function lex(text: string): (string | Action)[] {
  const out: (string | Action)[] = [];
  let pos = 0;
  let line = 1;
  let trimNext = false;
  while (pos < text.length) {
    const open = text.indexOf("{{", pos);
    let chunk = open < 0 ? text.slice(pos) : text.slice(pos, open);
    if (trimNext) chunk = chunk.replace(/^\s+/, "");
    if (open < 0) {
      out.push(chunk);
      break;
    }
    const trimLeft = /^\{\{-[ \t\r\n]/.test(text.slice(open, open + 4));
    if (trimLeft) chunk = chunk.replace(/\s+$/, "");
    out.push(chunk);
    line += (text.slice(pos, open).match(/\n/g) ?? []).length;
    const close = text.indexOf("}}", open + 2);
    if (close < 0) throw new ParseFailure(line, 'unclosed action: "{{" without "}}"');
    const trimRight = /[ \t\r\n]-$/.test(text.slice(open + 2, close));
    let body = text.slice(open + (trimLeft ? 3 : 2), trimRight ? close - 1 : close).trim();
    const actionLine = line;
    line += (text.slice(open, close).match(/\n/g) ?? []).length;
    pos = close + 2;
    trimNext = trimRight;
    if (body.startsWith("/*")) {
      if (!body.endsWith("*/")) throw new ParseFailure(actionLine, "a comment must be {{/* ... */}}");
      continue;
    }
    body = body.trim();
    out.push({ body, line: actionLine });
  }
  return out;
}

const TOKEN =
  /\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(-?\d+(?:\.\d+)?)(?![\w.])|(\.[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)|(\.)|([A-Za-z_][A-Za-z0-9_]*)|(\|)|(\()|(\))|(\$[A-Za-z0-9_]*|:=|=)|(\S))/y;

type Token = { kind: "str" | "num" | "field" | "dot" | "ident" | "pipe" | "lparen" | "rparen" | "bad"; text: string };

function tokenize(src: string, line: number): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < src.length) {
    const m = TOKEN.exec(src);
    if (m === null) break;
    if (m[0].trim() === "") break;
    if (m[1] !== undefined) tokens.push({ kind: "str", text: JSON.parse(m[1]) as string });
    else if (m[2] !== undefined) tokens.push({ kind: "str", text: m[2].slice(1, -1) });
    else if (m[3] !== undefined) tokens.push({ kind: "num", text: m[3] });
    else if (m[4] !== undefined) tokens.push({ kind: "field", text: m[4].slice(1) });
    else if (m[5] !== undefined) tokens.push({ kind: "dot", text: "." });
    else if (m[6] !== undefined) tokens.push({ kind: "ident", text: m[6] });
    else if (m[7] !== undefined) tokens.push({ kind: "pipe", text: "|" });
    else if (m[8] !== undefined) tokens.push({ kind: "lparen", text: "(" });
    else if (m[9] !== undefined) tokens.push({ kind: "rparen", text: ")" });
    else if (m[10] !== undefined) throw new ParseFailure(line, `template variables (${m[10]}) are not supported: use .NAME`);
    else throw new ParseFailure(line, `unexpected "${m[11] ?? m[0]}" in {{ ${src} }}`);
  }
  return tokens;
}

function parsePipeline(tokens: Token[], at: { i: number }, line: number, inParens: boolean): Expr {
  const commands: Expr[][] = [[]];
  while (at.i < tokens.length) {
    const t = tokens[at.i++] as Token;
    const current = commands[commands.length - 1] as Expr[];
    switch (t.kind) {
      case "pipe":
        if (current.length === 0) throw new ParseFailure(line, 'a pipeline cannot start with "|"');
        commands.push([]);
        break;
      case "lparen":
        current.push(parsePipeline(tokens, at, line, true));
        break;
      case "rparen":
        if (!inParens) throw new ParseFailure(line, 'unbalanced ")"');
        return finish(commands, line);
      case "str":
        current.push({ kind: "literal", value: t.text });
        break;
      case "num":
        current.push({ kind: "literal", value: Number(t.text) });
        break;
      case "field":
        current.push({ kind: "field", name: t.text });
        break;
      case "dot":
        current.push({ kind: "dot" });
        break;
      case "ident":
        current.push(t.text === "true" || t.text === "false" ? { kind: "literal", value: t.text === "true" } : { kind: "ident", name: t.text });
        break;
      default:
        throw new ParseFailure(line, `unexpected "${t.text}"`);
    }
  }
  if (inParens) throw new ParseFailure(line, 'unbalanced "("');
  return finish(commands, line);
}

function finish(commands: Expr[][], line: number): Expr {
  if (commands.some((c) => c.length === 0)) throw new ParseFailure(line, "empty command in pipeline");
  return { kind: "pipeline", commands };
}

function parseExpr(src: string, line: number): Expr {
  const tokens = tokenize(src, line);
  if (tokens.length === 0) throw new ParseFailure(line, "empty action {{ }}");
  return parsePipeline(tokens, { i: 0 }, line, false);
}

const UNSUPPORTED = new Set(["range", "with", "define", "template", "block", "break", "continue"]);

/** Builds the node tree; `if`/`else`/`end` nest. */
export function parse(pieces: (string | Action)[]): Node[] {
  const root: Node[] = [];
  const stack: { node: Extract<Node, { kind: "if" }>; target: Node[]; line: number }[] = [];
  let target = root;
  for (const piece of pieces) {
    if (typeof piece === "string") {
      if (piece !== "") target.push({ kind: "text", text: piece });
      continue;
    }
    const { body, line } = piece;
    const word = /^[A-Za-z]+/.exec(body)?.[0] ?? "";
    if (word === "if") {
      const node: Extract<Node, { kind: "if" }> = { kind: "if", branches: [{ cond: parseExpr(body.slice(2), line), body: [], line }], otherwise: [] };
      target.push(node);
      stack.push({ node, target, line });
      target = (node.branches[0] as { body: Node[] }).body;
    } else if (word === "else") {
      const top = stack[stack.length - 1];
      if (top === undefined) throw new ParseFailure(line, "{{ else }} without {{ if }}");
      const rest = body.slice(4).trim();
      if (rest.startsWith("if ") || rest.startsWith("if\t")) {
        const branch = { cond: parseExpr(rest.slice(2), line), body: [] as Node[], line };
        top.node.branches.push(branch);
        target = branch.body;
      } else if (rest === "") {
        target = top.node.otherwise;
      } else {
        throw new ParseFailure(line, `unexpected "${rest}" after else`);
      }
    } else if (word === "end") {
      const top = stack.pop();
      if (top === undefined) throw new ParseFailure(line, "{{ end }} without {{ if }}");
      target = top.target;
    } else if (UNSUPPORTED.has(word)) {
      throw new ParseFailure(line, `{{ ${word} }} is not supported in sealant's templates (supported: .VAR, pipelines, if/else/end)`);
    } else {
      target.push({ kind: "output", expr: parseExpr(body, line), line });
    }
  }
  const open = stack.pop();
  if (open !== undefined) throw new ParseFailure(open.line, "{{ if }} without {{ end }}");
  return root;
}
