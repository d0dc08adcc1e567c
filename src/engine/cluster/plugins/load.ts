/**
 * Finding and loading a MODULE plugin: the module a Plugin document names, resolved the way
 * Node resolves it from the Clusterfile's directory (a path, or a package in node_modules),
 * loaded by Node itself (TypeScript too: Node 22 strips types), and checked for the shape
 * of plugins/api.ts. Each failure is one PluginError naming the document and the module.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import type { PluginSpec } from "../spec";
import { parsePluginScope, PLUGIN_ACTIONS } from "../spec/plugins";
import { parseDuration } from "../spec/validators";
import { PLUGIN_BRAND, type PluginDefinition } from "./api";
import { PluginError } from "./errors";
import { installPluginHooks } from "./loader-hooks";
import { importEntryOf } from "./package-entry";

/** Where a module was found: the file Node loads, and its package when it is one. */
export interface ResolvedModule {
  module: string;
  path: string;
  /** The package's root directory and version (a package; a path has neither). */
  packageRoot?: string;
  version?: string;
}

export interface LoadedPlugin {
  /** The Plugin document's name. */
  name: string;
  resolved: ResolvedModule;
  /** sha256 of the module's files: the package's (without node_modules), or the one file. */
  digest: string;
  definition: PluginDefinition;
  timeoutMs: number;
}

const DEFAULT_TIMEOUT_S = 600;

export function isPathModule(module: string): boolean {
  return module.startsWith("./") || module.startsWith("../") || module.startsWith("/");
}

/** Resolves a module the way `require` would from `baseDir` (a path relative to it, or a package in its node_modules or above). */
export function resolvePluginModule(name: string, module: string, baseDir: string): ResolvedModule {
  const isPath = isPathModule(module);
  let path: string;
  try {
    path = isPath ? resolveFile(resolve(baseDir, module)) : resolvePackage(module, baseDir);
  } catch {
    throw new PluginError(
      { plugin: name, module },
      isPath
        ? `module not found: no file ${resolve(baseDir, module)}`
        : `module not found: no package ${module} in node_modules from ${baseDir} up (npm install ${module} in the program's or the Clusterfile's directory)`,
    );
  }
  return resolvedAt(module, path);
}

/** As `require` resolves it; an ES-module-only package (exports with an import condition only) as `import` would. */
function resolvePackage(module: string, baseDir: string): string {
  try {
    return createRequire(join(baseDir, "noop.js")).resolve(module);
  } catch (err) {
    const entry = (err as NodeJS.ErrnoException).code === "ERR_PACKAGE_PATH_NOT_EXPORTED" ? importEntryOf(module, baseDir) : undefined;
    if (entry === undefined) throw err;
    return entry;
  }
}

function resolveFile(abs: string): string {
  for (const candidate of [abs, `${abs}.ts`, `${abs}.js`, `${abs}.mjs`, join(abs, "index.ts"), join(abs, "index.js")]) {
    if (statSync(candidate, { throwIfNoEntry: false })?.isFile()) return candidate;
  }
  throw new Error("not found");
}

/** The nearest directory above `file` with a package.json: the package's root. */
function packageRootOf(file: string): string | undefined {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
  }
  return undefined;
}

/** The digest that pins what runs: a package's files (its node_modules aside), or a lone file. */
export async function moduleDigest(r: ResolvedModule): Promise<string> {
  const hash = createHash("sha256");
  const files = r.packageRoot ? await filesUnder(r.packageRoot) : [r.path];
  for (const f of files.sort()) {
    hash.update(`${r.packageRoot ? f.slice(r.packageRoot.length) : "file"}\0`);
    hash.update(await readFile(f));
    hash.update("\0");
  }
  return `sha256:${hash.digest("hex")}`;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name === "node_modules" || e.name === ".git") continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/**
 * Node's own loader, not a bundler's rewrite of import(): `require` loads CommonJS and ES
 * modules alike (Node 22), and TypeScript by stripping its types. An ES module with top-level
 * await cannot be loaded this way (Node says so; the error names the module).
 */
function nativeLoad(path: string): Record<string, unknown> {
  installPluginHooks();
  return createRequire(path)(path) as Record<string, unknown>;
}

const definitionSchema = z.object({
  name: z.string().min(1),
  phases: z.array(z.enum(PLUGIN_ACTIONS)).min(1),
  scope: z.array(z.string().min(1)).optional(),
  idempotent: z.boolean({ error: "idempotent must be true or false: say whether running it again after a failure is safe" }),
  timeout: z.union([z.number(), z.string()]).optional(),
  describe: z.custom<(...a: unknown[]) => unknown>((v) => typeof v === "function", "describe must be a function").optional(),
  run: z.custom<(...a: unknown[]) => unknown>((v) => typeof v === "function", "run must be a function"),
});

/** Imports the module and finds its plugin (default export, `plugin`, or module.exports itself). */
export async function importPlugin(name: string, resolved: ResolvedModule): Promise<PluginDefinition> {
  const where = { plugin: name, module: resolved.module };
  let mod: Record<string, unknown>;
  try {
    mod = nativeLoad(resolved.path);
  } catch (err) {
    throw new PluginError(where, `module ${resolved.path} failed to load: ${(err as Error).message ?? String(err)}`);
  }
  const candidates = [mod["default"], (mod["default"] as Record<string, unknown> | undefined)?.["default"], mod["plugin"], mod];
  const found = candidates.find((c) => typeof c === "object" && c !== null && (PLUGIN_BRAND in c || ("run" in c && "phases" in c)));
  if (found === undefined) {
    const names = Object.keys(mod).filter((k) => k !== "__esModule");
    throw new PluginError(
      where,
      `the module exports no plugin (it exports ${names.length ? names.join(", ") : "nothing"}): export default definePlugin({ name, phases, idempotent, run }) from "sealant/plugin"`,
    );
  }
  const checked = definitionSchema.safeParse(found);
  if (!checked.success) {
    const problems = checked.error.issues.map((i) => `${i.path.length ? `${i.path.join(".")}: ` : ""}${i.message}`);
    throw new PluginError(where, `the exported plugin has the wrong shape: ${problems.join("; ")}`);
  }
  return found as PluginDefinition;
}

/** A module the caller resolved already (the Pulumi program, where node_modules is): loaded from `path`, refused when its files' digest is no longer `digest`. */
export interface PinnedModule {
  path: string;
  digest: string;
}

/** Loads every MODULE plugin of the spec; `pinned` (by document name) replaces resolving from `baseDir`. */
export async function loadPlugins(
  plugins: readonly PluginSpec[],
  baseDir: string,
  pinned: Readonly<Record<string, PinnedModule>> = {},
): Promise<Map<string, LoadedPlugin>> {
  const out = new Map<string, LoadedPlugin>();
  for (const p of plugins) {
    if (p.type !== "MODULE") continue;
    const where = { plugin: p.name, module: p.module! };
    const pin = pinned[p.name];
    const resolved = pin ? resolvedAt(p.module!, pin.path) : resolvePluginModule(p.name, p.module!, baseDir);
    if (pin && !existsSync(pin.path)) throw new PluginError(where, `module not found: no file ${pin.path} (it was resolved there before)`);
    const digest = await moduleDigest(resolved);
    if (pin && pin.digest !== digest)
      throw new PluginError(
        where,
        `the module changed since it was resolved (${pin.digest} then, ${digest} now at ${resolved.path}): preview again`,
        "module-changed",
      );
    const definition = await importPlugin(p.name, resolved);
    const problems = phaseProblems(p, definition);
    if (problems.length > 0) throw new PluginError(where, problems.join("; "));
    const timeout = p.timeout ?? (definition.timeout !== undefined ? parseDuration(definition.timeout) : DEFAULT_TIMEOUT_S);
    if (typeof timeout === "string") throw new PluginError(where, `the plugin's timeout: ${timeout}`);
    out.set(p.name, { name: p.name, resolved, digest, definition, timeoutMs: timeout * 1000 });
  }
  return out;
}

function resolvedAt(module: string, path: string): ResolvedModule {
  // A path's package is the program's own, not the plugin's: no version, the file is the digest.
  if (isPathModule(module)) return { module, path };
  const root = packageRootOf(path);
  const version = root ? (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: unknown }).version : undefined;
  return { module, path, ...(root ? { packageRoot: root } : {}), ...(typeof version === "string" ? { version } : {}) };
}

/** A document may narrow the module's phases, never add to them; the module's own scope must parse. */
function phaseProblems(p: PluginSpec, d: PluginDefinition): string[] {
  const out = p.action
    .filter((a) => !d.phases.includes(a))
    .map((a) => `the document asks for phase ${a}, which the plugin ${d.name} does not run at (it runs at ${d.phases.join(", ")})`);
  if (d.scope) out.push(...parsePluginScope(d.scope).problems.map((m) => `the plugin's scope: ${m}`));
  return out;
}

/** The spec's MODULE plugins with the module's phases and scope where the document names none. */
export function withModuleDefaults<T extends { plugins: PluginSpec[] }>(spec: T, loaded: ReadonlyMap<string, LoadedPlugin>): T {
  if (loaded.size === 0) return spec;
  return {
    ...spec,
    plugins: spec.plugins.map((p) => {
      const l = loaded.get(p.name);
      if (!l || p.type !== "MODULE") return p;
      const d = l.definition;
      return {
        ...p,
        action: p.action.length > 0 ? p.action : [...d.phases],
        ...(p.scope === undefined && d.scope ? { scope: parsePluginScope(d.scope).scope } : {}),
      };
    }),
  };
}
