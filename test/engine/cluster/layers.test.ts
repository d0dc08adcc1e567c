import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The floors of src/engine/cluster, lowest first: a module imports modules of its own floor or
 * below, never above, and no import circle closes anywhere. Files directly in
 * src/engine/cluster are the top floor (opening a cluster, the actions, the public API).
 */
const ROOT = resolve(__dirname, "../../../src/engine/cluster");
const TOP = 4;
// backup/: actions like apply and reset (it runs apply to restore onto new hosts), so the top floor.
// plugins/: loading and describing the user's plugin modules (their runs are a step kind, steps/plugin-module.ts).
const FLOORS: Record<string, number> = { spec: 0, plan: 0, runtime: 1, plugins: 1, host: 2, state: 2, steps: 3, backup: TOP };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : name.endsWith(".ts") ? [path] : [];
  });
}

function resolveImport(from: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  const base = resolve(dirname(from), spec);
  for (const candidate of [`${base}.ts`, join(base, "index.ts")]) if (existsSync(candidate)) return candidate;
  throw new Error(`${relative(ROOT, from)}: cannot resolve ${spec}`);
}

/** Every module in src/engine/cluster → the modules in src/engine/cluster it imports (types too). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files(ROOT)) {
    const text = readFileSync(file, "utf8");
    const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"/g), ...text.matchAll(/import\(\s*"([^"]+)"\s*\)/g)].map(
      (m) => m[1]!,
    );
    const targets = specs.map((s) => resolveImport(file, s)).filter((t): t is string => t !== undefined && t.startsWith(`${ROOT}/`));
    graph.set(relative(ROOT, file), [...new Set(targets.map((t) => relative(ROOT, t)))]);
  }
  return graph;
}

function floorOf(module: string): number {
  const dir = module.split("/")[0]!;
  if (!module.includes("/")) return TOP;
  const floor = FLOORS[dir];
  if (floor === undefined) throw new Error(`${module}: a directory with no floor (add it to FLOORS)`);
  return floor;
}

function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (m: string): void => {
    state.set(m, "open");
    stack.push(m);
    for (const next of graph.get(m) ?? []) {
      if (state.get(next) === "open") found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(m, "done");
  };
  for (const m of [...graph.keys()].sort()) if (!state.has(m)) visit(m);
  return found;
}

describe("the floors of src/engine/cluster", () => {
  const graph = importGraph();

  it("GIVEN the source tree WHEN read THEN every module and its imports are seen", () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get("steps/index.ts")).toContain("steps/join.ts");
    expect(graph.get("apply.ts")).toContain("open.ts");
  });

  it("GIVEN every module WHEN its imports are followed THEN no circle closes", () => {
    expect(cycles(graph).map((c) => c.join(" -> "))).toEqual([]);
  });

  it("GIVEN every import WHEN the floors are compared THEN none goes up a floor", () => {
    const up = [...graph].flatMap(([m, targets]) => targets.filter((t) => floorOf(t) > floorOf(m)).map((t) => `${m} -> ${t}`));
    expect(up).toEqual([]);
  });

  it("GIVEN the pure planner WHEN its imports are listed THEN it needs nothing but plan/", () => {
    const outside = [...graph]
      .filter(([m]) => m.startsWith("plan/"))
      .flatMap(([m, targets]) => targets.filter((t) => !t.startsWith("plan/")).map((t) => `${m} -> ${t}`));
    expect(outside).toEqual([]);
  });
});
