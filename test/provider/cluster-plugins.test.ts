import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as impl from "../../src/provider/impl/cluster";
import type { ClusterInputs } from "../../src/provider/impl/cluster-inputs";
import { enginePluginModules, type PluginModulesInputs } from "../../src/provider/impl/cluster-plugins";
import { pluginModulesOf } from "../../src/provider/plugin-modules";

/*
 * The Cluster's MODULE plugins without an engine or hosts: what the program resolves and pins
 * (pluginModulesOf, as the Cluster class runs it), and what the provider's check and diff make
 * of it. A program directory of its own holds the fixture package (test/fixtures/pulumi-plugins,
 * linked into node_modules as npm's file: install does) and a plugin file of its own. The real
 * CLI's view of the same is test/e2e/pulumi/plugins.test.ts.
 */
const ROOT = resolve(__dirname, "../..");
const MODULE = "@fixture/sealant-marker";
const IMAGE = `example/tiny:1@sha256:${"a".repeat(64)}`;
const GREETING = "hello-s3cr3t";

const value = <T>(o: pulumi.Output<T>): Promise<T> => new Promise((done) => o.apply(done));

describe("MODULE plugins on the Cluster: resolved by the program, checked and diffed by the provider", () => {
  const saved = process.env.SEALANT_HOME;
  let home: string;
  let program: string;

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "sealant-plugins-"));
    process.env.SEALANT_HOME = join(home, "sealant");
    program = join(home, "program");
    await mkdir(join(program, "node_modules/@fixture"), { recursive: true });
    await cp(join(ROOT, "test/fixtures/pulumi-plugins/marker"), join(program, "packages/marker"), { recursive: true });
    await symlink(join(program, "packages/marker"), join(program, "node_modules", MODULE));
    await symlink(ROOT, join(program, "node_modules/sealant"));
    await mkdir(join(program, "plugins"));
    await writeFile(
      join(program, "plugins/notify.ts"),
      'import { definePlugin } from "sealant/plugin";\nexport default definePlugin({ name: "notify", phases: ["post-install"], idempotent: true, run() {} });\n',
    );
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.SEALANT_HOME;
    else process.env.SEALANT_HOME = saved;
    await rm(home, { recursive: true, force: true });
  });

  /** pluginModules as the program pins them, the paths made absolute (the provider under test runs elsewhere than the program's directory). */
  async function pinned(plugins: Parameters<typeof pluginModulesOf>[0]): Promise<PluginModulesInputs> {
    const modules = await value(pluginModulesOf(plugins, program)!);
    return Object.fromEntries(Object.entries(modules).map(([n, m]) => [n, m.path ? { ...m, path: join(program, m.path) } : m]));
  }

  const inputs = (plugins: ClusterInputs["plugins"], pluginModules?: PluginModulesInputs): ClusterInputs => ({
    name: "c",
    image: IMAGE,
    hosts: { "10.0.0.1": { roles: ["master"] }, "10.0.0.2": { roles: ["node"] } },
    ssh: { password: "pw" },
    plugins,
    ...(pluginModules ? { pluginModules } : {}),
  });

  it("GIVEN a package and a file WHEN the program resolves them THEN each is pinned by version and digest with its path relative to the program, not secret", async () => {
    const plugins = [
      { name: "marker", type: "MODULE" as const, module: MODULE, config: { greeting: pulumi.secret(GREETING) } },
      { name: "notify", type: "MODULE" as const, module: "./plugins/notify.ts" },
      { name: "script", action: "post-install", data: "true" },
    ];
    const out = pluginModulesOf(plugins, program)!;
    expect(await pulumi.isSecret(out)).toBe(false);
    expect(await value(out)).toEqual({
      marker: {
        module: MODULE,
        version: "1.0.0",
        digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
        path: "packages/marker/index.ts",
        secretConfig: true,
      },
      // A path's package is the program's own: no version, the file's digest.
      notify: { module: "./plugins/notify.ts", digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), path: "plugins/notify.ts" },
    });
    // The whole list as one secret output: the names and modules are read from it, the config counts as secret.
    const whole = await value(pluginModulesOf(pulumi.secret(plugins.slice(0, 1)), program)!);
    expect(whole["marker"]).toMatchObject({ module: MODULE, version: "1.0.0", secretConfig: true });
    expect(pluginModulesOf(undefined, program)).toBeUndefined();
  });

  it("GIVEN a module that cannot be found WHEN previewed THEN check fails with one message naming the plugin and the module", async () => {
    const plugins = [{ name: "marker", type: "MODULE" as const, module: "@fixture/no-such-plugin" }];
    const modules = await pinned(plugins);
    expect(modules["marker"]).toEqual({
      module: "@fixture/no-such-plugin",
      error: expect.stringContaining("plugin marker (module @fixture/no-such-plugin): module not found"),
    });
    const r = await impl.check(undefined, inputs(plugins, modules));
    expect(r.failures).toEqual([
      { property: "", reason: expect.stringMatching(/^plugin marker \(module @fixture\/no-such-plugin\): module not found: no package/) },
    ]);
    // A Cluster whose inputs were not made by the Cluster class: it says what resolves modules.
    const bare = await impl.check(undefined, inputs(plugins));
    expect(bare.failures).toEqual([
      { property: "", reason: expect.stringContaining("plugin marker (module @fixture/no-such-plugin): not resolved by the program") },
    ]);
  });

  it("GIVEN a MODULE plugin with a secret in its config WHEN previewed THEN the plan and pluginSteps show each step's host and describe() line, the secret redacted", async () => {
    const plugins = [{ name: "marker", type: "MODULE" as const, module: MODULE, config: { greeting: GREETING } }];
    const modules = await pinned([{ ...plugins[0]!, config: { greeting: pulumi.secret(GREETING) } }]);
    const r = await impl.check(undefined, inputs(plugins, modules));
    expect(r.failures).toBeUndefined();
    const line = (phase: string) => `write /var/lib/sealant-marker/${phase} (marker 1.0.0, greeting [secret])`;
    expect(r.inputs.pluginSteps).toEqual({
      "marker (post-init-host)": { "10.0.0.1": line("post-init-host"), "10.0.0.2": line("post-init-host") },
      "marker (post-install)": { "10.0.0.1": line("post-install") },
    });
    expect(r.inputs.plan).toContain(`Plugin marker (post-install):\n  run plugin marker (module ${MODULE}) on 10.0.0.1: ${line("post-install")}`);
    expect(JSON.stringify(r.inputs.pluginSteps) + r.inputs.plan).not.toContain(GREETING);
    // Without a secret, the line is the plugin's own.
    const plain = await impl.check(undefined, inputs(plugins, await pinned(plugins)));
    expect(plain.inputs.pluginSteps?.["marker (post-install)"]?.["10.0.0.1"]).toBe(
      `write /var/lib/sealant-marker/post-install (marker 1.0.0, greeting ${GREETING})`,
    );
  });

  it("GIVEN the module changed after the program pinned it WHEN checked THEN it is refused, naming plugin and module", async () => {
    const plugins = [{ name: "notify", type: "MODULE" as const, module: "./plugins/notify.ts" }];
    const modules = await pinned(plugins);
    const stale = { notify: { ...modules["notify"]!, digest: `sha256:${"0".repeat(64)}` } };
    const r = await impl.check(undefined, inputs(plugins, stale));
    expect(r.failures).toEqual([
      { property: "", reason: expect.stringMatching(/^plugin notify \(module \.\/plugins\/notify\.ts\): the module changed since it was resolved/) },
    ]);
  });

  it("GIVEN the same pins in another directory WHEN diffed THEN nothing changes; a new digest or version is an update", async () => {
    const pins = { marker: { module: MODULE, version: "1.0.0", digest: `sha256:${"1".repeat(64)}`, path: "packages/marker/index.ts" } };
    const olds = inputs([{ name: "marker", type: "MODULE", module: MODULE }], pins) as unknown as Record<string, unknown>;
    const moved = inputs([{ name: "marker", type: "MODULE", module: MODULE }], {
      marker: { ...pins.marker, path: "node_modules/@fixture/sealant-marker/index.ts" },
    });
    expect((await impl.diff("c", olds, moved)).changes).toBe(false);
    for (const change of [{ digest: `sha256:${"2".repeat(64)}` }, { version: "1.1.0" }]) {
      const upgraded = inputs([{ name: "marker", type: "MODULE", module: MODULE }], { marker: { ...pins.marker, ...change } });
      expect((await impl.diff("c", olds, upgraded)).changes).toBe(true);
    }
  });

  it("GIVEN pins relative to the program WHEN handed to the engine THEN each is the file under the provider's directory (the program's) with its digest", () => {
    const modules = { marker: { module: MODULE, digest: "sha256:x", path: "packages/marker/index.ts" }, broken: { module: "y", error: "no" } };
    expect(enginePluginModules(modules, "/work/prog")).toEqual({ marker: { path: "/work/prog/packages/marker/index.ts", digest: "sha256:x" } });
    expect(enginePluginModules({}, "/work/prog")).toBeUndefined();
  });
});
