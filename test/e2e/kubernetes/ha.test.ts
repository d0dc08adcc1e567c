import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCluster, resetCluster } from "../../../src/engine/cluster";
import { parseClusterSpec, type ClusterSpec } from "../../../src/engine/cluster/spec";
import { sandboxGet, startHost, stopHost, type Sandbox } from "../../../src/engine/sandbox";
import type { Session } from "../../../src/engine/session";
import { etcdMembers, NEW, kubectlWith, LEFTOVERS, nodesOf, openRealBed, type RealBed, writeKubeconfig } from "./support";
import { inHost } from "../../support/hosts";

/**
 * Three real control planes with stacked etcd (the memory measured here allows it: see the
 * figures this test prints), a worker reaching them through its haproxy VIP, a master removed
 * (its etcd member goes, the worker stops sending to it) and joined again, an unreachable master
 * removed by force and joined again when it is back. Real components only.
 */
describe("real Kubernetes: three masters (HA)", () => {
  let bed: RealBed;
  let session: Session;
  let sb: Sandbox;
  let image: string;
  let m1: string, m2: string, m3: string, w: string;
  let kubectl: ReturnType<typeof kubectlWith>;

  const spec = (masters: string[]): ClusterSpec =>
    parseClusterSpec({
      name: "ha",
      image,
      hosts: [
        { ips: masters, roles: ["master"] },
        { ips: [w], roles: ["node"] },
      ],
      ssh: { privateKeyPath: sb.ssh.pk, knownHosts: sb.ssh.knownHosts },
      runtime: { drainTimeout: 120 },
    });
  /** etcd's member list, asked inside the first master's etcd pod: peer URLs. */
  const etcdPeers = async (): Promise<string[]> => {
    const node = (await nodesOf(kubectl)).find((n) => n.ip === m1)!.name;
    return (await etcdMembers(kubectl, `etcd-${node}`)).map((f) => f[3]!).sort();
  };
  const lbBackends = async () => (await inHost(sb, w, "awk '$1 == \"server\" { print $3 }' /etc/kubernetes/apiserver-lb/haproxy.cfg")).split("\n").sort();

  beforeAll(async () => {
    bed = await openRealBed("k8sha", 4, [NEW]);
    ({ session, sb } = bed);
    image = bed.app[NEW]!;
    [m1, m2, m3, w] = bed.ips as [string, string, string, string];
  }, 600_000);
  afterAll(async () => {
    await bed?.close();
  });

  it("creates three control planes with stacked etcd and a worker balanced across them", async () => {
    const r = await applyCluster({ session, spec: spec([m1, m2, m3]) });
    kubectl = kubectlWith(await writeKubeconfig(join(bed.home, "admin.conf"), r.outputs.kubeconfig));
    expect(await nodesOf(kubectl)).toEqual([m1, m2, m3, w].map((ip) => expect.objectContaining({ ip, ready: true, version: NEW })));
    expect(await etcdPeers()).toEqual([m1, m2, m3].map((ip) => `https://${ip}:2380`).sort());
    expect(await lbBackends()).toEqual([m1, m2, m3].map((ip) => `${ip}:6443`).sort());

    // Memory per host, from each host's own memory cgroup (reported, not asserted).
    const running = (await sandboxGet(sb))!;
    const figures: string[] = [];
    for (const h of running.hosts) {
      const mem = h.cgroups?.find((c) => /\/memory\//.test(c));
      const stat = mem ? await readFile(join(mem, "memory.stat"), "utf8").catch(() => "") : "";
      const field = (k: string) => Number(new RegExp(`^${k} (\\d+)$`, "m").exec(stat)?.[1] ?? 0) / 2 ** 20;
      figures.push(`${h.ip} ${h.ip === w ? "worker" : "master"} rss ${field("total_rss").toFixed(0)} MiB, page cache ${field("total_cache").toFixed(0)} MiB`);
    }
    console.log(`memory per host (its memory cgroup): ${figures.join("; ")}`);
  }, 900_000);

  it("removes a master (its etcd member goes, the worker stops using it) and joins it again", async () => {
    const r = await applyCluster({ session, spec: spec([m1, m3]) });
    expect(r.plan.summary).toContain(`remove ${m2} (master)`);
    expect((await nodesOf(kubectl)).map((n) => n.ip)).toEqual([m1, m3, w]);
    expect(await etcdPeers()).toEqual([m1, m3].map((ip) => `https://${ip}:2380`).sort());
    expect(await lbBackends()).toEqual([m1, m3].map((ip) => `${ip}:6443`).sort());
    expect(await inHost(sb, m2, LEFTOVERS)).toBe("");

    await applyCluster({ session, spec: spec([m1, m3, m2]) });
    expect(await nodesOf(kubectl)).toEqual([m1, m2, m3, w].map((ip) => expect.objectContaining({ ip, ready: true })));
    expect(await etcdPeers()).toEqual([m1, m2, m3].map((ip) => `https://${ip}:2380`).sort());
    expect(await lbBackends()).toEqual([m1, m2, m3].map((ip) => `${ip}:6443`).sort());
  }, 900_000);

  it("an unreachable master is removed only by force (its etcd member and node go, the worker stops using it); back again, it is reset and joins as a control plane", async () => {
    await stopHost(sb, m3);
    try {
      const refused = await applyCluster({ session, spec: spec([m1, m2]) }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(Error);
      expect((refused as Error).message).toContain(m3);
      expect(await etcdPeers()).toHaveLength(3);

      await applyCluster({ session, spec: spec([m1, m2]), forceRemoval: true });
      expect((await nodesOf(kubectl)).map((n) => n.ip)).toEqual([m1, m2, w]);
      expect(await etcdPeers()).toEqual([m1, m2].map((ip) => `https://${ip}:2380`).sort());
      expect(await lbBackends()).toEqual([m1, m2].map((ip) => `${ip}:6443`).sort());
    } finally {
      await startHost(sb, m3);
      sb = (await sandboxGet(sb))!; // m3's new process ids, for inHost
    }
    // It comes back with its kubelet, certificates and etcd data from the membership that was removed.
    const r = await applyCluster({ session, spec: spec([m1, m2, m3]) });
    expect(r.plan.summary[0]).toBe(`join ${m3} (master)`);
    expect(await nodesOf(kubectl)).toEqual([m1, m2, m3, w].map((ip) => expect.objectContaining({ ip, ready: true })));
    expect(await etcdPeers()).toEqual([m1, m2, m3].map((ip) => `https://${ip}:2380`).sort());
    expect(await lbBackends()).toEqual([m1, m2, m3].map((ip) => `${ip}:6443`).sort());
  }, 900_000);

  it("reset leaves nothing on any host", async () => {
    await resetCluster({ session, spec: spec([m1, m2, m3]) });
    for (const ip of [m1, m2, m3, w]) expect(`${ip}:\n${await inHost(sb, ip, LEFTOVERS)}`).toBe(`${ip}:\n`);
  }, 300_000);
});
