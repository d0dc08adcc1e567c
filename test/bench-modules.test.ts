import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const BENCH = resolve(__dirname, "../bench");

/** Every `.js` file under bench/, recursively. */
async function benchFiles(dir = BENCH): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name.startsWith(".")) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await benchFiles(p)));
    else if (e.name.endsWith(".js")) out.push(p);
  }
  return out;
}

/**
 * The benchmarks are not run in CI (they take minutes and want a quiet machine), so a module
 * they load from the build moving elsewhere would go unseen until someone runs `npm run bench`:
 * every relative `require(...)` in bench/ must resolve (dist/ is built by setup).
 */
describe("the benchmarks' own requires", () => {
  it("every relative require in bench/ resolves to a file of the build or of bench/", async () => {
    const missing: string[] = [];
    let count = 0;
    for (const file of await benchFiles()) {
      const text = await readFile(file, "utf8");
      for (const m of text.matchAll(/require\("(\.{1,2}\/[^"]+)"\)/g)) {
        count++;
        const target = resolve(dirname(file), m[1]!);
        if (![target, `${target}.js`, join(target, "index.js")].some((p) => existsSync(p))) missing.push(`${file.slice(BENCH.length + 1)}: ${m[1]}`);
      }
    }
    expect(count).toBeGreaterThan(10);
    expect(missing).toEqual([]);
  });
});
