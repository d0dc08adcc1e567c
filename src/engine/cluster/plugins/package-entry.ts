import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/** Conditions an `import` of a plugin package matches, in Node's order of preference for this use. */
const CONDITIONS = ["import", "node", "default"];

/**
 * The file `import "pkg"` (or `pkg/sub`) loads from `baseDir`: the package found in node_modules
 * from there up, its `exports` read with the import conditions (`require` resolution refuses a
 * package that exports for `import` only). Undefined when there is no such package or entry.
 */
export function importEntryOf(specifier: string, baseDir: string): string | undefined {
  const parts = specifier.split("/");
  const nameParts = specifier.startsWith("@") ? 2 : 1;
  const name = parts.slice(0, nameParts).join("/");
  const subpath = parts.length > nameParts ? `./${parts.slice(nameParts).join("/")}` : ".";
  for (let dir = resolve(baseDir); ; dir = dirname(dir)) {
    const root = join(dir, "node_modules", name);
    if (existsSync(join(root, "package.json"))) {
      const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { exports?: unknown };
      const target = pick(entryFor(pkg.exports, subpath));
      return target === undefined ? undefined : realpathSync(resolve(root, target));
    }
    if (dir === dirname(dir)) return undefined;
  }
}

/** The exports entry for a subpath: a map keyed by "./x", or (for ".") the conditions themselves. */
function entryFor(exports: unknown, subpath: string): unknown {
  if (typeof exports !== "object" || exports === null || Array.isArray(exports)) return subpath === "." ? exports : undefined;
  const byPath = Object.keys(exports).some((k) => k.startsWith("."));
  if (!byPath) return subpath === "." ? exports : undefined;
  return (exports as Record<string, unknown>)[subpath];
}

function pick(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return v.map(pick).find((x) => x !== undefined);
  if (typeof v === "object" && v !== null) {
    for (const c of CONDITIONS) if (c in v) return pick((v as Record<string, unknown>)[c]);
  }
  return undefined;
}
