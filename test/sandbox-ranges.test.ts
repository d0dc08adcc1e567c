import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * Test files run in parallel, each with sandbox hosts at fixed numbers (127.0.10.N): two files
 * whose ranges overlap fail at random, whenever CI happens to run them at the same moment
 * ("127.0.10.N already in use"). This reads every test file's sandbox calls and refuses overlaps
 * between files. A call refused before it starts anything (`expect(sandboxUp(...)).rejects`, a usage
 * error, or one marked `starts no host` in a comment) counts for nothing.
 */
const ROOT = join(__dirname, "..");

interface Range {
  file: string;
  first: number;
  last: number;
  line: number;
}

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name === "node_modules" || name === "fixtures") return [];
    return statSync(p).isDirectory() ? testFiles(p) : /\.ts$/.test(name) ? [p] : [];
  });
}

/** The text of a call's arguments: from its "(" at `open` to the matching ")". */
function callArgs(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === "(") depth++;
    else if (text[i] === ")" && --depth === 0) return text.slice(open + 1, i);
  }
  return text.slice(open + 1);
}

function lineOf(text: string, index: number): number {
  return text.slice(0, index).split("\n").length;
}

/** The fixed host ranges a file starts, and its calls that pick numbers themselves. */
export function sandboxRanges(file: string, text: string): { ranges: Range[]; unpinned: Range[] } {
  const consts = new Map([...text.matchAll(/const (\w+) = (\d+);/g)].map((m) => [m[1]!, Number(m[2])]));
  const num = (v: string): number | undefined => (/^\d+$/.test(v) ? Number(v) : consts.get(v));
  const ranges: Range[] = [];
  const unpinned: Range[] = [];
  // Refused before anything starts: inside expect(...).rejects or usage([...]), or marked so on the line or the one before.
  const lines = text.split("\n");
  const refused = (at: number) => {
    const n = lineOf(text, at);
    return /(expect\(\s*|usage\(\["sandbox",\s*)$/.test(text.slice(Math.max(0, at - 40), at)) || /starts no host/.test(`${lines[n - 2] ?? ""}${lines[n - 1]}`);
  };
  const add = (at: number, count: number, first: number | undefined) => {
    if (refused(at)) return;
    const r = { file, first: first ?? 1, last: (first ?? 1) + count - 1, line: lineOf(text, at) };
    (first === undefined ? unpinned : ranges).push(r);
  };
  for (const m of text.matchAll(/openBed\((\d+),\s*(\w+)/g)) add(m.index, Number(m[1]), num(m[2]!));
  for (const m of text.matchAll(/sandboxUp\((\w+)(?: \+ (\d+))?,/g)) {
    const args = callArgs(text, m.index + "sandboxUp".length);
    if (/kubernetes:\s*(true|\{)/.test(args)) continue; // Kubernetes hosts live on their own network
    const first = /firstIndex:\s*(\w+)/.exec(args);
    const count = num(m[1]!);
    if (count === undefined) continue; // a helper's own parameter (test/support)
    add(m.index, count + Number(m[2] ?? 0), first ? num(first[1]!) : undefined);
  }
  for (const m of text.matchAll(/"up",\s*"(\d+)",([^\]]*)\]/g)) {
    if (/"--kubernetes"/.test(m[2]!)) continue;
    const first = /"--first-index",\s*"(\d+)"/.exec(m[2]!);
    add(m.index, Number(m[1]), first ? Number(first[1]) : undefined);
  }
  // Hosts added to a running sandbox are numbered after its highest one.
  for (const m of text.matchAll(/sandboxAdd\([^,]+,\s*(\d+)|"add",\s*"(\d+)",\s*"--name"/g)) {
    const last = ranges.filter((r) => r.line < lineOf(text, m.index)).pop();
    if (last && !refused(m.index)) ranges.push({ ...last, first: last.last + 1, last: last.last + Number(m[1] ?? m[2]), line: lineOf(text, m.index) });
  }
  return { ranges, unpinned };
}

describe("sandbox host numbers of the test files", () => {
  // The benchmarks' beds too: a bench run beside the tests must not take their hosts.
  const benchFiles = readdirSync(join(ROOT, "bench"))
    .filter((n) => n.endsWith(".js"))
    .map((n) => join(ROOT, "bench", n));
  const all = [...testFiles(join(ROOT, "test")), ...benchFiles].map((f) => sandboxRanges(relative(ROOT, f), readFileSync(f, "utf8")));
  const ranges = all.flatMap((a) => a.ranges);

  it("reads the calls it should (a sample of known ones)", () => {
    expect(ranges.length).toBeGreaterThan(30);
    expect(ranges).toContainEqual(expect.objectContaining({ file: "test/engine/cluster/e2e/etcd.test.ts", first: 151, last: 155 }));
    const sample = sandboxRanges(
      "x.ts",
      "const FIRST = 7;\nawait openBed(2, FIRST);\nawait sandboxAdd(sb, 2);\nawait expect(sandboxUp(1, { firstIndex: 8 })).rejects.toThrow();\n",
    );
    expect(sample.ranges.map((r) => [r.first, r.last])).toEqual([
      [7, 8],
      [9, 10],
    ]);
  });

  // (the benchmarks run one after another: they may share a bed)
  it("no two files use the same host number", () => {
    const clashes: string[] = [];
    for (const a of ranges)
      for (const b of ranges)
        if (a.file < b.file && !(a.file.startsWith("bench/") && b.file.startsWith("bench/")) && a.first <= b.last && b.first <= a.last)
          clashes.push(`${a.file}:${a.line} (${a.first}-${a.last}) and ${b.file}:${b.line} (${b.first}-${b.last})`);
    expect(clashes).toEqual([]);
  });

  it("every sandbox a test starts has fixed numbers (one that picks its own can take another file's)", () => {
    expect(all.flatMap((a) => a.unpinned.map((r) => `${r.file}:${r.line}`))).toEqual([]);
  });
});
