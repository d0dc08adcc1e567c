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

/** The expansion would exceed `ExpandOptions.maxLength`. */
export class ExpansionTooLongError extends SubstitutionError {
  constructor(readonly limit: number) {
    super(`the expanded text would be longer than ${limit} characters`);
    this.name = "ExpansionTooLongError";
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
  /** The longest result allowed (characters); default MAX_EXPANDED_LENGTH. */
  readonly maxLength?: number;
}

/**
 * 1 MiB: far more than any real word, and small enough that `ARG A=$A$A` repeated cannot grow a
 * value until the process runs out of memory ("Invalid string length").
 */
export const MAX_EXPANDED_LENGTH = 1 << 20;
/** `${A:-${B:-...}}` nesting deeper than this is refused before it can exhaust the stack. */
export const MAX_NESTING = 64;

const NAME_CHAR = /[A-Za-z0-9_]/;

class Expander {
  private pos = 0;
  private depth = 0;
  /** Unset plain references seen, kept only when the text containing them is used. */
  readonly unset: string[] = [];

  constructor(
    private readonly s: string,
    private readonly lookup: Lookup,
    private readonly escape: string,
    private readonly quotes: boolean,
    private readonly maxLength: number,
  ) {}

  /** `out + more`, refusing a result longer than the limit. */
  private append(out: string, more: string): string {
    if (out.length + more.length > this.maxLength) throw new ExpansionTooLongError(this.maxLength);
    return out + more;
  }

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
        out = this.append(out, this.doubleQuoted());
        continue;
      }
      if (ch === "$") {
        out = this.append(out, this.dollar());
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
        out = this.append(out, this.dollar());
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
    if (++this.depth > MAX_NESTING) throw new SubstitutionError(`substitutions nested more than ${MAX_NESTING} deep`);
    const word = this.run("}");
    this.depth--;
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
  const x = new Expander(word, lookup, opts.escape ?? "\\", opts.quotes ?? true, opts.maxLength ?? MAX_EXPANDED_LENGTH);
  const out = x.run();
  // Literal text is not checked as it is copied; the whole result is.
  if (out.length > (opts.maxLength ?? MAX_EXPANDED_LENGTH)) throw new ExpansionTooLongError(opts.maxLength ?? MAX_EXPANDED_LENGTH);
  if (opts.onUnset !== undefined) for (const name of new Set(x.unset)) opts.onUnset(name);
  return out;
}
