import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const SCRIPT = resolve(__dirname, "../scripts/import-graph.js");

interface Report {
  files: number;
  circles: string[];
  upward: string[];
  sandbox: string[];
  unplaced: string[];
  failures: string[];
}

async function check(root?: string): Promise<{ code: number; report: Report }> {
  const args = [SCRIPT, "--json", ...(root ? ["--root", root] : [])];
  try {
    const { stdout } = await run(process.execPath, args);
    return { code: 0, report: JSON.parse(stdout) as Report };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    if (typeof e.code !== "number" || !e.stdout) throw err;
    return { code: e.code, report: JSON.parse(e.stdout) as Report };
  }
}

const dirs: string[] = [];
async function tree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "import-graph-"));
  dirs.push(root);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, "src", path)), { recursive: true });
    await writeFile(join(root, "src", path), text);
  }
  return root;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("import graph of src/", () => {
  it("has no circles, no import up a floor and no stray sandbox import", async () => {
    // GIVEN the project's sources WHEN the checker runs
    const { report } = await check();
    // THEN it read them all and found nothing
    expect(report.files).toBeGreaterThan(100);
    expect(report.failures).toEqual([]);
  });
});

describe("import-graph checker", () => {
  it("passes a tree whose imports only go down", async () => {
    // GIVEN util <- image <- build, type imports and an index re-export
    const root = await tree({
      "engine/util/a.ts": `export const a = 1;\n`,
      "engine/image/b.ts": `import { a } from "../util/a";\nexport const b = a;\n`,
      "engine/image/index.ts": `export * from "./b";\n`,
      "engine/build/c.ts": `import type { b } from "../image";\nimport { a } from "../util/a";\nexport const c: typeof b = a;\n`,
    });
    // WHEN checked THEN nothing is found and it exits 0
    const { code, report } = await check(root);
    expect(report.failures).toEqual([]);
    expect(code).toBe(0);
  });

  it("reports a circle, even through type-only imports, and exits 1", async () => {
    // GIVEN two files that import each other (one of them only a type)
    const root = await tree({
      "engine/image/x.ts": `import type { Y } from "./y";\nexport type X = Y | 1;\n`,
      "engine/image/y.ts": `import { z } from "./x";\nexport type Y = 2;\n`,
    });
    // WHEN checked THEN the strongly connected component is named
    const { code, report } = await check(root);
    expect(report.circles).toEqual(["circle: engine/image/x <-> engine/image/y"]);
    expect(code).toBe(1);
  });

  it("reports an import up a floor, and an engine module importing the sandbox", async () => {
    // GIVEN util importing image, and build importing the sandbox; the CLI's sandbox command may
    const root = await tree({
      "engine/image/digest.ts": `export type Digest = string;\n`,
      "engine/util/h.ts": `import type { Digest } from "../image/digest";\nexport let d: Digest;\n`,
      "engine/sandbox/index.ts": `export const s = 1;\n`,
      "engine/build/b.ts": `import { s } from "../sandbox";\nexport const b = s;\n`,
      "cli/commands/sandbox.ts": `import { s } from "../../engine/sandbox";\nexport const c = s;\n`,
    });
    // WHEN checked
    const { code, report } = await check(root);
    // THEN both are named with their floors, and the CLI command is not
    expect(report.upward).toEqual(["up a floor: engine/util/h (engine/util) -> engine/image/digest (engine/image, engine/ssh)"]);
    expect(report.sandbox).toEqual(["sandbox import: engine/build/b -> engine/sandbox/index"]);
    expect(code).toBe(1);
  });

  it("ignores imports written in comments and strings of other shapes", async () => {
    // GIVEN a file that mentions an upward import only in a comment
    const root = await tree({
      "engine/image/p.ts": `export const p = 1;\n`,
      "engine/util/q.ts": `// import { p } from "../image/p";\n/* require("../image/p") */\nexport const q = 2;\n`,
    });
    // WHEN checked THEN nothing is found
    const { code, report } = await check(root);
    expect(report.failures).toEqual([]);
    expect(code).toBe(0);
  });
});
