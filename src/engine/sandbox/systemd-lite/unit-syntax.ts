/**
 * systemd's unit-file syntax, pure (no files read): sections, time spans, booleans, words with
 * quotes and escapes, Environment= values and Exec*= command lines.
 */

/** `[Section]` -> its `Key=Value` assignments in file order (keys and values trimmed). */
export type UnitSections = Record<string, [string, string][]>;

export function parseUnitText(text: string): UnitSections {
  const out: UnitSections = {};
  const lines = text.split(/\r?\n/);
  let section = "";
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    // A trailing backslash joins the next line (comment lines in between are skipped), with a space.
    while (line.endsWith("\\") && i + 1 < lines.length) {
      const next = lines[++i]!.trim();
      if (next.startsWith("#") || next.startsWith(";")) {
        line = `${line.slice(0, -1)} \\`;
        continue;
      }
      line = `${line.slice(0, -1)} ${next}`;
    }
    if (line.startsWith("[") && line.endsWith("]")) {
      section = line.slice(1, -1).trim();
      out[section] ??= [];
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0 || !section) continue;
    out[section]!.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return out;
}

/** systemd time spans: `10`, `10s`, `100ms`, `1min 30s`, `2h`, `infinity` -> seconds. */
export function parseTimespan(text: string, fallback: number): number {
  const t = text.trim();
  if (t === "") return fallback;
  if (t === "infinity") return Infinity;
  const units: Record<string, number> = {
    us: 1e-6,
    usec: 1e-6,
    ms: 1e-3,
    msec: 1e-3,
    s: 1,
    sec: 1,
    second: 1,
    seconds: 1,
    m: 60,
    min: 60,
    minute: 60,
    minutes: 60,
    h: 3600,
    hr: 3600,
    hour: 3600,
    hours: 3600,
    d: 86400,
    day: 86400,
    days: 86400,
  };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)\s*([a-z]*)/g;
  let m: RegExpExecArray | null;
  let matched = "";
  while ((m = re.exec(t))) {
    const unit = m[2] === "" ? "s" : m[2]!;
    if (!(unit in units)) return fallback;
    total += Number(m[1]) * units[unit]!;
    matched += m[0];
  }
  return matched.replace(/\s/g, "") === t.replace(/\s/g, "") && matched !== "" ? total : fallback;
}

export function parseBoolean(text: string | undefined, fallback: boolean): boolean {
  if (text === undefined || text === "") return fallback;
  if (/^(1|yes|y|true|t|on)$/i.test(text)) return true;
  if (/^(0|no|n|false|f|off)$/i.test(text)) return false;
  return fallback;
}

/** A word of a command line: its unquoted text, and the variable name if it was written as a bare `$NAME`. */
export interface Word {
  text: string;
  bareVar?: string;
}

const ESCAPES: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", s: " ", "\\": "\\", '"': '"', "'": "'", ";": ";" };

/** Splits a value into words the way systemd does (whitespace; "double" and 'single' quotes; C escapes). */
export function splitWords(text: string): Word[] {
  const words: Word[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && /\s/.test(text[i]!)) i++;
    if (i >= n) break;
    let out = "";
    let raw = "";
    let quoted = false;
    while (i < n && !/\s/.test(text[i]!)) {
      const c = text[i]!;
      if (c === '"' || c === "'") {
        quoted = true;
        const q = c;
        i++;
        while (i < n && text[i] !== q) {
          if (text[i] === "\\" && q === '"' && i + 1 < n) {
            const [s, len] = unescapeAt(text, i);
            out += s;
            i += len;
          } else out += text[i++];
        }
        i++; // closing quote
        continue;
      }
      if (c === "\\" && i + 1 < n) {
        const [s, len] = unescapeAt(text, i);
        out += s;
        raw += text.slice(i, i + len);
        i += len;
        continue;
      }
      out += c;
      raw += c;
      i++;
    }
    const bare = !quoted && /^\$[A-Za-z_][A-Za-z0-9_]*$/.test(raw) ? raw.slice(1) : undefined;
    words.push(bare ? { text: out, bareVar: bare } : { text: out });
  }
  return words;
}

function unescapeAt(text: string, i: number): [string, number] {
  const c = text[i + 1]!;
  if (c in ESCAPES) return [ESCAPES[c]!, 2];
  if (c === "x" && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) return [String.fromCharCode(parseInt(text.slice(i + 2, i + 4), 16)), 4];
  if (/^[0-7]{3}$/.test(text.slice(i + 1, i + 4))) return [String.fromCharCode(parseInt(text.slice(i + 1, i + 4), 8)), 4];
  return [c, 2];
}

/** `Environment=` values: space-separated `KEY=VALUE` assignments, quotes allowed. */
export function parseEnvironmentAssignments(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const w of splitWords(text)) {
    const eq = w.text.indexOf("=");
    if (eq > 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(w.text.slice(0, eq))) out.push([w.text.slice(0, eq), w.text.slice(eq + 1)]);
  }
  return out;
}

/** One `Exec*=` line, parsed with the environment of this start. */
export interface ExecLine {
  argv: string[];
  /** `-` prefix: a failure is not the unit's failure. */
  ignoreFailure: boolean;
}

/** Prefixes (`-`, `@`, `:`, `+`, `!`), words, and `${VAR}` / `$VAR` expansion (`$$` is a literal `$`). */
export function parseExecLine(raw: string, env: Map<string, string>): ExecLine {
  let text = raw.trim();
  let ignoreFailure = false;
  let argv0 = false;
  let expand = true;
  for (;;) {
    const c = text[0];
    if (c === "-") ignoreFailure = true;
    else if (c === "@") argv0 = true;
    else if (c === ":") expand = false;
    else if (c !== "+" && c !== "!") break;
    text = text.slice(1);
  }
  const words = splitWords(text);
  const argv: string[] = [];
  for (const [i, w] of words.entries()) {
    if (argv0 && i === 1) continue; // `@path argv0 args`: our exec cannot set argv[0]; the program keeps its path as argv[0]
    if (!expand) {
      argv.push(w.text);
      continue;
    }
    if (w.bareVar !== undefined) {
      argv.push(...(env.get(w.bareVar) ?? "").split(/\s+/).filter(Boolean));
      continue;
    }
    argv.push(w.text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name: string | undefined) => (m === "$$" ? "$" : (env.get(name!) ?? ""))));
  }
  return { argv, ignoreFailure };
}

/** Single-quoted for sh. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
