import { KUBEFILE_INSTRUCTIONS } from "./instructions";

/** Docker instructions a Kubefile cannot use (sealer rejects them as unsupported commands). */
const DOCKERFILE_ONLY = new Set(["workdir", "user", "expose", "volume", "entrypoint", "onbuild", "healthcheck", "shell", "stopsignal"]);

const EXPECTED = KUBEFILE_INSTRUCTIONS.join(", ");

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

/** The Kubefile instruction closest to a misspelled word (at most two edits away). */
function suggest(word: string): string | undefined {
  // No instruction is within two edits of a long word; skip the quadratic table for it.
  if (word.length > 13) return undefined;
  const upper = word.toUpperCase();
  let best: string | undefined;
  let bestD = 3;
  for (const k of KUBEFILE_INSTRUCTIONS) {
    const dd = distance(upper, k);
    if (dd < bestD) {
      best = k;
      bestD = dd;
    }
  }
  return best;
}

/**
 * The error for a word that is no Kubefile instruction: a Dockerfile-only instruction is named as
 * such; anything else gets a "did you mean" when a known instruction is close.
 */
export function unknownInstructionMessage(word: string): string {
  const cmd = word.toLowerCase();
  const hint = suggest(word);
  const what = DOCKERFILE_ONLY.has(cmd) ? `${word.toUpperCase()} is a Dockerfile instruction that Kubefiles do not support` : `unknown instruction "${word}"`;
  return `${what} (expected one of ${EXPECTED})${hint !== undefined && !DOCKERFILE_ONLY.has(cmd) ? `; did you mean ${hint}?` : ""}`;
}
