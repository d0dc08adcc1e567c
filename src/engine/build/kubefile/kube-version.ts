/**
 * KUBEVERSION's value: a semantic-version range in the constraint syntax of the Go semver library
 * sealer's ecosystem uses (github.com/Masterminds/semver) and npm's node-semver alike:
 * alternatives joined by `||`, each a hyphen range (`1.22 - 1.24`) or comparators joined by blanks
 * or commas (`>=1.22, <1.25`), a comparator being an optional operator (`=`, `!=`, `>`, `<`,
 * `>=`, `<=`, `=<`, `~`, `~>`, `^`) and a version (`v` optional, missing or `x`/`X`/`*` parts
 * allowed: `1.22`, `1.22.x`, `*`, `1.24.0-rc.1`). sealer writes it as the image's
 * supported-kube-version label and nothing checks it at build time, so a typo would only surface
 * when some tool later reads the label: it is checked here instead.
 */

const PART = "(?:0|[1-9]\\d*|[xX*])";
const IDENT = "[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*";
const VERSION = `v?${PART}(?:\\.${PART}(?:\\.${PART}(?:-${IDENT})?(?:\\+${IDENT})?)?)?`;
const COMPARATOR = new RegExp(`^(?:!=|>=|<=|=<|~>|[=<>~^])?\\s*${VERSION}$`);
const HYPHEN = new RegExp(`^(${VERSION})\\s+-\\s+(${VERSION})$`);

/** Why `text` is not a version range, or undefined when it is one. */
export function kubeVersionRangeProblem(text: string): string | undefined {
  const sets = text.split("||").map((s) => s.trim());
  for (const set of sets) {
    if (set === "") return "an empty alternative around ||";
    if (HYPHEN.test(set)) continue;
    // Operators may be separated from their version by blanks (">= 1.22"): join them first.
    const comparators = set
      .replace(/(!=|>=|<=|=<|~>|[=<>~^])\s+/g, "$1")
      .split(/\s*,\s*|\s+/)
      .filter((c) => c !== "");
    const bad = comparators.find((c) => !COMPARATOR.test(c));
    if (bad !== undefined) return `"${bad}" is not a version or a comparison with one`;
  }
  return undefined;
}
