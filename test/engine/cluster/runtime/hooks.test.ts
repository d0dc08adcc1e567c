import { execFile } from "node:child_process";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import type { Action, PlannedHost } from "../../../../src/engine/cluster/plan";
import { hookEnv, hooksRuntime, selectRuntime, type LifecycleStep, type RuntimeContext } from "../../../../src/engine/cluster/runtime";

const exec = promisify(execFile);
const temps: string[] = [];
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

const ctx = (hosts: PlannedHost[], over: Partial<RuntimeContext> = {}): RuntimeContext => ({
  cluster: "demo",
  action: "create",
  hosts,
  added: [],
  removed: [],
  env: { GREETING: "cluster", LEVEL: "cluster" },
  rootfs: "/var/lib/sealant/demo/rootfs",
  dataRoot: "/var/lib/sealant/demo",
  ...over,
});

describe("the hooks runtime contract", () => {
  it("gives each hook the host, the cluster by role, the change and the env (host over cluster)", () => {
    const hosts = [
      { ip: "127.0.10.1", roles: ["master"] },
      { ip: "127.0.10.2", roles: ["master"] },
      { ip: "127.0.10.3", roles: ["node"] },
    ];
    const env = hookEnv("join", { ...hosts[2]!, env: { LEVEL: "host" } }, ctx(hosts, { action: "scale-up", added: ["127.0.10.3"] }));
    expect(env).toMatchObject({
      SEALANT_CLUSTER: "demo",
      SEALANT_ACTION: "scale-up",
      SEALANT_STEP: "join",
      SEALANT_HOST_IP: "127.0.10.3",
      SEALANT_ROLES: "node",
      SEALANT_HOSTS: "127.0.10.1 127.0.10.2 127.0.10.3",
      SEALANT_MASTERS: "127.0.10.1 127.0.10.2",
      SEALANT_WORKERS: "127.0.10.3",
      SEALANT_FIRST_MASTER: "127.0.10.1",
      SEALANT_ADDED: "127.0.10.3",
      SEALANT_REMOVED: "",
      SEALANT_ROOTFS: "/var/lib/sealant/demo/rootfs",
      GREETING: "cluster",
      LEVEL: "host",
    });
  });

  it("GIVEN a host without a role (sealer's host group with no roles) THEN it is one of SEALANT_HOSTS, not of SEALANT_WORKERS", () => {
    const hosts = [
      { ip: "127.0.10.1", roles: ["master"] },
      { ip: "127.0.10.2", roles: ["node"] },
      { ip: "127.0.10.3", roles: [] },
    ];
    const env = hookEnv("init-host", { ...hosts[2]! }, ctx(hosts));
    expect(env).toMatchObject({ SEALANT_HOSTS: "127.0.10.1 127.0.10.2 127.0.10.3", SEALANT_WORKERS: "127.0.10.2", SEALANT_ROLES: "" });
  });

  it("offers what the hooks wrote to $SEALANT_DATA_ROOT/outputs.json; none when they wrote nothing; bad files named without their values", async () => {
    const files: Record<string, string> = {};
    const readFile = (path: string) => Promise.resolve(files[path]);
    expect(await hooksRuntime.outputs!(readFile, ctx([]))).toEqual({});
    const path = "/var/lib/sealant/demo/outputs.json";
    files[path] = JSON.stringify({ endpoint: "http://127.0.10.1:2379", kubeconfig: "apiVersion: v1 # token-xyz" });
    expect(await hooksRuntime.outputs!(readFile, ctx([]))).toEqual({ endpoint: "http://127.0.10.1:2379", kubeconfig: "apiVersion: v1 # token-xyz" });
    // The parser quotes the text around a fault: none of it is shown (a kubeconfig is in there).
    files[path] = '{"kubeconfig": token-xyz-secret}';
    const notJson = (await hooksRuntime.outputs!(readFile, ctx([])).catch((e: unknown) => e)) as Error;
    expect(notJson.message).toMatch(/outputs.json, written by the image's hooks, is not JSON/);
    expect(notJson.message).not.toContain("token-xyz");
    files[path] = JSON.stringify({ endpoint: "x", kubeconfig: 42 });
    await expect(hooksRuntime.outputs!(readFile, ctx([]))).rejects.toThrow(/"kubeconfig" must be a string/);
    files[path] = JSON.stringify({ url: "token-xyz" });
    const err = (await hooksRuntime.outputs!(readFile, ctx([])).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error;
    expect(err.message).toMatch(/unknown field "url" \(allowed: endpoint, kubeconfig, caCertificate\)/);
    expect(err.message).not.toContain("token-xyz");
  });

  it("is chosen by the image's runtime label, with a clear error otherwise", () => {
    expect(selectRuntime({ runtime: { type: "hooks" } }, "x").kind).toBe("hooks");
    expect(() => selectRuntime({}, "example/app:1")).toThrow(/example\/app:1 declares no runtime: label it io.sealant.runtime=hooks/);
    expect(() => selectRuntime({ runtime: { type: "k3s" } }, "x")).toThrow(/asks for runtime "k3s".*available: hooks/);
  });
});

/**
 * The etcd example's hooks run through the runtime's commands with a real shell and real etcd
 * 3.4 members on loopback addresses — each "host" a data root of its own on this machine
 * (the SSH transport is tested on its own; sandbox hosts join these tests with the executor).
 */
describe("the etcd example's hooks, driven by the hooks runtime", () => {
  const ips = ["127.0.10.231", "127.0.10.232", "127.0.10.233", "127.0.10.234"];
  let root: string;

  async function run(step: LifecycleStep, ip: string, members: string[], over: Partial<RuntimeContext> & { action: Action }): Promise<string> {
    const hosts = members.map((m) => ({ ip: m, roles: ["master"] }));
    const cmd = hooksRuntime.command(
      step,
      { ip, roles: ["master"] },
      ctx(hosts, { rootfs: join(root, "rootfs"), dataRoot: join(root, ip), cluster: "etcd-test", ...over }),
    );
    const { stdout } = await exec("sh", ["-c", cmd.command], { env: { PATH: process.env.PATH!, ...cmd.env }, timeout: 60_000 });
    return stdout;
  }
  async function members(ip: string): Promise<string[]> {
    const { stdout } = await exec("etcdctl", ["--endpoints", `http://${ip}:2379`, "member", "list"], { env: { ...process.env, ETCDCTL_API: "3" } });
    return stdout
      .trim()
      .split("\n")
      .map((l) => l.split(", ")[2]!)
      .sort();
  }

  afterAll(async () => {
    if (!root) return;
    for (const ip of ips) await run("reset", ip, ips, { action: "reset" }).catch(() => undefined);
  });

  it("creates 3 members, joins a 4th, removes one, upgrades, and resets leaving nothing", async () => {
    root = await mkdtemp(join(tmpdir(), "sealant-etcd-hooks-"));
    temps.push(root);
    await cp(resolve(__dirname, "../../../../examples/etcd"), join(root, "rootfs"), { recursive: true });
    await exec("sh", ["-c", `mkdir -p ${root}/rootfs/bin && cp /usr/bin/etcd /usr/bin/etcdctl ${root}/rootfs/bin/`]);
    const three = ips.slice(0, 3);
    // create: init-host everywhere, bootstrap in parallel, check
    for (const ip of three) await run("init-host", ip, three, { action: "create" });
    await Promise.all(three.map((ip) => run("bootstrap", ip, three, { action: "create" })));
    for (const ip of three) await run("check", ip, three, { action: "create" });
    expect(await members(three[0]!)).toEqual(["etcd-127-0-10-231", "etcd-127-0-10-232", "etcd-127-0-10-233"]);
    // scale up: the 4th joins through an existing member
    await run("init-host", ips[3]!, ips, { action: "scale-up", added: [ips[3]!] });
    await run("join", ips[3]!, ips, { action: "scale-up", added: [ips[3]!] });
    expect(await members(three[0]!)).toHaveLength(4);
    // scale down: the 2nd leaves
    const after = ips.filter((ip) => ip !== ips[1]);
    await run("leave", ips[1]!, after, { action: "scale-down", removed: [ips[1]!] });
    await run("reset", ips[1]!, after, { action: "scale-down", removed: [ips[1]!] });
    expect(await members(ips[0]!)).toEqual(["etcd-127-0-10-231", "etcd-127-0-10-233", "etcd-127-0-10-234"]);
    // rolling upgrade, one at a time, healthy after each
    for (const ip of after) await run("upgrade", ip, after, { action: "upgrade" });
    expect(await members(ips[3]!)).toHaveLength(3);
    // reset: no etcd process of this test left
    for (const ip of after) await run("reset", ip, after, { action: "reset" });
    const ps = await exec("pgrep", ["-a", "-x", "etcd"]).catch(() => ({ stdout: "" }));
    expect(ps.stdout.split("\n").filter((l) => l.includes(root))).toEqual([]);
  });
});
