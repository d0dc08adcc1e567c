/**
 * Splitting one logical line into instruction, flags and arguments, following the rules of
 * sealer's parser (itself Docker's): `splitCommand`, `extractBuilderFlags`, `parseWords`,
 * whitespace lists and JSON arrays.
 */

import { LineError } from "./errors";

const WHITESPACE = /[\t\v\f\r ]+/;

export interface SplitCommand {
  /** The instruction word as written. */
  readonly word: string;
  /** Leading `--flag[=value]` words (quotes and backslashes processed). */
  readonly flags: string[];
  /** The rest of the line, trimmed. */
  readonly rest: string;
}

export function splitCommand(line: string): SplitCommand {
  const trimmed = line.trim();
  const m = WHITESPACE.exec(trimmed);
  if (m === null) return { word: trimmed, flags: [], rest: "" };
  const word = trimmed.slice(0, m.index);
  const { flags, rest } = extractFlags(trimmed.slice(m.index + m[0].length));
  return { word, flags, rest: rest.trim() };
}

function isSpace(ch: string): boolean {
  return /\s/.test(ch);
}

/**
 * Leading words that start with `--` are builder flags; `--` alone ends them. Quotes group and
 * are removed, `\` escapes the next character (always backslash here, as in Docker).
 */
export function extractFlags(line: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  let pos = 0;
  for (;;) {
    while (pos < line.length && isSpace(line[pos])) pos++;
    if (pos >= line.length) return { flags, rest: "" };
    if (!(line[pos] === "-" && line[pos + 1] === "-")) return { flags, rest: line.slice(pos) };
    let word = "";
    let blankOk = false;
    let quote: string | undefined;
    while (pos < line.length) {
      const ch = line[pos];
      if (quote === undefined) {
        if (isSpace(ch)) break;
        if (ch === "'" || ch === '"') {
          quote = ch;
          blankOk = true;
          pos++;
          continue;
        }
      } else if (ch === quote) {
        quote = undefined;
        pos++;
        continue;
      }
      if (ch === "\\") {
        pos++;
        if (pos >= line.length) break;
        word += line[pos++];
        continue;
      }
      word += ch;
      pos++;
    }
    if (word === "--") return { flags, rest: line.slice(pos) };
    if (blankOk || word.length > 0) flags.push(word);
  }
}

/** Whitespace-separated words; no quote handling (Docker's `parseStringsWhitespaceDelimited`). */
export function splitWhitespace(rest: string): string[] {
  const t = rest.trim();
  return t === "" ? [] : t.split(WHITESPACE);
}

/**
 * Words separated by whitespace, where quotes group (and are kept, for later expansion to remove)
 * and the escape character protects the next character (kept too). Docker's `parseWords`, used
 * for ENV, LABEL, ARG.
 */
export function parseWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: string | undefined;
  let blankOk = false;
  const chars = Array.from(rest);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (!inWord) {
      if (isSpace(ch)) continue;
      inWord = true;
    }
    if (quote === undefined) {
      if (isSpace(ch)) {
        if (blankOk || word.length > 0) words.push(word);
        word = "";
        blankOk = false;
        inWord = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
      } else if (ch === escape) {
        if (i + 1 === chars.length) continue; // an escape at the very end is dropped
        word += ch;
        i++;
        word += chars[i];
        continue;
      }
      word += ch;
      continue;
    }
    // inside quotes
    if (ch === quote) {
      quote = undefined;
      word += ch;
      continue;
    }
    if (ch === escape && quote !== "'") {
      if (i + 1 === chars.length) {
        quote = undefined;
        continue;
      }
      word += ch;
      i++;
      word += chars[i];
      continue;
    }
    word += ch;
  }
  if (inWord && (blankOk || word.length > 0)) words.push(word);
  return words;
}

export type JsonArrayResult =
  | { readonly kind: "array"; readonly values: string[] }
  /** Does not start with `[`: the shell/whitespace form. */
  | { readonly kind: "not-json" }
  /** Starts with `[` but is not valid JSON. */
  | { readonly kind: "invalid"; readonly reason: string }
  /** Valid JSON, but not an array of strings. */
  | { readonly kind: "not-strings" };

export const NOT_STRINGS_MESSAGE = "when using JSON array syntax, arrays must be comprised of strings only";

export function parseJsonArray(rest: string): JsonArrayResult {
  const t = rest.trimStart();
  if (!t.startsWith("[")) return { kind: "not-json" };
  let value: unknown;
  try {
    value = JSON.parse(t);
  } catch (e) {
    return { kind: "invalid", reason: e instanceof Error ? e.message : String(e) };
  }
  if (!Array.isArray(value)) return { kind: "invalid", reason: "not an array" };
  if (!value.every((v): v is string => typeof v === "string")) return { kind: "not-strings" };
  return { kind: "array", values: value };
}

/** Text that starts like a JSON array of strings (`["`), so a parse failure is a mistake, not shell. */
export function looksLikeJson(rest: string): boolean {
  return /^\[\s*"/.test(rest.trimStart());
}

/** One argument as written, and whether expanding it should process quotes (not in JSON form). */
export interface ArgWord {
  readonly text: string;
  readonly quotes: boolean;
}

/**
 * Arguments in JSON form or whitespace-separated (sealer's parseMaybeJSONToList). Text that
 * starts with `[` but is not a JSON array is an error, except in `glob` mode (COPY/ADD) where
 * `[ab]*.yaml` is a pattern unless it starts like `["`.
 */
export function listArgs(kind: string, rest: string, mode: "strict" | "glob"): ArgWord[] {
  const json = parseJsonArray(rest);
  if (json.kind === "array") return json.values.map((text) => ({ text, quotes: false }));
  if (json.kind === "not-strings") throw new LineError(`${kind}: ${NOT_STRINGS_MESSAGE}`);
  if (json.kind === "invalid" && (mode === "strict" || looksLikeJson(rest))) {
    throw new LineError(`${kind}: malformed JSON array (${json.reason})`);
  }
  return splitWhitespace(rest).map((text) => ({ text, quotes: true }));
}
