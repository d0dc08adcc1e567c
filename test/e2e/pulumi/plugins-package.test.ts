import { execFile } from "node:child_process";
import { existsSync, lstatSync, readFileSync } from "node:fs";
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openBed, type Bed } from "../../support/bed";
import { buildTinyImage, fileOn } from "../../support/plugins";
import { PulumiProject } from "./support";

/**
 * What a user outside this repo does: sealant from its `npm pack` tarball and a plugin package of
 * their own (TypeScript, no build step, sealant a peer dependency; here the fixture
 * test/fixtures/pulumi-plugins/marker, packed) from its tarball, both `npm install`ed into a
 * TypeScript Pulumi program in a temp directory (@pulumi/pulumi, typescript and @types/node from
 * the npm registry or its cache); the real Pulumi CLI, nothing of the repo on its PATH, runs it
 * onto sandbox hosts 127.0.10.54-55; then a new release of the plugin is installed the same way.
 */
const ROOT = resolve(__dirname, "../../..");
const FIRST = 54;
const MODULE = "@fixture/sealant-marker";
const MARKER = "/var/lib/sealant-marker";
const STACK = "pkg";
const execP = promisify(execFile);
const installedVersion = (pkg: string) => (JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")) as { version: string }).version;

const PROGRAM = `import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "sealant";

const cfg = new pulumi.Config();
const cluster = new Cluster("plugins", {
  name: "plugins-pkg",
  image: cfg.require("image"),
  hosts: Object.fromEntries(cfg.require("hosts").split(",").map((ip) => [ip, { roles: ["master"] }])),
  ssh: { user: "root", knownHosts: cfg.require("knownHosts"), privateKey: cfg.requireSecret("sshPrivateKey") },
  plugins: [{ name: "marker", type: "MODULE", module: "${MODULE}" }],
});
export const pluginModules = cluster.pluginModules;
`;

describe("a plugin package npm-installed from its tarball into a program that installed sealant from its own", () => {
  let bed: Bed;
  let project: PulumiProject;
  let base: string;
  let program: string;
  let sealantTarball: string;
  let ips: string[];
  const pulumi = (args: string[]) => project.ok(args, { stack: STACK });

  /** `npm pack` of `dir` into `base`; the tarball's path. */
  async function pack(dir: string): Promise<string> {
    const out = JSON.parse((await execP("npm", ["pack", "--json", "--pack-destination", base], { cwd: dir, maxBuffer: 16 << 20 })).stdout) as {
      filename: string;
    }[];
    return join(base, out[0]!.filename);
  }

  /** `npm install` in the program, as a user would; native addons (ssh2's) build against this Node's headers when it has them. */
  async function npmInstall(...specs: string[]): Promise<void> {
    const nodeDir = dirname(dirname(process.execPath));
    const env = { ...process.env, ...(existsSync(join(nodeDir, "include/node/node.h")) ? { npm_config_nodedir: nodeDir } : {}) };
    await execP("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", ...specs], { cwd: program, env, maxBuffer: 64 << 20 });
  }

  /** The plugin package at `version`, packed from a copy of the fixture (its author's release). */
  async function release(version: string): Promise<string> {
    const dir = join(base, `marker-${version}`);
    await cp(join(ROOT, "test/fixtures/pulumi-plugins/marker"), dir, { recursive: true });
    const pkg = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as Record<string, unknown>;
    await writeFile(join(dir, "package.json"), JSON.stringify({ ...pkg, version }, null, 2));
    const index = await readFile(join(dir, "index.ts"), "utf8");
    await writeFile(join(dir, "index.ts"), index.replace(/const VERSION = "[^"]*";/, `const VERSION = "${version}";`));
    return pack(dir);
  }

  beforeAll(async () => {
    bed = await openBed(2, FIRST);
    ips = bed.ips;
    base = join(bed.home, "user");
    program = join(base, "program");
    expect(program.startsWith(`${ROOT}/`)).toBe(false);
    await mkdir(program, { recursive: true });
    await mkdir(join(base, "state"));
    await writeFile(join(program, "Pulumi.yaml"), "name: sealant-plugins-pkg\nruntime:\n  name: nodejs\n  options:\n    typescript: true\nmain: index.ts\n");
    await writeFile(join(program, "index.ts"), PROGRAM);
    await cp(join(ROOT, "examples/pulumi-etcd/tsconfig.json"), join(program, "tsconfig.json"));
    await writeFile(join(program, "package.json"), JSON.stringify({ name: "plugins-pkg", private: true, main: "index.ts" }, null, 2));
    sealantTarball = await pack(ROOT);
    const deps = ["@pulumi/pulumi", "typescript", "@types/node"].map((p) => `${p}@${installedVersion(p)}`);
    await npmInstall(sealantTarball, await release("1.0.0"), ...deps);
    project = PulumiProject.installed(base, bed.home);
    await project.ok(["stack", "init", STACK]);
    const image = await buildTinyImage(bed, "example/tiny:plugins-pkg");
    for (const [key, value] of Object.entries({ hosts: ips.join(","), image, knownHosts: bed.sandbox.ssh.knownHosts }))
      await pulumi(["config", "set", key, value]);
    await project.setSecret(STACK, "sshPrivateKey", await readFile(bed.sandbox.ssh.pk, "utf8"));
  }, 600_000);
  afterAll(async () => {
    await project?.run(["destroy", "--yes"], { stack: STACK }).catch(() => undefined);
    await bed?.close();
  });

  it("GIVEN both installed as files (no links) WHEN previewed and applied THEN the plugin's steps show per host and run there", async () => {
    expect(lstatSync(join(program, "node_modules", MODULE)).isSymbolicLink()).toBe(false);
    expect(lstatSync(join(program, "node_modules/sealant")).isSymbolicLink()).toBe(false);
    const preview = await pulumi(["preview", "--diff"]);
    expect(preview).toMatch(
      new RegExp(
        `marker \\(post-init-host\\)\\s*: \\{\\s*${ips[0]!.replaceAll(".", "\\.")}: "write ${MARKER}/post-init-host \\(marker 1\\.0\\.0, greeting \\(none\\)\\)"`,
      ),
    );
    expect(preview).toMatch(/version\s*:\s*"1\.0\.0"/);
    await pulumi(["up", "--yes"]);
    for (const ip of ips) expect(await fileOn(bed, ip, `${MARKER}/post-init-host`)).toBe(`1.0.0 ${ip} plugins-pkg`);
    expect(await fileOn(bed, ips[0]!, `${MARKER}/post-install`)).toBe(`1.0.0 ${ips[0]} plugins-pkg`);
    const pinned = ((await project.outputs(STACK))["pluginModules"] as Record<string, { path: string }>)["marker"]!;
    expect(pinned.path).toBe(`node_modules/${MODULE}/index.ts`);
  }, 300_000);

  it("GIVEN a new release npm-installed WHEN previewed THEN its version and digest are the diff; up takes it", async () => {
    await npmInstall(await release("1.1.0"));
    const preview = await pulumi(["preview", "--diff"]);
    expect(preview).toMatch(/version\s*:\s*"1\.0\.0"\s*=>\s*"1\.1\.0"/);
    expect(preview).toMatch(/digest\s*:\s*"sha256:[0-9a-f]{64}"\s*=>\s*"sha256:[0-9a-f]{64}"/);
    await pulumi(["up", "--yes"]);
    expect(((await project.outputs(STACK))["pluginModules"] as Record<string, { version: string }>)["marker"]!.version).toBe("1.1.0");
    expect(await pulumi(["preview"])).toMatch(/2 unchanged/);
  }, 300_000);
});
