import { randomBytes } from "node:crypto";
import { cp, mkdir, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openBed, type Bed } from "../../support/bed";
import { runOnHost } from "../../support/hosts";
import { buildTinyImage, fileOn } from "../../support/plugins";
import { PulumiProject } from "./support";

/**
 * A MODULE plugin on a Cluster, through the real Pulumi CLI (scripts/pulumi-cli.sh; file://
 * backend): a TypeScript program whose Cluster names `@fixture/sealant-marker`, a plugin package
 * of its own (test/fixtures/pulumi-plugins/marker: TypeScript, no build step), installed as a
 * registry or tarball install puts it — its files copied into node_modules, where Node itself
 * strips no types — with a secret in its config. Sandbox hosts
 * 127.0.10.57-58; a hooks image without hooks, so only the plugin does anything. Judged by
 * what the CLI prints, the files the plugin leaves on the hosts, and the stack's state.
 */
const ROOT = resolve(__dirname, "../../..");
const FIXTURE = join(ROOT, "test/fixtures/pulumi-plugins/marker");
const FIRST = 57;
const MARKER = "/var/lib/sealant-marker";
const MODULE = "@fixture/sealant-marker";
const STACK = "e2e";

const PROGRAM = `import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "sealant";

const cfg = new pulumi.Config();
const [master, ...nodes] = cfg.require("hosts").split(",");
const cluster = new Cluster("plugins", {
  name: "plugins-e2e",
  image: cfg.require("image"),
  hosts: { [master!]: { roles: ["master"] }, ...Object.fromEntries(nodes.map((ip) => [ip, { roles: ["node"] }])) },
  ssh: { user: "root", knownHosts: cfg.require("knownHosts"), privateKey: cfg.requireSecret("sshPrivateKey") },
  plugins: [{ name: "marker", type: "MODULE", module: cfg.get("markerModule") ?? "${MODULE}", config: { greeting: cfg.requireSecret("greeting") } }],
});
export const lastPlan = cluster.lastPlan;
export const pluginModules = cluster.pluginModules;
`;

describe("a MODULE plugin on the Cluster, with the real Pulumi CLI", () => {
  let bed: Bed;
  let project: PulumiProject;
  let program: string;
  let master: string;
  let node: string;
  const greeting = `hello-${randomBytes(6).toString("hex")}`;
  const step = (phase: string, ip: string, version: string) =>
    `run plugin marker (module ${MODULE}) on ${ip}: write ${MARKER}/${phase} (marker ${version}, greeting [secret])`;
  const pulumi = (args: string[]) => project.ok(args, { stack: STACK });
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  /**
   * The step as preview --diff shows it in the Cluster's `pluginSteps`: under `<plugin> (<phase>)`,
   * the host and the describe() line (an update's diff marks the new ones "+").
   */
  const shown = (phase: string, ip: string, version: string) =>
    new RegExp(
      `marker \\(${phase}\\)\\s*: \\{\\s*([-+~]?\\s*\\S+: "[^"]*"\\s*)*\\+?\\s*${escape(ip)}: "${escape(`write ${MARKER}/${phase} (marker ${version}, greeting [secret])`)}"`,
    );

  /** The package as installed in the program's node_modules, changed as a new release (or a local fix) would change it. */
  async function editPackage(edit: { version?: string; comment?: string }): Promise<void> {
    const dir = join(program, "node_modules", MODULE);
    if (edit.version) {
      const pkg = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as { version: string };
      await writeFile(join(dir, "package.json"), JSON.stringify({ ...pkg, version: edit.version }, null, 2));
    }
    let index = await readFile(join(dir, "index.ts"), "utf8");
    if (edit.version) index = index.replace(/const VERSION = "[^"]*";/, `const VERSION = "${edit.version}";`);
    if (edit.comment) index += `// ${edit.comment}\n`;
    await writeFile(join(dir, "index.ts"), index);
  }

  beforeAll(async () => {
    bed = await openBed(2, FIRST);
    [master, node] = bed.ips as [string, string];
    const image = await buildTinyImage(bed, "example/tiny:pulumi-plugins");
    // GIVEN a TypeScript program with the plugin package installed in its node_modules.
    const base = join(bed.home, "user");
    program = join(base, "program");
    await mkdir(join(program, "node_modules/@fixture"), { recursive: true });
    await mkdir(join(base, "state"));
    await writeFile(join(program, "Pulumi.yaml"), "name: sealant-plugins-e2e\nruntime:\n  name: nodejs\n  options:\n    typescript: true\nmain: index.ts\n");
    await writeFile(join(program, "index.ts"), PROGRAM);
    await cp(join(ROOT, "examples/pulumi-etcd/tsconfig.json"), join(program, "tsconfig.json"));
    await writeFile(
      join(program, "package.json"),
      JSON.stringify({ name: "plugins-e2e", private: true, main: "index.ts", dependencies: { [MODULE]: "1.0.0" } }),
    );
    await cp(FIXTURE, join(program, "node_modules", MODULE), { recursive: true });
    // The repo's packages (sealant itself, @pulumi/pulumi, typescript) for everything else.
    for (const entry of await readdir(join(ROOT, "node_modules"))) {
      if (entry !== "@fixture") await symlink(join(ROOT, "node_modules", entry), join(program, "node_modules", entry));
    }
    project = PulumiProject.installed(base, bed.home);
    await project.ok(["stack", "init", STACK]);
    for (const [key, value] of Object.entries({ hosts: master, image, knownHosts: bed.sandbox.ssh.knownHosts })) await pulumi(["config", "set", key, value]);
    await project.setSecret(STACK, "sshPrivateKey", await readFile(bed.sandbox.ssh.pk, "utf8"));
    await project.setSecret(STACK, "greeting", greeting);
  }, 180_000);
  afterAll(async () => {
    await project?.run(["destroy", "--yes"], { stack: STACK }).catch(() => undefined);
    await bed?.close();
  });

  it("preview --diff shows each plugin step on its host with the module's describe() line (the config's secret redacted), and the module's version and digest; nothing runs", async () => {
    const preview = await pulumi(["preview", "--diff"]);
    expect(preview).toMatch(shown("post-init-host", master, "1.0.0"));
    expect(preview).toMatch(shown("post-install", master, "1.0.0"));
    // The plan's text says it too (its first lines: preview cuts a long string).
    expect(preview).toContain(step("post-init-host", master, "1.0.0"));
    expect(preview).toMatch(/version\s*:\s*"1\.0\.0"/);
    expect(preview).toMatch(/digest\s*:\s*"sha256:[0-9a-f]{64}"/);
    expect(preview).not.toContain(greeting);
    // The module was loaded to describe its steps, never run.
    expect(await fileOn(bed, master, `${MARKER}/post-init-host`)).toBe("absent");
  }, 120_000);

  it("up runs it on the hosts; the state holds the module's path relative to the program and the config's secret only encrypted", async () => {
    const up = await pulumi(["up", "--yes"]);
    // What the plugin logs is shown under its step.
    expect(up).toContain(`${master}: [marker] marker 1.0.0 at post-init-host on ${master}`);
    expect(await fileOn(bed, master, `${MARKER}/post-init-host`)).toBe(`1.0.0 ${master} plugins-e2e`);
    expect(await fileOn(bed, master, `${MARKER}/post-install`)).toBe(`1.0.0 ${master} plugins-e2e`);
    // The secret reached the plugin whole, and only root reads what it wrote.
    expect(await fileOn(bed, master, `${MARKER}/greeting`)).toBe(greeting);
    expect((await runOnHost(bed.sandbox, master, `stat -c %a ${MARKER}/greeting`)).stdout.trim()).toBe("600");

    const out = await project.outputs(STACK);
    expect(out["lastPlan"]).toEqual(expect.arrayContaining([`  ${step("post-init-host", master, "1.0.0")}`, `  ${step("post-install", master, "1.0.0")}`]));
    const pinned = (out["pluginModules"] as Record<string, { module: string; version: string; path: string; digest: string }>)["marker"]!;
    expect(pinned).toMatchObject({
      module: MODULE,
      version: "1.0.0",
      path: `node_modules/${MODULE}/index.ts`,
      digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    });
    expect(await pulumi(["stack", "export"])).not.toContain(greeting);
    expect(await pulumi(["stack", "export", "--show-secrets"])).toContain(greeting);
    // Nothing changed: nothing to do, after a refresh too (it reads the hosts, runs no plugin).
    await pulumi(["refresh", "--yes"]);
    expect(await pulumi(["preview"])).toMatch(/2 unchanged/);
  }, 240_000);

  it("a changed file is a digest change; a new version shows both, and runs where its phase comes next (a host joining)", async () => {
    const before = ((await project.outputs(STACK))["pluginModules"] as Record<string, { digest: string }>)["marker"]!.digest;
    await editPackage({ comment: "a fix that changes no version" });
    const fixed = await pulumi(["preview", "--diff"]);
    expect(fixed).toContain(before);
    expect(fixed).toMatch(/digest\s*:\s*"sha256:[0-9a-f]{64}"\s*=>\s*"sha256:[0-9a-f]{64}"/);
    expect(fixed).not.toMatch(/version\s*:\s*"1\.0\.0"\s*=>/);

    await editPackage({ version: "1.1.0" });
    await pulumi(["config", "set", "hosts", `${master},${node}`]);
    const preview = await pulumi(["preview", "--diff"]);
    expect(preview).toMatch(/version\s*:\s*"1\.0\.0"\s*=>\s*"1\.1\.0"/);
    expect(preview).toMatch(/digest\s*:\s*"sha256:[0-9a-f]{64}"\s*=>\s*"sha256:[0-9a-f]{64}"/);
    expect(preview).toMatch(shown("post-init-host", node, "1.1.0"));
    expect(preview).not.toMatch(shown("post-init-host", master, "1.1.0"));
    // post-install ran when the cluster was made: no new step of it.
    expect(preview).not.toMatch(/\+ .*post-install/);

    await pulumi(["up", "--yes"]);
    expect(await fileOn(bed, node, `${MARKER}/post-init-host`)).toBe(`1.1.0 ${node} plugins-e2e`);
    // The master's phases ran with 1.0.0 and are not run again.
    expect(await fileOn(bed, master, `${MARKER}/post-init-host`)).toBe(`1.0.0 ${master} plugins-e2e`);
    expect(((await project.outputs(STACK))["pluginModules"] as Record<string, { version: string }>)["marker"]!.version).toBe("1.1.0");
  }, 240_000);

  it("a module that cannot be found fails the preview with one message naming the plugin and the module", async () => {
    await pulumi(["config", "set", "markerModule", "@fixture/no-such-plugin"]);
    const missing = await project.run(["preview", "--diff"], { stack: STACK });
    expect(missing.code).not.toBe(0);
    expect(missing.output).toContain("plugin marker (module @fixture/no-such-plugin): module not found: no package @fixture/no-such-plugin in node_modules");
    // One line of Pulumi's: no stack trace, and not the plugins' whole value beside it.
    expect(missing.output).toMatch(/resource 'plugins' has a problem: plugin marker \(module @fixture\/no-such-plugin\)/);
    expect(missing.output).not.toMatch(/\n\s+at .*\(.*\.js:\d+:\d+\)/);

    await pulumi(["config", "set", "markerModule", "./plugins/notify.ts"]);
    const noFile = await project.run(["preview"], { stack: STACK });
    expect(noFile.code).not.toBe(0);
    expect(noFile.output).toContain(`plugin marker (module ./plugins/notify.ts): module not found: no file ${join(program, "plugins/notify.ts")}`);
    await pulumi(["config", "rm", "markerModule"]);
    expect(await pulumi(["preview"])).toMatch(/2 unchanged/);
  }, 180_000);

  it("destroy runs the module the last up pinned: changed since, it says to run up first; then destroy resets the cluster (this plugin has no clean phase: its markers stay)", async () => {
    await editPackage({ comment: "changed after the last up" });
    const refused = await project.run(["destroy", "--yes"], { stack: STACK });
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain(`plugin marker (module ${MODULE}): the module changed since it was resolved`);
    expect(refused.output).toContain("run pulumi up (it pins the module as it is now), then pulumi destroy");
    await pulumi(["up", "--yes"]);

    const out = await pulumi(["destroy", "--yes"]);
    expect(out).toMatch(/Remove sealant's files/);
    expect((await runOnHost(bed.sandbox, master, "ls -A /var/lib/sealant/plugins-e2e 2>/dev/null")).stdout.trim()).toBe("");
    expect(await fileOn(bed, node, `${MARKER}/post-init-host`)).toBe(`1.1.0 ${node} plugins-e2e`);
  }, 180_000);
});
