/** A problem that makes a Kubefile unusable. `line` is 1-based: the first physical line of the instruction. */
export interface KubefileError {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

/**
 * Something sealer/docker would only warn about (e.g. a build argument no ARG declares). `line` is
 * absent when the warning is not about one instruction.
 */
export interface KubefileWarning {
  readonly file: string;
  readonly line?: number;
  readonly message: string;
}

/** `Kubefile:7: LAUNCH must be the last instruction ...` (or `Kubefile: ...` for a warning without a line). */
export function formatKubefileError(e: KubefileError | KubefileWarning): string {
  return e.line === undefined ? `${e.file}: ${e.message}` : `${e.file}:${e.line}: ${e.message}`;
}

const MAX_ERRORS_SHOWN = 20;

/** Thrown by `parseKubefileOrThrow`; the message lists every error, one per line. */
export class KubefileSyntaxError extends Error {
  readonly errors: readonly KubefileError[];
  readonly warnings: readonly KubefileWarning[];

  constructor(errors: readonly KubefileError[], warnings: readonly KubefileWarning[] = []) {
    const file = errors[0]?.file ?? "Kubefile";
    const head = errors.length === 1 ? `${file} is invalid` : `${file} is invalid (${errors.length} errors)`;
    // A binary file given as a Kubefile is an error on every line: the first ones say enough.
    const shown = errors.slice(0, MAX_ERRORS_SHOWN).map((e) => `  ${formatKubefileError(e)}`);
    if (errors.length > MAX_ERRORS_SHOWN) shown.push(`  ... and ${errors.length - MAX_ERRORS_SHOWN} more`);
    super(`${head}:\n${shown.join("\n")}`);
    this.name = "KubefileSyntaxError";
    this.errors = errors;
    this.warnings = warnings;
  }
}

/**
 * An error about the instruction being parsed, thrown by the instruction parsers; the parse loop
 * catches it and attaches file and line. Internal: callers see `KubefileError`s.
 */
export class LineError extends Error {}

/** `"a", "b"`: names as they appear in messages. */
export function quoteList(xs: readonly string[]): string {
  return xs.map((x) => `"${x}"`).join(", ");
}
