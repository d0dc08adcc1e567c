import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCluster, resetCluster } from "../../../src/engine/cluster";
import { formatPlan } from "../../../src/engine/cluster/plan";
import { parseClusterSpec, type ClusterSpec } from "../../../src/engine/cluster/spec";
import { sandboxGet, startHost, stopHost, type Sandbox } from "../../../src/engine/sandbox";
import type { Session } from "../../../src/engine/session";
import { etcdMembers, eventually, NEW, kubectlWith, LEFTOVERS, nodesOf, openRealBed, type RealBed, writeKubeconfig } from "./support";
import { inHost } from "../../support/hosts";

/**
 * Three real control planes with stacked etcd (the memory measured here allows it: see the
 * figures this test prints), a worker reaching them through its haproxy VIP, a master removed
 * (its etcd member goes, the worker stops sending to it) and joined again, an unreachable master
 * removed by force and joined again when it is back; then a master host killed and replaced by
 * a spare host in one change (quorum checked first, unsafe variants refused), and the first
 * master killed and replaced the same way. Real components only.
 */
describe("real Kubernetes: three masters (HA)", () => {
  let bed: RealBed;
  let session: Session;
  let sb: Sandbox;
  let image: string;
  let m1: string, m2: string, m3: string, w: string, m5: string;
  let adminConf: string;
  let spareBefore: string;
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
  /** etcd's member list, asked inside a master's etcd pod (the first master's unless said): peer URLs. */
  const etcdPeers = async (on = m1): Promise<string[]> => {
    const node = (await nodesOf(kubectl)).find((n) => n.ip === on)!.name;
    return (await etcdMembers(kubectl, `etcd-${node}`)).map((f) => f[3]!).sort();
  };
  const lbBackends = async () => (await inHost(sb, w, "awk '$1 == \"server\" { print $3 }' /etc/kubernetes/apiserver-lb/haproxy.cfg")).split("\n").sort();

  beforeAll(async () => {
    // The fifth host is a spare: out of the cluster until it replaces a dead master.
    bed = await openRealBed("k8sha", 5, [NEW]);
    ({ session, sb } = bed);
    image = bed.app[NEW]!;
    [m1, m2, m3, w, m5] = bed.ips as [string, string, string, string, string];
    // What the spare holds before any cluster (the machine's own containerd configuration shows through).
    spareBefore = await inHost(sb, m5, LEFTOVERS);
  }, 600_000);
  afterAll(async () => {
    await bed?.close();
  });

  it("creates three control planes with stacked etcd and a worker balanced across them", async () => {
    const r = await applyCluster({ session, spec: spec([m1, m2, m3]) });
    adminConf = r.outputs.kubeconfig!;
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
      figures.push(
        `${h.ip} ${h.ip === w ? "worker" : h.ip === m5 ? "spare" : "master"} rss ${field("total_rss").toFixed(0)} MiB, page cache ${field("total_cache").toFixed(0)} MiB`,
      );
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
    // The kept masters' API servers restart for their new SANs last: their nodes may be NotReady for a moment.
    await eventually("every node Ready", async () => (await nodesOf(kubectl)).every((n) => n.ready), 180_000);
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

  /** The hello app's Service answering through the API server's proxy: a workload still serving. */
  const hello = () => kubectl("get", "--raw", "/api/v1/namespaces/hello/services/hello:80/proxy/");
  /** Asks the API through the worker's VIP (its kubelet's kubeconfig, the worker's haproxy) every 2 s until stopped: answers and failures. */
  const probeVip = () => {
    const tally = { answered: 0, failed: 0, failures: [] as string[] };
    const t0 = Date.now();
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        await inHost(sb, w, "/usr/bin/kubectl --kubeconfig /etc/kubernetes/kubelet.conf --request-timeout=5s get --raw /readyz").then(
          () => tally.answered++,
          (err: unknown) => {
            tally.failed++;
            // When and why, for the figures this test prints (the end of kubectl's error).
            tally.failures.push(
              `${((Date.now() - t0) / 1000).toFixed(0)}s ${String((err as Error).message)
                .replace(/\s+/g, " ")
                .trim()
                .slice(-160)}`,
            );
          },
        );
        await new Promise((r) => setTimeout(r, 2000));
      }
    })();
    return async () => {
      stop = true;
      await loop;
      return tally;
    };
  };
  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => new Error("not refused"),
      (e: unknown) => e as Error,
    );

  it("a dead master is replaced in one change: previewed, unsafe variants refused before anything changes, its etcd member and node go before the spare joins as a control plane", async () => {
    expect(await hello()).toMatch(/^hello from hello-/);
    await stopHost(sb, m3);
    try {
      // A master joining while the dead one stays: 4 members would need 3 healthy. Refused before any step.
      const joinKeeping = await refusal(applyCluster({ session, spec: spec([m1, m2, m3, m5]) }));
      expect(joinKeeping.message).toContain(
        `${m5} cannot join as a master while ${m3} does not answer and stays a member (4 members need 3 healthy); nothing was changed. In the same change drop ${m3} from the spec`,
      );
      expect(joinKeeping.message).toMatch(new RegExp(`^etcd: 3 members, 2 healthy \\(${m3} unhealthy: [^)]+\\): `));
      expect(joinKeeping.name).toBe("QuorumError");
      // A healthy master removed while the dead one stays: 1 healthy of 2 is no quorum.
      const removeHealthy = await refusal(applyCluster({ session, spec: spec([m1, m3]), forceRemoval: true }));
      expect(removeHealthy.message).toContain(`removing ${m2} (healthy) would leave 1 healthy of 2 etcd members, below its quorum of 2; nothing was changed`);
      expect(removeHealthy.name).toBe("QuorumError");
      expect(await etcdPeers()).toEqual([m1, m2, m3].map((ip) => `https://${ip}:2380`).sort());
      expect(await inHost(sb, m5, LEFTOVERS)).toBe(spareBefore);

      // The preview: the removal by force (what runs on the first master, what does not run), before the join; etcd's members.
      const dry = await applyCluster({ session, spec: spec([m1, m2, m5]), forceRemoval: true, dryRun: true });
      console.log(formatPlan(dry.plan));
      const forcedLine = `remove ${m3} by force: it cannot be reached; from ${m1}: its etcd member and Node are deleted; its own reset and file removal do not run (its files stay)`;
      const s = dry.plan.summary;
      expect(s.slice(0, 3)).toEqual([`remove ${m3} (master)`, forcedLine, `join ${m5} (master)`]);
      expect(s.find((l) => l.startsWith("etcd: "))).toMatch(
        new RegExp(`^etcd: 3 members, 2 healthy \\(${m3} unhealthy: [^)]+\\); after the change 3 members$`),
      );
      const steps = dry.plan.phases.flatMap((p) => p.steps.filter((x) => x.host === m3).map((x) => x.description));
      expect(steps).toEqual([
        `${m3} is removed by force from ${m1}: its etcd member and Node are deleted (it cannot be reached)`,
        `reset ${m3}: not run (it cannot be reached; removed by force)`,
        `forget ${m3} in the cluster's record; its files stay (it cannot be reached; removed by force)`,
      ]);
      const names = dry.plan.phases.map((p) => p.name);
      expect(names.indexOf("runtime:leave")).toBeLessThan(names.indexOf("runtime:join-masters"));

      const stopProbe = probeVip();
      const started = Date.now();
      const r = await applyCluster({ session, spec: spec([m1, m2, m5]), forceRemoval: true });
      const took = (Date.now() - started) / 1000;
      const vip = await stopProbe();
      console.log(
        `dead master ${m3} replaced by ${m5} in ${took.toFixed(0)} s; the API through the worker's VIP meanwhile: ${vip.answered} answers, ${vip.failed} failures${vip.failures.length > 0 ? `:\n  ${vip.failures.join("\n  ")}` : ""}`,
      );
      expect(r.plan.summary.slice(0, 3)).toEqual(s.slice(0, 3));
      // The change ends restarting the API servers one at a time for their SANs: a kubelet whose lease
      // could not be renewed meanwhile is NotReady for a moment on a loaded host (CI saw it), then Ready.
      await eventually("every node Ready", async () => (await nodesOf(kubectl)).every((n) => n.ready), 120_000);
      expect(await nodesOf(kubectl)).toEqual([m1, m2, w, m5].map((ip) => expect.objectContaining({ ip, ready: true, version: NEW })));
      expect(await etcdPeers()).toEqual([m1, m2, m5].map((ip) => `https://${ip}:2380`).sort());
      expect(await lbBackends()).toEqual([m1, m2, m5].map((ip) => `${ip}:6443`).sort());
      expect(vip.answered).toBeGreaterThan(0);
      // The worker's haproxy reloads the new masters in place: its VIP never refuses a connection (a replaced pod did, ~35 s).
      expect(vip.failures.filter((f) => /connection refused/i.test(f))).toEqual([]);
      expect(await hello()).toMatch(/^hello from hello-/);
    } finally {
      await startHost(sb, m3);
      sb = (await sandboxGet(sb))!;
    }
  }, 900_000);

  it("a dead FIRST master is replaced too: a current master listed first works the change (lock, record, join tokens, etcd removal); a new host listed first is refused", async () => {
    await stopHost(sb, m1);
    try {
      // The API from here through m2 while m1 is gone (its certificate names every master).
      kubectl = kubectlWith(await writeKubeconfig(join(bed.home, "admin-m2.conf"), adminConf.replaceAll(`https://${m1}:6443`, `https://${m2}:6443`)));
      // m3 is back with the files (and record) of the membership it lost: listed first it is refused, the order to write named.
      const newFirst = await refusal(applyCluster({ session, spec: spec([m3, m2, m5]), forceRemoval: true, dryRun: true }));
      expect(newFirst.message).toContain(`the first master listed, ${m3}, is not a master of the running cluster yet`);
      expect(newFirst.message).toContain(`List a current master first: masters ${m2}, ${m5}, ${m3}`);
      expect(newFirst.name).toBe("PlanError");

      const started = Date.now();
      const r = await applyCluster({ session, spec: spec([m2, m5, m3]), forceRemoval: true });
      console.log(`${formatPlan(r.plan)}\ndead first master ${m1} replaced by ${m3} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
      expect(r.plan.summary.slice(0, 3)).toEqual([
        `remove ${m1} (master)`,
        `remove ${m1} by force: it cannot be reached; from ${m2}: its etcd member and Node are deleted; its own reset and file removal do not run (its files stay)`,
        `join ${m3} (master)`,
      ]);
      expect(r.plan.summary.find((l) => l.startsWith("etcd: "))).toMatch(
        new RegExp(`^etcd: 3 members, 2 healthy \\(${m1} unhealthy: [^)]+\\); after the change 3 members$`),
      );
      expect(r.outputs.endpoint).toBe(`https://${m2}:6443`);
      kubectl = kubectlWith(await writeKubeconfig(join(bed.home, "admin.conf"), r.outputs.kubeconfig));
      await eventually("every node Ready", async () => (await nodesOf(kubectl)).every((n) => n.ready), 120_000);
      expect(await nodesOf(kubectl)).toEqual([m2, m3, w, m5].map((ip) => expect.objectContaining({ ip, ready: true, version: NEW })));
      expect(await etcdPeers(m2)).toEqual([m2, m3, m5].map((ip) => `https://${ip}:2380`).sort());
      expect(await lbBackends()).toEqual([m2, m3, m5].map((ip) => `${ip}:6443`).sort());
      expect(await hello()).toMatch(/^hello from hello-/);
    } finally {
      await startHost(sb, m1);
      sb = (await sandboxGet(sb))!;
    }
  }, 900_000);

  it("reset leaves nothing on any host", async () => {
    // m1 holds the files of the membership it lost (removed by force): named in the spec, it is reset too.
    await resetCluster({ session, spec: spec([m2, m3, m5, m1]) });
    for (const ip of [m1, m2, m3, w, m5]) expect(`${ip}:\n${await inHost(sb, ip, LEFTOVERS)}`).toBe(`${ip}:\n`);
  }, 300_000);
});
