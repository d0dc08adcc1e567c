import { formatKubefileError, parseKubefile, type Instruction, type Kubefile, type ParseKubefileOptions } from "../../../../src/engine/build/kubefile";

/** Lines joined with "\n", so tests can write one instruction per array item. */
export const kf = (...lines: string[]): string => lines.join("\n") + "\n";

/** Parse and expect success; a failure shows every formatted error. */
export function ok(text: string, opts: ParseKubefileOptions = {}): Kubefile {
  const r = parseKubefile(text, opts);
  if (!r.ok) throw new Error(`expected the Kubefile to parse, got:\n${r.errors.map(formatKubefileError).join("\n")}`);
  return r.kubefile;
}

/** Parse and expect failure; returns the formatted errors (`Kubefile:3: ...`). */
export function errs(text: string, opts: ParseKubefileOptions = {}): string[] {
  const r = parseKubefile(text, opts);
  if (r.ok) throw new Error("expected the Kubefile to be rejected, but it parsed");
  return r.errors.map(formatKubefileError);
}

/** The only instruction of a kind. */
export function only<K extends Instruction["kind"]>(k: Kubefile, kind: K): Extract<Instruction, { kind: K }> {
  const found = k.instructions.filter((i): i is Extract<Instruction, { kind: K }> => i.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0];
}

/** Warning messages, formatted. */
export const warnings = (k: Kubefile): string[] => k.warnings.map(formatKubefileError);
