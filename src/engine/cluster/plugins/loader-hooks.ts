/**
 * Hooks into Node's loader for the modules sealant loads as plugins (installed once per
 * process, on the first load):
 *
 * - TypeScript plugin packages installed into node_modules. Node 22 strips types from .ts files
 *   it loads, except under node_modules (packages are expected to ship JavaScript). A plugin
 *   package may ship its TypeScript as it is: its types are stripped the same way (Node's own
 *   stripTypeScriptTypes, erasable syntax only), for it and what it imports.
 * - `sealant` and `sealant/plugin` where they do not resolve: a plugin kept outside any project
 *   and linked into a program (`npm install ../my-plugin`) resolves its imports from where it
 *   really is, with no sealant there. It then gets the API of the sealant that runs it.
 */
import { readFileSync } from "node:fs";
import * as nodeModule from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

type Next = (specifierOrUrl: string, context: unknown) => { url?: string };

interface HooksApi {
  registerHooks?(hooks: {
    resolve(specifier: string, context: unknown, next: Next): unknown;
    load(url: string, context: unknown, next: (url: string, context: unknown) => unknown): unknown;
  }): unknown;
  stripTypeScriptTypes?(code: string): string;
}

/** sealant's own entry points, for plugins that cannot find sealant where they are. */
const OWN = new Set(["sealant", "sealant/plugin"]);

/** The file a specifier names in this sealant: its package resolves its own name (package.json exports). */
function ownFile(specifier: string): string {
  return require.resolve(specifier, { paths: [__dirname] });
}

let installed = false;

export function installPluginHooks(): void {
  const api = nodeModule as unknown as HooksApi;
  if (installed || !api.registerHooks || !api.stripTypeScriptTypes) return;
  installed = true;
  const strip = api.stripTypeScriptTypes.bind(api);
  api.registerHooks({
    resolve(specifier, context, next) {
      try {
        return next(specifier, context);
      } catch (err) {
        if (!OWN.has(specifier)) throw err;
        return { url: pathToFileURL(ownFile(specifier)).href, shortCircuit: true };
      }
    },
    load(url, context, next) {
      if (!url.startsWith("file:") || !url.includes("/node_modules/") || !/\.[cm]?ts$/.test(url)) return next(url, context);
      const path = fileURLToPath(url);
      return { format: formatOf(path), source: quietly(() => strip(readFileSync(path, "utf8"))), shortCircuit: true };
    },
  });
}

/** What Node would take the file for: .mts/.cts by name, .ts by its package's "type". */
function formatOf(path: string): "module" | "commonjs" {
  if (path.endsWith(".mts")) return "module";
  if (path.endsWith(".cts")) return "commonjs";
  for (let dir = dirname(path); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { type?: unknown };
      return pkg.type === "module" ? "module" : hasModuleSyntax(readFileSync(path, "utf8")) ? "module" : "commonjs";
    } catch {
      continue;
    }
  }
  return "commonjs";
}

/** Node's own rule for a file of no declared type: import/export statements make it an ES module. */
function hasModuleSyntax(source: string): boolean {
  return /^\s*(import\s|import\{|export\s|export\{)/m.test(source);
}

/** stripTypeScriptTypes warns that it is experimental, once per process, on stderr: not the user's concern here. */
function quietly<T>(fn: () => T): T {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (String(warning).includes("stripTypeScriptTypes")) return;
    (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return fn();
  } finally {
    process.emitWarning = emit;
  }
}
