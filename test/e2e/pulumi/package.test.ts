import { execFile } from "node:child_process";
import { existsSync, lstatSync, readFileSync } from "node:fs";
import { cp, mkdir, readFile, readdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openBed, type Bed } from "../../support/bed";
import { etcdHealthy, etcdMembers } from "../../support/etcd";
import { runOnHost } from "../../support/hosts";
import { PulumiProject } from "./support";

/**
 * sealant installed like any package: `npm pack` of this repo, the tarball `npm install`ed (with
 * @pulumi/pulumi, typescript and @types/node from the npm registry or its cache) into a copy of
 * the TypeScript example examples/pulumi-etcd in a temp directory outside the repo, then the real
 * Pulumi CLI (scripts/pulumi-cli.sh; file:// backend; nothing of the repo on its PATH) runs
 * preview, up, a join and destroy on sandbox hosts 127.0.10.241-243. The dynamic providers'
 * `require("sealant/provider/impl/...")` must resolve from the program's own node_modules.
 */
const ROOT = resolve(__dirname, "../../..");
const execP = promisify(execFile);
const installedVersion = (pkg: string) => (JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")) as { version: string }).version;

describe("sealant packed and npm-installed into a TypeScript Pulumi program outside the repo", () => {
  let bed: Bed;
  let project: PulumiProject;
  let program: string;
  let tarball: string;
  let ips: string[];
  const stack = "pkg";
  const member = (ip: string) => `etcd-${ip.replaceAll(".", "-")}`;
  const holdsNothing = async (ip: string) =>
    (await runOnHost(bed.sandbox, ip, `ls -A /var/lib/sealant/etcd-${stack} 2>/dev/null; pgrep -x etcd || true`)).stdout.trim() === "";

  beforeAll(async () => {
    bed = await openBed(3, 241);
    ips = bed.ips;
    const base = join(bed.home, "user");
    program = join(base, "program");
    expect(program.startsWith(`${ROOT}/`)).toBe(false);
    await mkdir(program, { recursive: true });

    // GIVEN the package as `npm pack` makes it (what `npm publish` would upload).
    const packed = JSON.parse((await execP("npm", ["pack", "--json", "--pack-destination", base], { cwd: ROOT, maxBuffer: 16 << 20 })).stdout) as {
      filename: string;
    }[];
    tarball = join(base, packed[0]!.filename);
    // AND a user's TypeScript program: the example, with the examples/etcd build context beside it.
    for (const f of ["Pulumi.yaml", "index.ts", "package.json", "tsconfig.json"]) await cp(join(ROOT, "examples/pulumi-etcd", f), join(program, f));
    await cp(join(ROOT, "examples/etcd"), join(base, "etcd"), { recursive: true });
    // WHEN the user installs it the ordinary way. Native addons (ssh2's crypto binding) build
    // against the running Node's headers when its distribution has them (Node 22 from npm).
    const nodeDir = dirname(dirname(process.execPath));
    const npmEnv = { ...process.env, ...(existsSync(join(nodeDir, "include/node/node.h")) ? { npm_config_nodedir: nodeDir } : {}) };
    const deps = ["@pulumi/pulumi", "typescript", "@types/node"].map((p) => `${p}@${installedVersion(p)}`);
    await execP("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", tarball, ...deps], {
      cwd: program,
      env: npmEnv,
      maxBuffer: 64 << 20,
    });
    await mkdir(join(base, "state"), { recursive: true });
    project = PulumiProject.installed(base, bed.home);
  }, 600_000);

  afterAll(async () => {
    await project?.run(["destroy", "--yes"], { stack }).catch(() => undefined);
    await bed?.close();
  });

  it("the tarball ships dist/ (no sources or tests), installs as a real directory, and every sealant/... the providers require resolves inside it", async () => {
    const listed = (await execP("tar", ["-tzf", tarball], { maxBuffer: 16 << 20 })).stdout.trim().split("\n");
    expect(listed).toContain("package/dist/index.d.ts");
    expect(listed).toContain("package/dist/cli/main.js");
    expect(listed.filter((f) => /^package\/(src|test|bench|examples|scripts)\//.test(f))).toEqual([]);

    const installed = join(program, "node_modules/sealant");
    expect(lstatSync(installed).isSymbolicLink()).toBe(false);
    const manifest = JSON.parse(await readFile(join(program, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    expect(manifest.dependencies["sealant"]).toMatch(/^file:.*sealant-.*\.tgz$/);
    // Every `require("sealant/...")` in the package's own code (the dynamic providers' run-time loads).
    const requires = new Set<string>();
    for (const f of await readdir(join(installed, "dist"), { recursive: true })) {
      if (!f.endsWith(".js")) continue;
      for (const m of (await readFile(join(installed, "dist", f), "utf8")).matchAll(/require\("(sealant\/[^"]+)"\)/g)) requires.add(m[1]!);
    }
    expect([...requires].sort()).toEqual([
      "sealant/provider/impl/cluster",
      "sealant/provider/impl/cluster-backup",
      "sealant/provider/impl/cluster-image",
      "sealant/provider/impl/cluster-restore",
      "sealant/provider/impl/image-build",
      "sealant/provider/impl/kubeconfig",
    ]);
    // Resolved the way the provider process does: from the program's directory.
    const script = `for (const m of ${JSON.stringify([...requires])}) { require(m); console.log(require.resolve(m)); }`;
    const resolved = (await execP("node", ["-e", script], { cwd: program })).stdout.trim().split("\n");
    for (const file of resolved) expect(file.startsWith(`${installed}/dist/provider/impl/`)).toBe(true);
    // The package's CLI is installed too.
    expect((await execP(join(program, "node_modules/.bin/sealant"), ["--version"], { cwd: program })).stdout).toMatch(/^sealant \d+\.\d+\.\d+/);
  }, 120_000);

  it("the program type-checks against the installed package's types (tsc --noEmit of the program's own TypeScript)", async () => {
    const tsc = join(program, "node_modules/.bin/tsc");
    const r = await execP(tsc, ["-p", "tsconfig.json", "--noEmit"], { cwd: program }).catch((e: { stdout?: string }) => ({
      stdout: `tsc failed:\n${e.stdout ?? String(e)}`,
    }));
    expect(r.stdout.trim()).toBe("");
  }, 120_000);

  it("pulumi preview (which compiles the program) shows the resources and the plan; up creates the cluster", async () => {
    await project.ok(["stack", "init", stack]);
    await project.writeStackConfig(stack, { firstHost: ips[0]!, hosts: 2, knownHosts: bed.sandbox.ssh.knownHosts });
    await project.setSecret(stack, "sshPrivateKey", await readFile(bed.sandbox.ssh.pk, "utf8"));

    const preview = await project.ok(["preview", "--diff"], { stack });
    expect(preview).toContain("+ pulumi-nodejs:dynamic/sealant:ImageBuild: (create)");
    expect(preview).toContain("+ pulumi-nodejs:dynamic/sealant:Cluster: (create)");
    // The providers' check ran (in the program's node_modules/sealant): the context's hash, the plan.
    expect(preview).toMatch(/contextHash: "sha256:[0-9a-f]{64}"/);
    expect(preview).toContain(`create cluster etcd-${stack} on ${ips[0]}, ${ips[1]} (master)`);

    const up = await project.ok(["up", "--yes"], { stack });
    expect(up).toMatch(/ImageBuild example\/etcd-pulumi:pkg: built/);
    expect(await etcdMembers(ips[0]!)).toEqual(ips.slice(0, 2).map(member));
    expect(await etcdHealthy(ips.slice(0, 2))).toBe(true);
    expect((await project.outputs(stack))["endpoint"]).toBe(`http://${ips[0]}:2379`);
    // The state holds the providers as code that requires sealant by package name: no path of
    // this repo (nor of the machine's checkout) is in it.
    const state = await project.ok(["stack", "export"], { stack });
    expect(state).toContain("sealant/provider/impl/cluster");
    expect(state).not.toContain(ROOT);
  }, 400_000);

  it("a third host: preview --diff names its join, up performs it (the provider loaded from the state)", async () => {
    await project.ok(["config", "set", "hosts", "3"], { stack });
    const preview = await project.ok(["preview", "--diff"], { stack });
    expect(preview).toContain(`join ${ips[2]} (master)`);
    await project.ok(["up", "--yes"], { stack });
    expect(await etcdMembers(ips[0]!)).toEqual(ips.map(member));
    expect((await project.outputs(stack))["lastPlan"]).toEqual([`join ${ips[2]} (master)`]);
  }, 300_000);

  it("destroy resets every host", async () => {
    await project.ok(["destroy", "--yes"], { stack });
    for (const ip of ips) expect(await holdsNothing(ip)).toBe(true);
  }, 300_000);
});
