import type { Env } from "./env";
import { lex, parse, ParseFailure, type Expr, type Node } from "./template-parse";

/**
 * sealer renders every `*.tmpl` file of an image (under etc/, charts/, manifests/) with Go's
 * text/template and the env as data, plus `b64enc`/`b64dec` (its docs also name sprig, whose
 * `default` is what images use). This is the subset cluster images use:
 *
 * - `{{ .VAR }}` / `{{.VAR}}`, `{{ index . "with-dash" }}`, trim markers `{{-` and `-}}`,
 *   comments `{{/* ... *\/}}`;
 * - pipelines `{{ .VAR | default "x" | quote }}` and calls `{{ default "x" .VAR }}`;
 * - `{{ if PIPELINE }} ... {{ else if ... }} ... {{ else }} ... {{ end }}`;
 * - functions: default, required, empty, b64enc, b64dec, quote, squote, upper, lower, trim,
 *   trimPrefix, trimSuffix, replace, eq, ne, not, and, or, index.
 *
 * Unlike Go (which prints `<no value>`), a variable that is not in the env is an error, unless
 * it is tested (`if`, `default`, `empty`, `not`, `and`, `or`, `eq`, `ne`): every missing
 * variable of the file is named at once, with its line.
 */

/** A template that cannot be rendered: every problem, with file and line. */
export class TemplateError extends Error {
  readonly file: string;
  readonly problems: readonly { line: number; message: string }[];

  constructor(file: string, problems: readonly { line: number; message: string }[]) {
    const lines = problems.map((p) => `${file}:${p.line}: ${p.message}`);
    super(lines.length === 1 ? (lines[0] ?? file) : `${file}: ${problems.length} problems:\n${lines.map((l) => `  ${l}`).join("\n")}`);
    this.name = "TemplateError";
    this.file = file;
    this.problems = problems;
  }
}

/** A variable that is not in the env (distinct from an empty string). */
const MISSING: unique symbol = Symbol("missing");
type Value = string | number | boolean | typeof MISSING | Env;

class Missing extends Error {
  constructor(readonly variable: string) {
    super(variable);
  }
}

function truthy(v: Value): boolean {
  if (v === MISSING) return false;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return v !== "" && v !== 0 && v !== false;
}

function text(v: Value, what: string): string {
  if (v === MISSING) throw new Missing(what);
  if (typeof v === "object") throw new Error(`${what} is the whole env, not a value`);
  return String(v);
}

/** Functions that take a missing variable as a value to test rather than an error. */
const TESTING = new Set(["default", "empty", "not", "and", "or", "eq", "ne", "required"]);

type Fn = (args: Value[], names: string[]) => Value;

const FUNCTIONS: Record<string, Fn> = {
  default: ([fallback, given]) => (given === undefined || !truthy(given) ? (fallback ?? "") : given),
  required: ([msg, given], names) => {
    const why = text(msg ?? "", "message");
    if (given === undefined || given === MISSING) throw new Error(`missing variable "${names[1] ?? "value"}": ${why}`);
    if (given === "") throw new Error(`"${names[1] ?? "value"}" is empty: ${why}`);
    return given;
  },
  empty: ([v]) => !truthy(v ?? MISSING),
  not: ([v]) => !truthy(v ?? MISSING),
  and: (args) => args.find((a) => !truthy(a)) ?? args[args.length - 1] ?? false,
  or: (args) => args.find((a) => truthy(a)) ?? args[args.length - 1] ?? false,
  eq: ([a, ...rest]) => rest.some((b) => b === a),
  ne: ([a, b]) => a !== b,
  b64enc: ([v], n) => Buffer.from(text(v ?? MISSING, n[0] ?? "argument")).toString("base64"),
  b64dec: ([v], n) => Buffer.from(text(v ?? MISSING, n[0] ?? "argument"), "base64").toString("utf8"),
  quote: ([v], n) => JSON.stringify(text(v ?? MISSING, n[0] ?? "argument")),
  squote: ([v], n) => `'${text(v ?? MISSING, n[0] ?? "argument")}'`,
  upper: ([v], n) => text(v ?? MISSING, n[0] ?? "argument").toUpperCase(),
  lower: ([v], n) => text(v ?? MISSING, n[0] ?? "argument").toLowerCase(),
  trim: ([v], n) => text(v ?? MISSING, n[0] ?? "argument").trim(),
  trimPrefix: ([p, v], n) => {
    const s = text(v ?? MISSING, n[1] ?? "argument");
    const pre = text(p ?? "", "prefix");
    return s.startsWith(pre) ? s.slice(pre.length) : s;
  },
  trimSuffix: ([p, v], n) => {
    const s = text(v ?? MISSING, n[1] ?? "argument");
    const suf = text(p ?? "", "suffix");
    return suf !== "" && s.endsWith(suf) ? s.slice(0, -suf.length) : s;
  },
  replace: ([from, to, v], n) =>
    text(v ?? MISSING, n[2] ?? "argument")
      .split(text(from ?? "", "old"))
      .join(text(to ?? "", "new")),
  index: ([m, key]) => {
    if (typeof m !== "object" || m === null) throw new Error("index needs the env (.) as its first argument");
    const k = text(key ?? MISSING, "index key");
    return Object.hasOwn(m, k) ? (m[k] as string) : MISSING;
  },
};

/** The name a missing value is reported under: `.PodCIDR` → "PodCIDR". */
function nameOf(e: Expr): string {
  if (e.kind === "field") return e.name;
  if (e.kind === "pipeline" && e.commands.length === 1 && e.commands[0]?.length === 1) return nameOf(e.commands[0][0] as Expr);
  return "value";
}

function evaluate(e: Expr, env: Env): Value {
  switch (e.kind) {
    case "literal":
      return e.value;
    case "dot":
      return env;
    case "field":
      if (e.name.includes(".")) throw new Error(`.${e.name}: env values are strings, they have no fields`);
      return Object.hasOwn(env, e.name) ? (env[e.name] as string) : MISSING;
    case "ident":
      return call(e.name, [], [], undefined, "value", env);
    case "pipeline": {
      let prev: Value | undefined;
      let prevName = "value";
      for (const cmd of e.commands) {
        const [head, ...rest] = cmd as [Expr, ...Expr[]];
        if (head.kind === "ident") {
          prev = call(head.name, rest, rest.map(nameOf), prev, prevName, env);
        } else {
          if (rest.length > 0 || prev !== undefined) throw new Error(`${head.kind === "field" ? `.${head.name}` : "a value"} is not a function`);
          prev = evaluate(head, env);
          prevName = nameOf(head);
        }
      }
      return prev ?? MISSING;
    }
  }
}

function call(name: string, argExprs: Expr[], names: string[], piped: Value | undefined, pipedName: string, env: Env): Value {
  const fn = Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined;
  if (fn === undefined) throw new Error(`unknown function "${name}" (supported: ${Object.keys(FUNCTIONS).join(", ")})`);
  const args = argExprs.map((a) => evaluate(a, env));
  if (piped !== undefined) {
    args.push(piped);
    names.push(pipedName);
  }
  if (!TESTING.has(name)) {
    args.forEach((a, i) => {
      if (a === MISSING) throw new Missing(names[i] ?? "value");
    });
  }
  return fn(args, names);
}

function render(nodes: Node[], env: Env, out: string[], problems: { line: number; message: string }[]): void {
  for (const node of nodes) {
    if (node.kind === "text") {
      out.push(node.text);
    } else if (node.kind === "output") {
      try {
        const v = evaluate(node.expr, env);
        out.push(text(v, nameOf(node.expr)));
      } catch (err) {
        problems.push({ line: node.line, message: describe(err) });
      }
    } else {
      let done = false;
      for (const branch of node.branches) {
        let ok = false;
        try {
          ok = truthy(evaluate(branch.cond, env));
        } catch (err) {
          problems.push({ line: branch.line, message: describe(err) });
        }
        if (ok) {
          render(branch.body, env, out, problems);
          done = true;
          break;
        }
      }
      if (!done) render(node.otherwise, env, out, problems);
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof Missing) return `missing variable "${err.variable}" (not in the image, cluster or host env)`;
  return err instanceof Error ? err.message : String(err);
}

export interface RenderOptions {
  /** The template's name in errors, e.g. `etc/kubeadm.yaml.tmpl`. @default "template" */
  file?: string;
}

/**
 * Renders a `*.tmpl` file's text with an env (see the module comment for what is supported).
 * Throws `TemplateError` naming the file, the line and every missing variable.
 */
export function renderTemplate(text: string, env: Env, options: RenderOptions = {}): string {
  const file = options.file ?? "template";
  let nodes: Node[];
  try {
    nodes = parse(lex(text));
  } catch (err) {
    if (err instanceof ParseFailure) throw new TemplateError(file, [{ line: err.line, message: err.message }]);
    throw err;
  }
  const out: string[] = [];
  const problems: { line: number; message: string }[] = [];
  render(nodes, env, out, problems);
  if (problems.length > 0) throw new TemplateError(file, problems);
  return out.join("");
}

/** `kubeadm.yaml.tmpl` → `kubeadm.yaml`; undefined for a file that is not a template. */
export function renderedName(path: string): string | undefined {
  return path.endsWith(".tmpl") && !path.endsWith("/.tmpl") ? path.slice(0, -".tmpl".length) : undefined;
}
