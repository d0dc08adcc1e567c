#!/usr/bin/env node
/**
 * Import graph checker (plain Node, no dependencies).
 *
 * Reads every src/**\/*.ts file, resolves its relative imports (and "sealant/..." self
 * references) to files under src/, and reports
 *   1. circles: strongly connected components of more than one file (or a file importing itself);
 *   2. imports going up a floor (see FLOORS; a module may import its own floor or any floor below);
 *   3. imports of engine/sandbox from anywhere but the CLI's sandbox command (DESIGN.md: nothing
 *      imports sandbox except tests, benchmarks, the demo and that command).
 * `import type` counts like any other import: a type-only cycle is still a knot in the design.
 *
 * Exits 1 when it finds anything not listed in --allow FILE (a JSON array of the exact finding
 * lines to tolerate), 0 otherwise. `--json` prints { circles, upward, sandbox, allowed } instead.
 *
 * Usage: node scripts/import-graph.js [--root DIR] [--allow FILE] [--json]
 */
"use strict";

const fs = require("node:fs");
const path = require("node:path");

/**
 * Floors, bottom to top (DESIGN.md "Layers", and the code: session.ts opens the image store and
 * registry clients that build and cluster use). A file may import from its own floor or lower.
 * The first matching prefix wins; paths are relative to src/ without extension.
 */
const FLOORS = [
  { floor: 0, name: "engine/util", prefixes: ["engine/util/"] },
  { floor: 1, name: "engine/image, engine/ssh", prefixes: ["engine/image/", "engine/ssh/"] },
  { floor: 2, name: "engine/session", prefixes: ["engine/session"] },
  { floor: 3, name: "engine/build, engine/sandbox, engine/cluster", prefixes: ["engine/build/", "engine/sandbox/", "engine/cluster/"] },
  { floor: 4, name: "provider, cli", prefixes: ["provider/", "cli/"] },
  { floor: 5, name: "constructs", prefixes: ["constructs/"] },
  { floor: 6, name: "index (package entry)", prefixes: ["index"] },
];

/** Only these may import engine/sandbox (within src/). */
const SANDBOX_IMPORTERS = ["cli/commands/sandbox"];

function floorOf(mod) {
  for (const f of FLOORS) if (f.prefixes.some((p) => mod === p || mod.startsWith(p))) return f;
  return undefined;
}

function listTs(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listTs(p));
    else if (e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) out.push(p);
  }
  return out.sort();
}

/** Module specifiers of every import/export-from/require/import() in the text (comments stripped). */
function specifiers(text) {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
  const out = new Set();
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^;"'`]*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\brequire\(\s*["']([^"']+)["']\s*\)/g,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.add(m[1]);
  return [...out];
}

/** Resolves a specifier to a module id (src-relative, no extension), or undefined if outside src. */
function resolve(srcDir, fromFile, spec, files) {
  let base;
  if (spec.startsWith(".")) base = path.resolve(path.dirname(fromFile), spec);
  else if (spec === "sealant" || spec.startsWith("sealant/")) base = path.join(srcDir, spec.slice("sealant".length));
  else return undefined;
  for (const cand of [base + ".ts", path.join(base, "index.ts"), base.replace(/\.js$/, ".ts")]) {
    if (files.has(cand)) return toMod(srcDir, cand);
  }
  return undefined;
}

function toMod(srcDir, file) {
  return path.relative(srcDir, file).split(path.sep).join("/").replace(/\.ts$/, "");
}

/** Tarjan's strongly connected components; returns components with more than one node or a self-loop. */
function circles(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const out = [];
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? new Set()).has(v)) out.push(comp.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) strong(v);
  return out.sort((a, b) => a[0].localeCompare(b[0]));
}

function analyse(root) {
  const srcDir = path.join(root, "src");
  const fileList = listTs(srcDir);
  const files = new Set(fileList);
  const graph = new Map();
  for (const file of fileList) {
    const from = toMod(srcDir, file);
    const deps = new Set();
    for (const spec of specifiers(fs.readFileSync(file, "utf8"))) {
      const to = resolve(srcDir, file, spec, files);
      if (to !== undefined) deps.add(to);
    }
    graph.set(from, deps);
  }
  const upward = [];
  const sandbox = [];
  const unplaced = [];
  for (const [from, deps] of graph) {
    const ff = floorOf(from);
    if (!ff) unplaced.push(from);
    for (const to of deps) {
      const tf = floorOf(to);
      if (ff && tf && tf.floor > ff.floor) upward.push(`up a floor: ${from} (${ff.name}) -> ${to} (${tf.name})`);
      if (to.startsWith("engine/sandbox/") && !from.startsWith("engine/sandbox/") && !SANDBOX_IMPORTERS.includes(from)) {
        sandbox.push(`sandbox import: ${from} -> ${to}`);
      }
    }
  }
  const circ = circles(graph).map((c) => `circle: ${c.join(" <-> ")}`);
  const unplacedLines = unplaced.map((m) => `no floor: ${m}`);
  return { files: fileList.length, circles: circ, upward: upward.sort(), sandbox: sandbox.sort(), unplaced: unplacedLines };
}

function main(argv) {
  let root = path.resolve(__dirname, "..");
  let allowFile;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--root") root = path.resolve(argv[++i]);
    else if (argv[i] === "--allow") allowFile = argv[++i];
    else if (argv[i] === "--json") json = true;
    else {
      process.stderr.write(`import-graph: unknown argument ${argv[i]}\nusage: node scripts/import-graph.js [--root DIR] [--allow FILE] [--json]\n`);
      return 2;
    }
  }
  const allow = new Set(allowFile ? JSON.parse(fs.readFileSync(allowFile, "utf8")) : []);
  const r = analyse(root);
  const all = [...r.circles, ...r.upward, ...r.sandbox, ...r.unplaced];
  const bad = all.filter((l) => !allow.has(l));
  const allowed = all.filter((l) => allow.has(l));
  if (json) {
    process.stdout.write(JSON.stringify({ ...r, allowed, failures: bad }, null, 2) + "\n");
  } else {
    for (const l of bad) process.stdout.write(l + "\n");
    for (const l of allowed) process.stdout.write(`allowed: ${l}\n`);
    process.stdout.write(`import-graph: ${r.files} files, ${bad.length} finding(s)${allowed.length ? `, ${allowed.length} allowed` : ""}\n`);
  }
  return bad.length > 0 ? 1 : 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));

module.exports = { analyse, specifiers, circles, FLOORS };
