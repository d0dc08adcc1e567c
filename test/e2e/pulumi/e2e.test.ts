import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHost, stopHost } from "../../../src/engine/sandbox";
import { openBed, type Bed } from "../../support/bed";
import { etcdHealthy, etcdMembers } from "../../support/etcd";
import { runOnHost } from "../../support/hosts";
import { PulumiProject, pulumiBin } from "./support";

/**
 * The real Pulumi CLI (built from source by scripts/pulumi-cli.sh, file:// backend) running the
 * example program examples/pulumi-etcd on sandbox hosts 127.0.10.211-219: ImageBuild of the
 * etcd example + Cluster. etcd itself judges every step.
 */
describe("the Pulumi program examples/pulumi-etcd with the real CLI", () => {
  let bed: Bed;
  let project: PulumiProject;
  let ips: string[];
  let privateKey: string;
  const registryPassword = "e2e-registry-Pw-9d1f";
  const member = (ip: string) => `etcd-${ip.replaceAll(".", "-")}`;
  const heartbeatOn = async (ip: string, cluster: string) =>
    (
      await runOnHost(
        bed.sandbox,
        ip,
        `tr '\\0' '\\n' < /proc/$(cat /var/lib/sealant/${cluster}/run/etcd.pid)/environ | sed -n 's/^ETCD_HEARTBEAT_INTERVAL=//p'`,
      )
    ).stdout.trim();
  const holdsNothing = async (ip: string, cluster: string) =>
    (await runOnHost(bed.sandbox, ip, `ls -A /var/lib/sealant/${cluster} 2>/dev/null; pgrep -x etcd || true`)).stdout.trim() === "";

  /** A stack of the program on `count` hosts from `first`, with the sandbox's credentials as secrets. */
  async function initStack(stack: string, first: string, count: number): Promise<void> {
    await project.ok(["stack", "init", stack]);
    await project.writeStackConfig(stack, {
      firstHost: first,
      hosts: count,
      knownHosts: bed.sandbox.ssh.knownHosts,
      etcdContext: join(__dirname, "../../../examples/etcd"),
    });
    await project.setSecret(stack, "sshPassword", bed.sandbox.ssh.passwd!);
    await project.setSecret(stack, "sshPrivateKey", privateKey);
    await project.setSecret(stack, "registryPassword", registryPassword);
  }

  beforeAll(async () => {
    bed = await openBed(9, 211);
    ips = bed.ips;
    privateKey = await readFile(bed.sandbox.ssh.pk, "utf8");
    project = await PulumiProject.create(join(bed.home, "pulumi"), bed.home);
  }, 120_000);
  afterAll(async () => {
    for (const stack of ["main", "dev", "prod"]) await project?.run(["destroy", "--yes"], { stack }).catch(() => undefined);
    await bed?.close();
  });

  it("up builds the image and creates a 3-member cluster; preview of 5 hosts shows the join of exactly the two new ones; up joins them", async () => {
    await initStack("main", ips[0]!, 3);
    const created = await project.ok(["up", "--yes"], { stack: "main" });
    expect(created).toMatch(/ImageBuild example\/etcd-pulumi:main: built/);
    expect(created).toMatch(/Bootstrap the cluster/);
    expect(await etcdMembers(ips[0]!)).toEqual(ips.slice(0, 3).map(member));
    expect(await etcdHealthy(ips.slice(0, 3))).toBe(true);
    const out = await project.outputs("main");
    expect((out["nodes"] as { ip: string; member: boolean }[]).map((n) => [n.ip, n.member])).toEqual(ips.slice(0, 3).map((ip) => [ip, true]));
    // The runtime's offer (the etcd example's bootstrap hook writes it on the first master).
    expect(out["endpoint"]).toBe(`http://${ips[0]}:2379`);

    await project.ok(["config", "set", "hosts", "5"], { stack: "main" });
    const preview = await project.ok(["preview", "--diff"], { stack: "main" });
    expect(preview).toContain(`join ${ips[3]}, ${ips[4]} (master)`);
    expect(preview).not.toMatch(/upgrade|remove 127/);
    await project.ok(["up", "--yes"], { stack: "main" });
    expect(await etcdMembers(ips[0]!)).toEqual(ips.slice(0, 5).map(member));
    expect((await project.outputs("main"))["lastPlan"]).toEqual([`join ${ips[3]}, ${ips[4]} (master)`]);
    // Nothing changed: nothing to do.
    const again = await project.ok(["preview"], { stack: "main" });
    expect(again).toMatch(/3 unchanged/);
  }, 300_000);

  it("a changed image shows as an upgrade in preview and rolls out one member at a time", async () => {
    await project.ok(["config", "set", "heartbeat", "150"], { stack: "main" });
    const preview = await project.ok(["preview", "--diff"], { stack: "main" });
    expect(preview).toMatch(/upgrade image [0-9a-f]{12} -> \(known after apply\) on 5 hosts \(5 batches\)/);
    const up = await project.ok(["up", "--yes"], { stack: "main" });
    expect(up).toMatch(/Rolling upgrade, batch 5\/5/);
    for (const ip of ips.slice(0, 5)) expect(await heartbeatOn(ip, "etcd-main")).toBe("150");
    expect(await etcdMembers(ips[0]!)).toEqual(ips.slice(0, 5).map(member));
    expect(await etcdHealthy(ips.slice(0, 5))).toBe(true);
  }, 300_000);

  it("removing a host removes it from the cluster and cleans it", async () => {
    await project.ok(["config", "set", "hosts", "4"], { stack: "main" });
    const preview = await project.ok(["preview", "--diff"], { stack: "main" });
    expect(preview).toContain(`remove ${ips[4]} (master)`);
    await project.ok(["up", "--yes"], { stack: "main" });
    expect(await etcdMembers(ips[0]!)).toEqual(ips.slice(0, 4).map(member));
    expect(await holdsNothing(ips[4]!, "etcd-main")).toBe(true);
  }, 300_000);

  it("refresh notices a host reset out of band; preview shows its join and up performs it", async () => {
    const victim = ips[3]!;
    await runOnHost(bed.sandbox, victim, "kill $(cat /var/lib/sealant/etcd-main/run/etcd.pid); rm -rf /var/lib/sealant/etcd-main");
    const refreshed = await project.ok(["refresh", "--yes"], { stack: "main" });
    expect(refreshed).toMatch(/no longer holds the cluster's files/);
    const nodes = (await project.resourceOutputs("main", "pulumi-nodejs:dynamic/sealant:Cluster"))["nodes"] as { ip: string; member: boolean }[];
    expect(nodes.find((n) => n.ip === victim)?.member).toBe(false);
    const preview = await project.ok(["preview", "--diff"], { stack: "main" });
    expect(preview).toContain(`join ${victim} (master)`);
    await project.ok(["up", "--yes"], { stack: "main" });
    expect(await etcdMembers(ips[0]!)).toEqual(ips.slice(0, 4).map(member));
    expect(await etcdHealthy(ips.slice(0, 4))).toBe(true);
  }, 300_000);

  it("the stack's state holds the SSH password, key and registry password only encrypted", async () => {
    const exported = await project.ok(["stack", "export"], { stack: "main" });
    const keyBody = privateKey.split("\n")[2]!; // a line of the key's base64 body
    expect(keyBody.length).toBeGreaterThan(20);
    for (const secret of [bed.sandbox.ssh.passwd!, keyBody, registryPassword]) expect(exported).not.toContain(secret);
    // They are in the state, as ciphertext: the same export with --show-secrets has them.
    const shown = await project.ok(["stack", "export", "--show-secrets"], { stack: "main" });
    for (const secret of [bed.sandbox.ssh.passwd!, keyBody, registryPassword]) expect(shown).toContain(secret);
  }, 120_000);

  it("destroy resets every host", async () => {
    const out = await project.ok(["destroy", "--yes"], { stack: "main" });
    expect(out).toMatch(/Remove sealant's files/);
    for (const ip of ips.slice(0, 5)) expect(await holdsNothing(ip, "etcd-main")).toBe(true);
  }, 300_000);

  it("two stacks of one program (dev: 1 host, prod: 3 hosts, Pulumi.<stack>.yaml) keep independent state", async () => {
    const [devHost, ...prodHosts] = ips.slice(5, 9) as [string, ...string[]];
    await initStack("dev", devHost, 1);
    await initStack("prod", prodHosts[0]!, 3);
    await project.ok(["up", "--yes"], { stack: "dev" });
    await project.ok(["up", "--yes"], { stack: "prod" });
    expect(await etcdMembers(devHost)).toEqual([member(devHost)]);
    expect(await etcdMembers(prodHosts[0]!)).toEqual(prodHosts.map(member));
    expect(((await project.outputs("dev"))["nodes"] as unknown[]).length).toBe(1);
    expect(((await project.outputs("prod"))["nodes"] as unknown[]).length).toBe(3);
    await project.ok(["destroy", "--yes"], { stack: "dev" });
    expect(await holdsNothing(devHost, "etcd-dev")).toBe(true);
    expect(await etcdHealthy(prodHosts)).toBe(true);
    expect(await project.ok(["preview"], { stack: "prod" })).toMatch(/3 unchanged/);
  }, 400_000);

  it("sshd killed on a host during an update fails naming the host; the next up converges", async () => {
    const prodHosts = ips.slice(6, 9);
    const victim = prodHosts[2]!;
    await project.ok(["config", "set", "heartbeat", "200"], { stack: "prod" });
    let stopped: Promise<unknown> | undefined;
    const failed = await project.run(["up", "--yes"], {
      stack: "prod",
      onOutput: (text) => {
        if (!stopped && text.includes("Rolling upgrade, batch 1/3")) stopped = stopHost(bed.sandbox, victim);
      },
    });
    await stopped;
    expect(failed.code).not.toBe(0);
    expect(failed.output).toContain(victim);
    expect(failed.output).not.toContain(bed.sandbox.ssh.passwd!);

    await startHost(bed.sandbox, victim);
    await project.ok(["up", "--yes"], { stack: "prod" });
    for (const ip of prodHosts) expect(await heartbeatOn(ip, "etcd-prod")).toBe("200");
    expect(await etcdMembers(prodHosts[0]!)).toEqual(prodHosts.map(member));
    expect(await etcdHealthy(prodHosts)).toBe(true);
    await project.ok(["destroy", "--yes"], { stack: "prod" });
    for (const ip of prodHosts) expect(await holdsNothing(ip, "etcd-prod")).toBe(true);
  }, 400_000);
});

/**
 * A program of this test's own (below), written the way the README tells users to: secrets from
 * `cfg.requireSecret` nested inside `ssh`, inside one host's ssh, in env, in the registry and in
 * a build argument; one host's password as a plain string; a KubernetesCluster whose
 * masters log in with a secret password from `masterSettings`. The real Pulumi CLI runs it onto
 * sandbox hosts 127.0.10.236-238, where each host only lets in the credential its own settings
 * name (so each reached the provider whole), and the stack's state is then read for plaintext.
 */
describe("secrets nested in a program's arguments, with the real CLI", () => {
  const ROOT = resolve(__dirname, "../../..");
  const PROGRAM = `"use strict";
const fs = require("fs");
const pulumi = require("@pulumi/pulumi");
const { Cluster, ImageBuild, KubernetesCluster } = require("sealant");

const cfg = new pulumi.Config();
const knownHosts = cfg.require("knownHosts");
const token = cfg.requireSecret("token");

// A hooks image without hooks: its build needs the secret build argument.
const image = new ImageBuild("image", {
  context: cfg.require("context"),
  kubefile: { text: 'FROM scratch\\nLABEL io.sealant.runtime="hooks"\\nARG TOKEN\\nRUN test -n "$TOKEN" && mkdir -p etc && echo built > etc/built\\n' },
  tag: "example/nested-secrets:e2e",
  buildArgs: { TOKEN: token },
});

new Cluster("nested", {
  name: "nested",
  image: image.repoDigest,
  hosts: {
    // Each host logs in only with its own settings: the cluster's ssh has no credential.
    [cfg.require("hostA")]: { roles: ["master"], labels: { disk: "ssd" }, ssh: { privateKey: cfg.requireSecret("sshPrivateKey") } },
    // A plain string (read from a file, as some credentials are): the Cluster makes it secret.
    [cfg.require("hostB")]: { roles: ["master"], ssh: { password: fs.readFileSync(cfg.require("hostBFile"), "utf8") } },
  },
  ssh: { user: "root", knownHosts },
  env: { TOKEN: token },
  registry: { username: "sealant", password: cfg.requireSecret("registryPassword") },
});

const k = new KubernetesCluster("construct", {
  image: image.repoDigest,
  clusterName: "construct",
  masters: [cfg.require("hostC")],
  ssh: { user: "root", knownHosts },
  masterSettings: { ssh: { password: cfg.requireSecret("sshPassword") } },
});
exports.constructNodes = k.nodes;
`;
  let bed: Bed;
  let base: string;
  let privateKey: string;
  const token = `tok-${randomBytes(8).toString("hex")}`;
  const registryPassword = `reg-${randomBytes(8).toString("hex")}`;

  /** `pulumi args... --non-interactive --stack e2e` in the program's own project (file:// backend, own PULUMI_HOME). */
  function pulumi(args: string[], input = ""): Promise<string> {
    const env = {
      ...process.env,
      PATH: `${pulumiBin()}:${join(ROOT, "node_modules/@pulumi/pulumi")}:${process.env.PATH ?? ""}`,
      PULUMI_BACKEND_URL: `file://${join(base, "state")}`,
      PULUMI_CONFIG_PASSPHRASE: "sealant-e2e-passphrase",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_HOME: join(base, "pulumi-home"),
      SEALANT_HOME: bed.home,
      NO_COLOR: "1",
    };
    return new Promise((done, fail) => {
      const child = spawn("pulumi", [...args, "--non-interactive", "--stack", "e2e"], { cwd: join(base, "program"), env, stdio: ["pipe", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      child.on("error", fail);
      child.on("close", (code) => (code === 0 ? done(output) : fail(new Error(`pulumi ${args.slice(0, 2).join(" ")} exited ${code}:\n${output}`))));
      child.stdin.end(input);
    });
  }

  beforeAll(async () => {
    bed = await openBed(3, 236);
    privateKey = await readFile(bed.sandbox.ssh.pk, "utf8");
    base = join(bed.home, "pulumi-nested");
    await mkdir(join(base, "program", "context"), { recursive: true });
    await mkdir(join(base, "state"));
    await writeFile(
      join(base, "program", "Pulumi.yaml"),
      "name: nested-secrets\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n",
    );
    await writeFile(join(base, "program", "package.json"), JSON.stringify({ name: "nested-secrets", private: true, main: "index.js" }));
    await writeFile(join(base, "program", "index.js"), PROGRAM);
    await symlink(join(ROOT, "node_modules"), join(base, "program", "node_modules"));
    await pulumi(["stack", "init"]);
    // (A plain config value would be in the state anyway: Pulumi records the stack's config with its providers.)
    await writeFile(join(base, "password"), bed.sandbox.ssh.passwd!, { mode: 0o600 });
    const [a, b, c] = bed.ips as [string, string, string];
    for (const [key, v] of Object.entries({
      hostA: a,
      hostB: b,
      hostC: c,
      knownHosts: bed.sandbox.ssh.knownHosts,
      context: join(base, "program", "context"),
      hostBFile: join(base, "password"),
    })) {
      await pulumi(["config", "set", key, v]);
    }
    for (const [key, v] of Object.entries({ sshPrivateKey: privateKey, sshPassword: bed.sandbox.ssh.passwd!, token, registryPassword }))
      await pulumi(["config", "set", "--secret", key], v);
  }, 120_000);
  afterAll(async () => {
    if (base) await pulumi(["destroy", "--yes"]).catch(() => undefined);
    await bed?.close();
  });

  it("up runs the clusters with each host's own credential; the stack's state holds every nested secret only encrypted, and a host's other settings readable", async () => {
    await pulumi(["up", "--yes"]);
    const [a, b, c] = bed.ips as [string, string, string];
    const state = JSON.parse(await pulumi(["stack", "export"])) as {
      deployment: { resources: { urn: string; type: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }[] };
    };
    const resource = (name: string) =>
      state.deployment.resources.find((r) => r.type === "pulumi-nodejs:dynamic/sealant:Cluster" && r.urn.endsWith(`::${name}`))!;
    const nodes = (name: string) => (resource(name).outputs!["nodes"] as { ip: string; member: boolean }[]).map((n) => [n.ip, n.member]);
    expect(nodes("nested")).toEqual([
      [a, true],
      [b, true],
    ]);
    expect(nodes("construct")).toEqual([[c, true]]);

    // No plaintext anywhere: the key (a line of its body), the passwords, the token, the registry's.
    const exported = JSON.stringify(state);
    const keyBody = privateKey.split("\n")[2]!;
    expect(keyBody.length).toBeGreaterThan(20);
    const secrets = { keyBody, password: bed.sandbox.ssh.passwd!, token, registryPassword };
    for (const [what, secret] of Object.entries(secrets)) expect({ what, inExport: exported.includes(secret) }).toEqual({ what, inExport: false });
    // ... yet all there, encrypted: an export with --show-secrets has each.
    const shown = await pulumi(["stack", "export", "--show-secrets"]);
    for (const [what, secret] of Object.entries(secrets)) expect({ what, shown: shown.includes(secret) }).toEqual({ what, shown: true });

    // Encrypted where it was given: a host's ssh, not its roles and labels.
    const SECRET = "4dabf18193072939515e22adb298388d";
    const hosts = resource("nested").inputs!["hosts"] as Record<string, Record<string, unknown>>;
    expect(SECRET in hosts).toBe(false);
    expect(hosts[a]).toMatchObject({ roles: ["master"], labels: { disk: "ssd" }, ssh: { [SECRET]: expect.any(String) } });
    expect(hosts[b]).toMatchObject({ roles: ["master"], ssh: { [SECRET]: expect.any(String) } });
    const build = state.deployment.resources.find((r) => r.type === "pulumi-nodejs:dynamic/sealant:ImageBuild")!;
    expect((build.inputs!["buildArgs"] as Record<string, unknown>)["TOKEN"]).toMatchObject({ [SECRET]: expect.any(String) });
  }, 400_000);
});
