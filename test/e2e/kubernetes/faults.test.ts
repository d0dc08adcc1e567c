import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCluster, ApplyError } from "../../../src/engine/cluster";
import { parseClusterSpec, type ClusterSpec } from "../../../src/engine/cluster/spec";
import { sandboxGet, startHost, stopHost, type Sandbox } from "../../../src/engine/sandbox";
import type { Session } from "../../../src/engine/session";
import { NEW, eventually, kubectlWith, LEFTOVERS, nodesOf, openRealBed, podsOf, type RealBed, writeKubeconfig } from "./support";
import { inHost } from "../../support/hosts";

/**
 * Faults on real nodes (real kubeadm, kubelet, containerd, control plane; no test doubles): a
 * worker whose join fails half way, a drain a PodDisruptionBudget never lets finish, a worker
 * that is unreachable when it is removed and comes back afterwards. Each fault is one a user
 * meets: a bad kubelet flag on a host, a budget stricter than the replicas, a host powered off.
 * Then nodes' labels and taints changed in place.
 */
/** Whether an IPv4 address lies in a CIDR range. */
function inCidr(ip: string, cidr: string): boolean {
  const [net, bits] = cidr.split("/");
  const n = (a: string) => a.split(".").reduce((x, o) => x * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  return /^\d+\.\d+\.\d+\.\d+$/.test(ip) && Math.floor(n(ip) / size) === Math.floor(n(net ?? "") / size);
}

describe("real Kubernetes: faults and day-two changes on real nodes", () => {
  let bed: RealBed;
  let session: Session;
  let sb: Sandbox;
  let image: string;
  let m: string, w1: string, w2: string;
  let kubectl: ReturnType<typeof kubectlWith>;

  const spec = (workers: string[], drainTimeout = 120, workerSettings: Record<string, unknown> = {}): ClusterSpec =>
    parseClusterSpec({
      name: "faults",
      image,
      hosts: [{ ips: [m], roles: ["master"] }, ...(workers.length > 0 ? [{ ips: workers, roles: ["node"], ...workerSettings }] : [])],
      ssh: { privateKeyPath: sb.ssh.pk, knownHosts: sb.ssh.knownHosts },
      runtime: {
        drainTimeout,
        // kubeadm waits 4 min for a kubelet that never answers by default; a failing join here should not take that long.
        kubeadm: [{ apiVersion: "kubeadm.k8s.io/v1beta4", kind: "JoinConfiguration", timeouts: { kubeletHealthCheck: "20s", tlsBootstrap: "60s" } }],
      },
    });
  const helloPods = async () => (await podsOf(kubectl, "hello")).filter((p) => p.name.startsWith("hello-"));
  const nodeName = async (ip: string) => (await nodesOf(kubectl)).find((n) => n.ip === ip)?.name;
  /** What the API and w1 itself say about w1's pods: to name the cause when a pod there does not run. */
  const w1Evidence = async (node: string, pod?: string) => {
    const api = async (...args: string[]) => kubectl(...args).catch((e: unknown) => String(e));
    const onW1 = async (script: string) => inHost(sb, w1, script).catch((e: unknown) => String(e));
    return [
      `--- node ${node} podCIDR: ${await api("get", "node", node, "-o", "jsonpath={.spec.podCIDR}")}`,
      ...(pod ? [`--- kubectl describe pod ${pod}\n${await api("-n", "hello", "describe", "pod", pod)}`] : []),
      `--- pods on ${node}\n${await api("get", "pods", "-A", "-o", "wide", "--field-selector", `spec.nodeName=${node}`)}`,
      `--- ${w1}: CNI configuration, flannel's lease, cni0\n${await onW1("head -c 2000 /etc/cni/net.d/*; cat /run/flannel/subnet.env; ip -4 addr show cni0")}`,
      `--- ${w1}: crictl pods\n${await onW1("crictl pods 2>&1 | head -n 30")}`,
      `--- ${w1}: kubelet log tail\n${await onW1("journalctl -u kubelet -n 40 2>&1 | cut -c 1-400")}`,
    ].join("\n");
  };

  beforeAll(async () => {
    bed = await openRealBed("k8sfault", 3, [NEW]);
    ({ session, sb } = bed);
    image = bed.app[NEW]!;
    [m, w1, w2] = bed.ips as [string, string, string];
  }, 600_000);
  afterAll(async () => {
    await bed?.close();
  });

  it("a worker whose join fails half way (its kubelet cannot start) is named; once fixed, the next apply clears what the failed join left and joins it", async () => {
    // A flag this kubelet does not know, from the host's own /etc/default/kubelet.
    await inHost(sb, w2, "echo 'KUBELET_EXTRA_ARGS=--no-such-flag' > /etc/default/kubelet");
    const err = await applyCluster({ session, spec: spec([w1, w2]) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyError);
    expect((err as ApplyError).hosts).toEqual([w2]);
    expect((err as Error).message).toMatch(/kubelet/);
    // Half way: kubeadm had written the cluster's CA and the kubelet's configuration.
    expect(await inHost(sb, w2, "ls /etc/kubernetes/pki/ca.crt /var/lib/kubelet/config.yaml")).toBe("/etc/kubernetes/pki/ca.crt\n/var/lib/kubelet/config.yaml");

    await inHost(sb, w2, "rm /etc/default/kubelet");
    const r = await applyCluster({ session, spec: spec([w1, w2]) });
    // The create goes on where it stopped: only w2 joins, and the image's app is launched as a create does last.
    expect(r.plan.actions).toEqual(["create"]);
    expect(r.plan.phases.filter((p) => p.name.startsWith("runtime:join") || p.name === "runtime:bootstrap").flatMap((p) => p.steps.map((s) => s.host))).toEqual(
      [w2],
    );
    kubectl = kubectlWith(await writeKubeconfig(join(bed.home, "admin.conf"), r.outputs.kubeconfig));
    expect(await nodesOf(kubectl)).toEqual([m, w1, w2].map((ip) => expect.objectContaining({ ip, ready: true, version: NEW })));
    await eventually("the app's two replicas ready", async () => (await helloPods()).filter((p) => p.ready).length === 2);
  }, 900_000);

  it("a drain a PodDisruptionBudget never lets finish times out: the removal stops naming the host, which stays schedulable with its pods; with the budget met the next apply removes it", async () => {
    // Two replicas, both required: no eviction can ever be allowed.
    await kubectl("-n", "hello", "patch", "pdb", "hello", "--type=merge", "-p", '{"spec":{"minAvailable":2}}');
    const w2Node = (await nodeName(w2))!;
    const err = await applyCluster({ session, spec: spec([w1], 15) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyError);
    expect((err as ApplyError).hosts).toEqual([w2]);
    expect((err as Error).message).toMatch(/disruption budget/);
    const node = JSON.parse(await kubectl("get", "node", w2Node, "-o", "json")) as { spec: { unschedulable?: boolean } };
    expect(node.spec.unschedulable ?? false).toBe(false);
    expect((await helloPods()).filter((p) => p.ready).length).toBe(2);

    await kubectl("-n", "hello", "patch", "pdb", "hello", "--type=merge", "-p", '{"spec":{"minAvailable":1}}');
    await applyCluster({ session, spec: spec([w1], 120) });
    expect((await nodesOf(kubectl)).map((n) => n.ip)).toEqual([m, w1]);
    await eventually("the app's two replicas ready on the remaining worker", async () => {
      const hello = await helloPods();
      return hello.length === 2 && hello.every((p) => p.ready && p.node !== w2Node);
    });
    expect(await inHost(sb, w2, LEFTOVERS)).toBe("");
  }, 900_000);

  it("an unreachable worker is removed only by force (its node deleted from the master); back again, it joins cleanly", async () => {
    await applyCluster({ session, spec: spec([w1, w2]) });
    await stopHost(sb, w1);
    try {
      const refused = await applyCluster({ session, spec: spec([w2]) }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(Error);
      expect((refused as Error).message).toContain(w1);
      expect((await nodesOf(kubectl)).map((n) => n.ip)).toEqual([m, w1, w2]);

      await applyCluster({ session, spec: spec([w2]), forceRemoval: true });
      expect((await nodesOf(kubectl)).map((n) => n.ip)).toEqual([m, w2]);
      await eventually("the app's two replicas ready on the remaining worker", async () => (await helloPods()).filter((p) => p.ready).length === 2);
    } finally {
      await startHost(sb, w1);
      sb = (await sandboxGet(sb))!; // w1's new process ids, for inHost
    }
    // The host comes back with everything the forced removal could not clear: joined again, it is a working node.
    const r = await applyCluster({ session, spec: spec([w2, w1]) });
    expect(r.plan.summary[0]).toBe(`join ${w1} (node)`);
    expect(await nodesOf(kubectl)).toEqual([m, w1, w2].map((ip) => expect.objectContaining({ ip, ready: true, version: NEW })));
    // Its pods run, with addresses from the pod range of its new Node (the old one went with the
    // forced removal): not over the old range's CNI configuration and bridge, which the host kept.
    const w1Node = (await nodeName(w1))!;
    const podRange = await kubectl("get", "node", w1Node, "-o", "jsonpath={.spec.podCIDR}");
    const probe = await kubectl(
      "run",
      "probe-w1",
      "-n",
      "hello",
      "--rm",
      "-i",
      "--restart=Never",
      // busybox is on the node already (the app's image); the pod waits only for its sandbox.
      "--pod-running-timeout=2m",
      "--image=docker.io/library/busybox:1.35",
      `--overrides={"spec":{"nodeName":"${w1Node}"}}`,
      "--",
      "sh",
      "-c",
      "echo ran; ip -4 addr show eth0",
    ).catch(async (e: unknown) => {
      // Why the pod did not run, from the API and from the node itself.
      throw new Error(`${(e as Error).message}\n${await w1Evidence(w1Node, "probe-w1").catch((err: unknown) => String(err))}`);
    });
    expect(probe).toContain("ran");
    const podIp = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(probe)?.[1] ?? "";
    expect({ podIp, podRange, inRange: inCidr(podIp, podRange) }).toEqual({ podIp, podRange, inRange: true });
  }, 900_000);

  it("changed labels and taints are set on the running nodes and dropped ones removed, with nothing else done", async () => {
    const labelsAndTaints = async () =>
      Promise.all(
        [w1, w2].map(async (ip) => {
          const n = JSON.parse(await kubectl("get", "node", (await nodeName(ip))!, "-o", "json")) as {
            metadata: { labels: Record<string, string> };
            spec: { taints?: { key: string; value?: string; effect: string }[] };
          };
          // node.kubernetes.io/* taints belong to the node lifecycle controller (a kubelet late with its heartbeat under CI load
          // gets not-ready for a moment); only the spec's taints are sealant's.
          const own = (n.spec.taints ?? []).filter((t) => !t.key.startsWith("node.kubernetes.io/"));
          return { tier: n.metadata.labels["tier"], taints: own.map((t) => `${t.key}=${t.value ?? ""}:${t.effect}`) };
        }),
      );
    const r = await applyCluster({ session, spec: spec([w2, w1], 120, { labels: { tier: "web" }, taints: ["dedicated=web:PreferNoSchedule"] }) });
    expect(r.plan.summary).toEqual([`set labels and taints on ${w2}, ${w1}`]);
    expect(r.plan.phases.map((p) => p.name)).toEqual(["host-settings"]);
    expect(await labelsAndTaints()).toEqual([w1, w2].map(() => ({ tier: "web", taints: ["dedicated=web:PreferNoSchedule"] })));

    const back = await applyCluster({ session, spec: spec([w2, w1]) });
    expect(back.plan.summary).toEqual([`set labels and taints on ${w2}, ${w1}`]);
    expect(await labelsAndTaints()).toEqual([w1, w2].map(() => ({ tier: undefined, taints: [] })));
    expect((await applyCluster({ session, spec: spec([w2, w1]) })).plan.phases).toEqual([]);
  }, 600_000);
});
