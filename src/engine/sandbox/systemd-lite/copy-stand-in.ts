import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, extname, join } from "node:path";
import { standInSource } from "./files";

/** Module specifiers of import/export-from, side-effect imports and require() (compiled JavaScript). */
const SPECIFIER = /\b(?:from|import|require\()\s*["']([^"']+)["']/g;

/**
 * Copies the systemctl stand-in into a host's lib dir (`lib`, the machine's view of LIB_DIR): its
 * entry (systemctl.js, or systemctl.ts when sealant runs from its sources) and every sibling module
 * it imports, found by following the relative imports. A host has no node_modules, so the stand-in
 * may import only Node's built-ins and its siblings; anything else is refused here, at host start,
 * instead of failing inside the host. Node's type stripping resolves no extensions, so copies of
 * TypeScript sources get ".ts" on each relative import (compiled JavaScript needs no change:
 * require() finds "./x" as x.js). Stand-in files of the other flavour or of an older sealant are
 * removed, so the host runs exactly the modules of the sealant that starts it.
 */
export async function copyStandIn(lib: string): Promise<void> {
  const entry = standInSource();
  const modules = await standInModules(dirname(entry.file), entry.name);
  for (const f of await readdir(lib)) if (/\.[jt]s$/.test(f) && !modules.has(f)) await rm(join(lib, f), { force: true });
  for (const [name, text] of modules) await writeFile(join(lib, name), text, { mode: 0o644 });
}

/** The entry and the modules it reaches (file name -> the text to write into the host). */
async function standInModules(dir: string, entry: string): Promise<Map<string, string>> {
  const ext = extname(entry);
  const out = new Map<string, string>();
  const pending = [entry];
  while (pending.length) {
    const name = pending.pop()!;
    if (out.has(name)) continue;
    const text = (await readFile(join(dir, name), "utf8")).replace(SPECIFIER, (m, spec: string) => {
      if (spec.startsWith("node:")) return m;
      if (!/^\.\/[\w-]+$/.test(spec))
        throw new Error(
          `systemctl stand-in: ${join(dir, name)} imports "${spec}": inside a host only node: built-ins and sibling modules (./name) can be imported`,
        );
      pending.push(`${spec.slice(2)}${ext}`);
      return ext === ".ts" ? m.replace(spec, `${spec}.ts`) : m;
    });
    out.set(name, text);
  }
  return out;
}
