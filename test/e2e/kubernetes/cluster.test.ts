import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCluster, checkCluster, resetCluster, type ClusterEvent } from "../../../src/engine/cluster";
import { parseClusterSpec, type ClusterSpec } from "../../../src/engine/cluster/spec";
import type { Sandbox } from "../../../src/engine/sandbox";
import type { Session } from "../../../src/engine/session";
import { NEW, OLD, eventually, kubectlWith, LEFTOVERS, nodesOf, openRealBed, podsOf, type RealBed, writeKubeconfig } from "./support";
import { inHost } from "../../support/hosts";

/**
 * The kubernetes runtime on real nodes: the real kubeadm, kubelet, containerd, etcd, control
 * plane, kube-proxy, flannel and CoreDNS, built from source by this repo's scripts, in
 * Kubernetes-capable sandbox hosts (own network, cgroup, mount and PID namespaces; a private
 * bridge nothing leaves). Nothing here is a test double. One cluster, in order: create 1 master
 * + 2 workers on the older minor with an application image built FROM the base image, join a
 * worker, drain and remove one, upgrade one minor, reset.
 */
describe("real Kubernetes on Kubernetes-capable sandbox hosts", () => {
  let bed: RealBed;
  let session: Session;
  let sb: Sandbox;
  let app: Record<string, string>;
  let m: string, w1: string, w2: string, w3: string;
  let kubectl: ReturnType<typeof kubectlWith>;
  const events: ClusterEvent[] = [];

  const spec = (image: string, workers: string[]): ClusterSpec =>
    parseClusterSpec({
      name: "real",
      image,
      hosts: [
        { ips: [m], roles: ["master"] },
        { ips: workers, roles: ["node"] },
      ],
      ssh: { privateKeyPath: sb.ssh.pk, knownHosts: sb.ssh.knownHosts },
      runtime: { drainTimeout: 120 },
    });
  const apply = (s: ClusterSpec) => applyCluster({ session, spec: s, onEvent: (e) => events.push(e) });

  beforeAll(async () => {
    bed = await openRealBed("k8sreal", 4, [OLD, NEW]);
    ({ session, sb } = bed);
    // GIVEN the base image for two consecutive minors and an application image FROM each.
    app = bed.app;
    [m, w1, w2, w3] = bed.ips as [string, string, string, string];
  }, 600_000);
  afterAll(async () => {
    await bed?.close();
  });

  it("creates 1 master + 2 workers: every node Ready on the image's version, flannel, CoreDNS and kube-proxy running, the app's pods pulled from the cluster registry", async () => {
    const r = await apply(spec(app[OLD]!, [w1, w2]));
    kubectl = kubectlWith(await writeKubeconfig(join(bed.home, "admin.conf"), r.outputs.kubeconfig));
    // The kubeconfig sealant offers reaches the API from this machine (its server is the first master).
    expect(r.outputs.endpoint).toBe(`https://${m}:6443`);
    expect(await nodesOf(kubectl)).toEqual([m, w1, w2].map((ip) => expect.objectContaining({ ip, ready: true, version: OLD })));

    await eventually("system pods and the app running", async () => {
      const pods = await podsOf(kubectl);
      const of = (ns: string, prefix: string) => pods.filter((p) => p.namespace === ns && p.name.startsWith(prefix));
      return (
        of("kube-flannel", "kube-flannel-ds").filter((p) => p.ready).length === 3 &&
        of("kube-system", "kube-proxy").filter((p) => p.ready).length === 3 &&
        of("kube-system", "coredns").filter((p) => p.ready).length === 2 &&
        of("kube-system", "kube-apiserver-lb").filter((p) => p.ready).length === 2 &&
        of("hello", "hello").filter((p) => p.ready).length === 2
      );
    });
    const pods = await podsOf(kubectl);
    // Images by their upstream names; the hosts have no way off the machine, so every one came
    // from the cluster's registry through containerd's mirror configuration.
    expect(pods.find((p) => p.name.startsWith("kube-apiserver-"))!.images).toEqual([`registry.k8s.io/kube-apiserver:${OLD}`]);
    expect(pods.find((p) => p.namespace === "hello")!.images).toEqual(["docker.io/library/busybox:1.35"]);
    expect(await inHost(sb, w1, "ctr -n k8s.io images ls -q | grep -c '^docker.io/library/busybox:1.35$'")).toBe("1");
    expect(await inHost(sb, w1, "ping -c 1 -W 2 1.1.1.1 > /dev/null 2>&1 && echo reached || echo unreachable")).toBe("unreachable");

    // Workers reach the API through the VIP (haproxy on each worker, health-checking the masters).
    expect(await inHost(sb, w1, "grep apiserver.cluster.local /etc/hosts")).toBe("10.103.97.2 apiserver.cluster.local # sealant-kubernetes");
    expect(await inHost(sb, w1, "grep -c 'server: https://apiserver.cluster.local:6443' /etc/kubernetes/kubelet.conf")).toBe("1");

    // Cluster DNS, Services and pod traffic between nodes: from a pod on w2, the Service's name
    // resolves and both replicas answer (one of them on the other worker).
    const w2Node = (await nodesOf(kubectl)).find((n) => n.ip === w2)!.name;
    // Run to completion, then its log: an attached `kubectl run -i` loses the output of a pod
    // that finishes before the attach (seen on a loaded machine).
    await kubectl(
      "run",
      "probe",
      "-n",
      "hello",
      "--restart=Never",
      "--image=docker.io/library/busybox:1.35",
      `--overrides={"spec":{"nodeName":"${w2Node}"}}`,
      "--",
      "sh",
      "-c",
      // busybox-static's wget crashes in glibc's static resolver; nc with the address nslookup gives does not.
      // The answer is the Address after "Name:" (before it is the DNS server's own, host:53); on a
      // loaded machine the first lookups can time out, so it is asked again for up to a minute.
      'for t in $(seq 1 30); do ip=$(nslookup hello.hello.svc.cluster.local 2> /dev/null | awk \'/^Name:/ { n = 1 } n && /^Address/ { print $2; exit }\'); [ -n "$ip" ] && break; sleep 2; done; echo "service address: $ip"; for i in $(seq 1 16); do printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 "$ip" 80 | tail -n 1; done',
    );
    await eventually(
      "the probe pod finished",
      async () => {
        const phase = await kubectl("get", "pod", "probe", "-n", "hello", "-o", "jsonpath={.status.phase}");
        return phase === "Succeeded" || phase === "Failed";
      },
      240_000,
    );
    const out = await kubectl("logs", "probe", "-n", "hello");
    await kubectl("delete", "pod", "probe", "-n", "hello", "--wait=false");
    const answered = new Set(out.split("\n").filter((l) => l.startsWith("hello from ")));
    expect(answered.size, out).toBe(2);

    const health = await checkCluster({ session, spec: spec(app[OLD]!, [w1, w2]) });
    expect(health.healthy).toBe(true);
  }, 600_000);

  it("joins a worker: it becomes a Ready node and nothing else is touched", async () => {
    const r = await apply(spec(app[OLD]!, [w1, w2, w3]));
    expect(r.plan.summary[0]).toBe(`join ${w3} (node)`);
    expect(await nodesOf(kubectl)).toEqual([m, w1, w2, w3].map((ip) => expect.objectContaining({ ip, ready: true, version: OLD })));
  }, 600_000);

  it("drains and removes a worker: its pods are rescheduled, its node is gone, nothing of Kubernetes is left on it", async () => {
    const w1Node = (await nodesOf(kubectl)).find((n) => n.ip === w1)!.name;
    await apply(spec(app[OLD]!, [w2, w3]));
    expect((await nodesOf(kubectl)).map((n) => n.ip)).toEqual([m, w2, w3]);
    await eventually("the app's two replicas ready away from the removed node", async () => {
      const hello = (await podsOf(kubectl, "hello")).filter((p) => p.name.startsWith("hello-"));
      return hello.filter((p) => p.ready).length === 2 && hello.every((p) => p.node !== w1Node);
    });
    expect(await inHost(sb, w1, LEFTOVERS)).toBe("");
  }, 600_000);

  it("upgrades one minor with drains: every node reports the new version and the app keeps serving", async () => {
    // The app stays available while hosts are drained one at a time: watched from this machine.
    let watching = true;
    let outages = 0;
    const watcher = (async () => {
      while (watching) {
        try {
          const d = JSON.parse(await kubectl("get", "deployment", "hello", "-n", "hello", "-o", "json")) as { status: { availableReplicas?: number } };
          if (!d.status.availableReplicas) outages++;
        } catch {
          // the API server itself restarts during the control plane's upgrade
        }
        await new Promise((r) => setTimeout(r, 2000));
      }
    })();
    const r = await apply(spec(app[NEW]!, [w2, w3])).finally(() => (watching = false));
    await watcher;
    expect(r.plan.actions).toContain("upgrade");
    expect(await nodesOf(kubectl)).toEqual([m, w2, w3].map((ip) => expect.objectContaining({ ip, ready: true, version: NEW })));
    const apiserver = (await podsOf(kubectl, "kube-system")).find((p) => p.name.startsWith("kube-apiserver-h"))!;
    expect(apiserver.images).toEqual([`registry.k8s.io/kube-apiserver:${NEW}`]);
    expect(outages).toBe(0);
    await eventually(
      "the app's two replicas ready after the upgrade",
      async () => (await podsOf(kubectl, "hello")).filter((p) => p.name.startsWith("hello-") && p.ready).length === 2,
    );
  }, 900_000);

  it("reset leaves no process, mount, container, interface, rule or file of the cluster on any host", async () => {
    await resetCluster({ session, spec: spec(app[NEW]!, [w2, w3]) });
    for (const ip of [m, w1, w2, w3]) expect(`${ip}:\n${await inHost(sb, ip, LEFTOVERS)}`).toBe(`${ip}:\n`);
  }, 300_000);
});
