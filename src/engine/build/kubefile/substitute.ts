/**
 * Variable expansion as Docker/buildkit does it for a Dockerfile word ("ProcessWord"):
 * `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`,
 * `${VAR:?message}`, `${VAR?message}`; an unset variable expands to "". The escape character
 * (normally `\`) makes the next character literal (`\$HOME` is `$HOME`). With `quotes` (the
 * default), single quotes are literal and removed, double quotes group, allow expansion and are
 * removed, and inside them the escape only protects `"`, `$` and itself. Pure: variables come from
 * `lookup`.
 */

export class SubstitutionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SubstitutionError";
  }
}

/** undefined = unset (as opposed to set to ""). */
export type Lookup = (name: string) => string | undefined;

export interface ExpandOptions {
  /** Escape character; default `\`. */
  readonly escape?: string;
  /** Process and remove quotes (shell-form words); false for JSON-form strings. Default true. */
  readonly quotes?: boolean;
  /** Called once per plain `$NAME`/`${NAME}` that expanded from an unset variable. */
  readonly onUnset?: (name: string) => void;
}

const NAME_CHAR = /[A-Za-z0-9_]/;

class Expander {
  private pos = 0;
  /** Unset plain references seen, kept only when the text containing them is used. */
  readonly unset: string[] = [];

  constructor(
    private readonly s: string,
    private readonly lookup: Lookup,
    private readonly escape: string,
    private readonly quotes: boolean,
  ) {}

  /** Expand up to `stop` (consumed) or the end of the text. */
  run(stop?: string): string {
    let out = "";
    const s = this.s;
    while (this.pos < s.length) {
      const ch = s[this.pos];
      if (stop !== undefined && ch === stop) {
        this.pos++;
        return out;
      }
      if (ch === this.escape) {
        this.pos++;
        if (this.pos >= s.length) break;
        out += s[this.pos++];
        continue;
      }
      if (this.quotes && ch === "'") {
        out += this.singleQuoted();
        continue;
      }
      if (this.quotes && ch === '"') {
        out += this.doubleQuoted();
        continue;
      }
      if (ch === "$") {
        out += this.dollar();
        continue;
      }
      out += ch;
      this.pos++;
    }
    if (stop !== undefined) throw new SubstitutionError(`syntax error: missing '${stop}'`);
    return out;
  }

  private singleQuoted(): string {
    const s = this.s;
    const end = s.indexOf("'", this.pos + 1);
    if (end < 0) throw new SubstitutionError("unexpected end of statement while looking for matching single-quote");
    const out = s.slice(this.pos + 1, end);
    this.pos = end + 1;
    return out;
  }

  private doubleQuoted(): string {
    const s = this.s;
    let out = "";
    this.pos++;
    while (this.pos < s.length) {
      const ch = s[this.pos];
      if (ch === '"') {
        this.pos++;
        return out;
      }
      if (ch === "$") {
        out += this.dollar();
        continue;
      }
      this.pos++;
      if (ch === this.escape) {
        if (this.pos >= s.length) continue;
        const next = s[this.pos];
        if (next === '"' || next === "$" || next === this.escape) {
          out += next;
          this.pos++;
          continue;
        }
      }
      out += ch;
    }
    throw new SubstitutionError("unexpected end of statement while looking for matching double-quote");
  }

  private name(): string {
    const start = this.pos;
    while (this.pos < this.s.length && NAME_CHAR.test(this.s[this.pos])) this.pos++;
    return this.s.slice(start, this.pos);
  }

  private plain(name: string): string {
    const v = this.lookup(name);
    if (v === undefined) {
      this.unset.push(name);
      return "";
    }
    return v;
  }

  private dollar(): string {
    const s = this.s;
    this.pos++; // $
    if (s[this.pos] !== "{") {
      const name = this.name();
      return name === "" ? "$" : this.plain(name);
    }
    this.pos++; // {
    if (this.pos >= s.length) throw new SubstitutionError("syntax error: missing '}'");
    const name = this.name();
    if (name === "") throw new SubstitutionError("syntax error: bad substitution");
    if (this.pos >= s.length) throw new SubstitutionError("syntax error: missing '}'");
    let op = s[this.pos++];
    if (op === "}") return this.plain(name);
    const colon = op === ":";
    if (colon) {
      if (this.pos >= s.length) throw new SubstitutionError("syntax error: missing '}'");
      op = s[this.pos++];
    }
    if (op !== "-" && op !== "+" && op !== "?") {
      throw new SubstitutionError(`unsupported modifier (${colon ? ":" : ""}${op}) in substitution \${${name}${colon ? ":" : ""}${op}...}`);
    }
    const mark = this.unset.length;
    const word = this.run("}");
    const value = this.lookup(name);
    const present = colon ? value !== undefined && value !== "" : value !== undefined;
    switch (op) {
      case "-":
        if (present) {
          this.unset.length = mark;
          return value as string;
        }
        return word;
      case "+":
        if (!present) {
          this.unset.length = mark;
          return "";
        }
        return word;
      default: // "?"
        if (!present) throw new SubstitutionError(`${name}: ${word === "" ? "is not set" : word}`);
        this.unset.length = mark;
        return value as string;
    }
  }
}

/** Expand one word. Throws SubstitutionError for bad syntax or a `${VAR?msg}` whose VAR is unset. */
export function expand(word: string, lookup: Lookup, opts: ExpandOptions = {}): string {
  const x = new Expander(word, lookup, opts.escape ?? "\\", opts.quotes ?? true);
  const out = x.run();
  if (opts.onUnset !== undefined) for (const name of new Set(x.unset)) opts.onUnset(name);
  return out;
}
