import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPlugins, withModuleDefaults } from "../../../../src/engine/cluster/plugins/load";
import { PluginError } from "../../../../src/engine/cluster/plugins/errors";
import { pluginSchema, type PluginSpec } from "../../../../src/engine/cluster/spec/schema";

const ROOT = resolve(__dirname, "../../../..");

/** A Plugin document as the spec parses it. */
const doc = (v: Record<string, unknown>): PluginSpec => pluginSchema.parse({ name: "p", type: "MODULE", ...v });

describe("loading MODULE plugins (Node's own import: TypeScript by type stripping, packages from node_modules)", () => {
  let dir: string;
  let outside: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sealant-plugins-"));
    await mkdir(join(dir, "plugins"));
    await mkdir(join(dir, "node_modules/@acme/sealant-notify"), { recursive: true });
    // The program's node_modules has sealant (as npm install would) and the plugin package.
    await symlink(ROOT, join(dir, "node_modules/sealant"));
    await writeFile(
      join(dir, "plugins/notify.ts"),
      `import { definePlugin } from "sealant/plugin";
interface Config { channel: string }
export default definePlugin<Config>({
  name: "notify",
  phases: ["post-install", "post-scaleup"],
  idempotent: true,
  describe: (ctx) => \`tell \${ctx.config.channel} about \${ctx.cluster.name}\`,
  async run(): Promise<void> {},
});
`,
    );
    await writeFile(
      join(dir, "node_modules/@acme/sealant-notify/package.json"),
      JSON.stringify({ name: "@acme/sealant-notify", version: "1.2.3", main: "index.js" }),
    );
    await writeFile(
      join(dir, "node_modules/@acme/sealant-notify/index.js"),
      `module.exports = { plugin: { name: "n", phases: ["post-init-host"], scope: ["master"], idempotent: false, run() {} } };`,
    );
    // A package that ships TypeScript, copied into node_modules as npm installs a tarball (Node itself refuses to strip types there).
    await mkdir(join(dir, "node_modules/sealant-plugin-ts/lib"), { recursive: true });
    await writeFile(
      join(dir, "node_modules/sealant-plugin-ts/package.json"),
      JSON.stringify({ name: "sealant-plugin-ts", version: "0.3.0", type: "module", main: "index.ts" }),
    );
    await writeFile(
      join(dir, "node_modules/sealant-plugin-ts/lib/phases.ts"),
      `import type { PluginPhase } from "sealant/plugin";\nexport const phases: PluginPhase[] = ["upgrade-host"];\n`,
    );
    await writeFile(
      join(dir, "node_modules/sealant-plugin-ts/index.ts"),
      `import { definePlugin, type PluginContext } from "sealant/plugin";\nimport { phases } from "./lib/phases.ts";\nconst run = async (_ctx: PluginContext): Promise<void> => {};\nexport default definePlugin({ name: "ts-package", phases, idempotent: true, run });\n`,
    );
    // An ES-module-only package (exports for import only), and one kept outside any project, linked in as `npm install ../dir` does.
    await mkdir(join(dir, "node_modules/esm-only"), { recursive: true });
    await writeFile(
      join(dir, "node_modules/esm-only/package.json"),
      JSON.stringify({ name: "esm-only", version: "2.0.0", type: "module", exports: { ".": { import: "./main.js" } } }),
    );
    await writeFile(
      join(dir, "node_modules/esm-only/main.js"),
      `export const plugin = { name: "esm", phases: ["post-install"], idempotent: true, run() {} };\n`,
    );
    outside = await mkdtemp(join(tmpdir(), "sealant-plugin-outside-"));
    await writeFile(join(outside, "package.json"), JSON.stringify({ name: "linked", version: "0.0.1", type: "module", main: "index.ts" }));
    await writeFile(
      join(outside, "index.ts"),
      `import { definePlugin } from "sealant/plugin";\nexport default definePlugin({ name: "linked", phases: ["pre-install"], idempotent: true, run(): void {} });\n`,
    );
    await symlink(outside, join(dir, "node_modules/linked"));
    await writeFile(join(dir, "plugins/nothing.ts"), `export const x = 1;\n`);
    await writeFile(join(dir, "plugins/bad.ts"), `export default { name: "bad", phases: ["post-instal"], run: 3 };\n`);
    await writeFile(join(dir, "plugins/broken.ts"), `throw new Error("boom at load");\n`);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it("GIVEN a .ts path and a package WHEN loaded THEN each is found, versioned and pinned by digest; the module's phases and scope fill what the document leaves out", async () => {
    const specs = [doc({ name: "a", module: "./plugins/notify.ts", config: { channel: "#ops" } }), doc({ name: "b", module: "@acme/sealant-notify" })];
    const loaded = await loadPlugins(specs, dir);
    expect(loaded.get("a")!.definition.name).toBe("notify");
    expect(loaded.get("a")!.resolved.version).toBeUndefined();
    expect(loaded.get("b")!.resolved).toMatchObject({ version: "1.2.3", packageRoot: join(dir, "node_modules/@acme/sealant-notify") });
    expect(loaded.get("b")!.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(loaded.get("a")!.timeoutMs).toBe(600_000);
    const filled = withModuleDefaults({ plugins: specs }, loaded);
    expect(filled.plugins.map((p) => [p.action, p.scope])).toEqual([
      [["post-install", "post-scaleup"], undefined],
      [["post-init-host"], ["master"]],
    ]);
  });

  it("GIVEN a package shipping TypeScript sources inside node_modules WHEN loaded THEN its types are stripped as Node strips a program's own", async () => {
    const loaded = await loadPlugins([doc({ name: "t", module: "sealant-plugin-ts" })], dir);
    expect(loaded.get("t")!.definition).toMatchObject({ name: "ts-package", phases: ["upgrade-host"] });
    expect(loaded.get("t")!.resolved.version).toBe("0.3.0");
  });

  it("GIVEN an ES-module-only package and a package linked from outside any project (no sealant beside it) WHEN loaded THEN both load: the import entry, and the running sealant's API", async () => {
    const loaded = await loadPlugins([doc({ name: "e", module: "esm-only" }), doc({ name: "l", module: "linked" })], dir);
    expect(loaded.get("e")!.resolved).toMatchObject({ path: join(dir, "node_modules/esm-only/main.js"), version: "2.0.0" });
    expect(loaded.get("l")!.definition.name).toBe("linked");
  });

  it("GIVEN a pinned module WHEN its file changed since THEN it is refused, naming the plugin and module", async () => {
    const specs = [doc({ name: "a", module: "./plugins/notify.ts" })];
    const { digest } = (await loadPlugins(specs, dir)).get("a")!;
    const err = await loadPlugins(specs, dir, { a: { path: join(dir, "plugins/nothing.ts"), digest } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as Error).message).toMatch(/^plugin a \(module \.\/plugins\/notify\.ts\): the module changed since it was resolved/);
  });

  it.each([
    [{ module: "./plugins/missing.ts" }, /plugin p \(module \.\/plugins\/missing\.ts\): module not found: no file .*plugins\/missing\.ts/],
    [{ module: "@acme/nowhere" }, /plugin p \(module @acme\/nowhere\): module not found: no package @acme\/nowhere in node_modules/],
    [{ module: "./plugins/nothing.ts" }, /the module exports no plugin \(it exports x\): export default definePlugin/],
    [
      { module: "./plugins/bad.ts" },
      /the exported plugin has the wrong shape: phases\.0: .*; idempotent: idempotent must be true or false.*; run: run must be a function/,
    ],
    [{ module: "./plugins/broken.ts" }, /module .*broken\.ts failed to load: boom at load/],
    [
      { module: "./plugins/notify.ts", action: "pre-install" },
      /the document asks for phase pre-install, which the plugin notify does not run at \(it runs at post-install, post-scaleup\)/,
    ],
  ])("GIVEN %j WHEN loaded THEN one error says what is wrong", async (fields, message) => {
    const err = await loadPlugins([doc(fields)], dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as Error).message).toMatch(message);
  });
});
