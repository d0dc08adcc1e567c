import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCluster, type ClusterEvent } from "../../../src/engine/cluster";
import { formatPlan, type Plan } from "../../../src/engine/cluster/plan";
import { parseClusterSpec, type ClusterSpec } from "../../../src/engine/cluster/spec";
import type { Sandbox } from "../../../src/engine/sandbox";
import type { Session } from "../../../src/engine/session";
import { inHost } from "../../support/hosts";
import { NEW, OLD, OLDEST, kubectlWith, nodesOf, openRealBed, type NodeView, type RealBed, writeKubeconfig } from "./support";

/**
 * Upgrades and kubeadm configuration changes on a real cluster (real kubeadm, kubelet, etcd and
 * control plane; nothing here is a test double), one cluster of 1 master + 1 worker, in order:
 * created on v1.29.15 (kubeadm's v1beta3 config API) with an API server argument and a kubelet
 * setting of the spec's; a change of two minors refused without an image of the middle minor,
 * previewed through `upgrade.through` as two one-minor upgrades, then applied in one change —
 * v1.29.15 -> v1.30.14 -> v1.31.4, across kubeadm's config API change (v1beta3 -> v1beta4), with
 * a changed API server argument, every host checked on v1.30.14 before the first v1.31.4 step;
 * then the kubeadm configuration alone changed on v1.31.4 — each change found applied where
 * kubeadm keeps it (the kubeadm-config and kubelet-config ConfigMaps) and where it acts (the
 * static pod's manifest, the running process, the worker's kubelet).
 */
describe("real Kubernetes upgrades and kubeadm configuration changes", () => {
  let bed: RealBed;
  let session: Session;
  let sb: Sandbox;
  let m: string, w: string;
  let kubectl: ReturnType<typeof kubectlWith>;
  /** Every event of the test's applies, with when it came. */
  const events: { at: number; e: ClusterEvent }[] = [];
  let onEvent: ((e: ClusterEvent) => void) | undefined;
  /** The two-minor change's plan as previewed. */
  let preview: Plan | undefined;

  const kubeadm = (ttl: string, maxPods: number) => [
    { apiVersion: "kubeadm.k8s.io/v1beta3", kind: "ClusterConfiguration", apiServer: { extraArgs: { "event-ttl": ttl } } },
    { apiVersion: "kubelet.config.k8s.io/v1beta1", kind: "KubeletConfiguration", maxPods },
  ];
  const spec = (image: string, ttl: string, maxPods: number, through?: string[]): ClusterSpec =>
    parseClusterSpec({
      name: "upgrades",
      image,
      hosts: [
        { ips: [m], roles: ["master"] },
        { ips: [w], roles: ["node"] },
      ],
      ssh: { privateKeyPath: sb.ssh.pk, knownHosts: sb.ssh.knownHosts },
      runtime: { drainTimeout: 120, kubeadm: kubeadm(ttl, maxPods) },
      ...(through ? { upgrade: { through } } : {}),
    });
  /** sealant's base image of a version (no app: its PodDisruptionBudget would keep the one worker from draining). */
  const base = (v: string) => `sealant/kubernetes:${v}`;
  const apply = (s: ClusterSpec, dryRun = false) =>
    applyCluster({
      session,
      spec: s,
      dryRun,
      onEvent: (e) => {
        events.push({ at: Date.now(), e });
        onEvent?.(e);
      },
    });

  /** Where kubeadm keeps the configuration, and where it acts: the ConfigMaps, the API server's manifest and process, the worker's kubelet. */
  const applied = async () => {
    const cm = (name: string, key: string) => kubectl("get", "configmap", name, "-n", "kube-system", "-o", `jsonpath={.data.${key}}`);
    return {
      clusterConfiguration: await cm("kubeadm-config", "ClusterConfiguration"),
      kubeletConfig: await cm("kubelet-config", "kubelet"),
      manifest: await inHost(sb, m, "grep -e '--event-ttl' /etc/kubernetes/manifests/kube-apiserver.yaml"),
      running: await inHost(sb, m, "ps -eo args | grep '^kube-apiserver' | grep -o -e '--event-ttl=[^ ]*'"),
      workerKubelet: await inHost(sb, w, "grep -e '^maxPods' /var/lib/kubelet/config.yaml"),
    };
  };

  beforeAll(async () => {
    bed = await openRealBed("k8supg", 2, [OLDEST, OLD, NEW]);
    ({ session, sb } = bed);
    [m, w] = bed.ips as [string, string];
  }, 900_000);
  afterAll(async () => {
    await bed?.close();
  });

  it("creates on v1.29.15 with the spec's kubeadm configuration in kubeadm's v1beta3", async () => {
    const r = await apply(spec(base(OLDEST), "2h", 90));
    kubectl = kubectlWith(await writeKubeconfig(join(bed.home, "admin.conf"), r.outputs.kubeconfig));
    expect(await nodesOf(kubectl)).toEqual([m, w].map((ip) => expect.objectContaining({ ip, ready: true, version: OLDEST })));
    const a = await applied();
    expect(a.clusterConfiguration).toContain("apiVersion: kubeadm.k8s.io/v1beta3");
    expect(a.clusterConfiguration).toContain(`kubernetesVersion: ${OLDEST}`);
    expect(a.clusterConfiguration).toMatch(/event-ttl: 2h/);
    expect(a.manifest.trim()).toBe("- --event-ttl=2h");
    expect(a.running.trim()).toBe("--event-ttl=2h");
    expect(a.workerKubelet.trim()).toBe("maxPods: 90");
  }, 600_000);

  it("refuses a change of two minors without an image of the middle one, and previews it through upgrade.through as two one-minor steps", async () => {
    // WHEN the spec names no image of v1.30 THEN one error names the missing minor, before anything changes.
    await expect(apply(spec(base(NEW), "3h", 90), true)).rejects.toThrow(
      /Kubernetes v1\.29\.15 cannot be upgraded to v1\.31\.4 in one step: .*name an image with v1\.30\.x in upgrade\.through/,
    );
    await expect(apply(spec(base(NEW), "3h", 90, [bed.app[NEW]!]), true)).rejects.toThrow(
      /^Kubernetes v1\.29\.15 -> v1\.31\.4 goes one minor version at a time \(kubeadm's version skew policy\), and each step needs an image of that minor: none for v1\.30\.x\. Name one in upgrade\.through/,
    );

    // WHEN the spec names the v1.30 image to go through THEN the plan is two one-minor steps, each whole, in order.
    const r = await apply(spec(base(NEW), "3h", 90, [base(OLD)]), true);
    preview = r.plan;
    expect(r.plan.summary[0]).toMatch(
      /^upgrade step 1\/2: Kubernetes v1\.29\.15 -> v1\.30\.14 with image sealant\/kubernetes:v1\.30\.14 \(\w{12}\); every host checked \(node Ready on v1\.30\.14, its control plane healthy\) before the next step$/,
    );
    expect(r.plan.summary.filter((l) => l.startsWith("upgrade step "))).toEqual([
      r.plan.summary[0],
      expect.stringMatching(
        /^upgrade step 2\/2: Kubernetes v1\.30\.14 -> v1\.31\.4 with image sealant\/kubernetes:v1\.31\.4 \(\w{12}\); every host checked \(node Ready on v1\.31\.4, its control plane healthy\) before the next step$/,
      ),
    ]);
    const rolled = r.plan.phases.flatMap((p) =>
      p.steps.filter((s) => s.kind === "hook:upgrade" || s.kind === "hook:check").map((s) => `${p.title.split("]")[0]}] ${s.description}`),
    );
    const step1 = "[upgrade step 1/2: Kubernetes v1.29.15 -> v1.30.14]";
    const step2 = "[upgrade step 2/2: Kubernetes v1.30.14 -> v1.31.4]";
    expect(rolled).toEqual([
      expect.stringMatching(new RegExp(`^\\${step1.slice(0, -1)}\\] upgrade ${m} to v1.30.14: drain, kubeadm upgrade apply v1.30.14, `)),
      `${step1} check ${m}`,
      `${step1} upgrade ${w} to v1.30.14: drain, kubeadm upgrade node, kubelet replaced, uncordon`,
      `${step1} check ${w}`,
      expect.stringMatching(new RegExp(`^\\${step2.slice(0, -1)}\\] upgrade ${m} to v1.31.4: drain, kubeadm upgrade apply v1.31.4, `)),
      `${step2} check ${m}`,
      `${step2} upgrade ${w} to v1.31.4: drain, kubeadm upgrade node, kubelet replaced, uncordon`,
      `${step2} check ${w}`,
    ]);
    expect(formatPlan(r.plan)).toContain(`${step2} Rolling upgrade, batch 1/2: ${m}`);
    expect(await nodesOf(kubectl)).toEqual([m, w].map((ip) => expect.objectContaining({ ip, ready: true, version: OLDEST })));
  }, 300_000);

  it("upgrades v1.29.15 -> v1.30.14 -> v1.31.4 in one change (v1beta3 -> v1beta4), each minor checked before the next, with a changed API server argument", async () => {
    expect(preview).toBeDefined();
    // Which of the previewed steps belongs to which minor (an upgrade's and a check's ids carry the
    // image they apply; a step whose id both minors plan is left out).
    const stageOf = new Map<string, number>();
    const both = new Set<string>();
    for (const p of preview!.phases)
      for (const s of p.steps) {
        const [key, n] = [`${s.host} ${s.id}`, p.title.startsWith("[upgrade step 1/2") ? 1 : 2];
        if (stageOf.has(key) && stageOf.get(key) !== n) both.add(key);
        stageOf.set(key, n);
      }
    for (const key of both) stageOf.delete(key);
    const steps = () =>
      events.flatMap(({ at, e }, i) => (e.type === "step" ? [{ i, at, ...e, stage: stageOf.get(`${e.host} ${e.id}`), kind: e.id.split("@")[0] }] : []));
    const from = events.length;

    // The cluster as the first v1.31.4 upgrade step finds it (read as that step starts: it drains first, kubeadm takes minutes).
    let midway: Promise<{ nodes: NodeView[]; clusterConfiguration: string }> | undefined;
    onEvent = (e) => {
      if (midway || e.type !== "step" || e.status !== "start" || stageOf.get(`${e.host} ${e.id}`) !== 2 || !e.id.startsWith("hook:upgrade@")) return;
      midway = Promise.all([
        nodesOf(kubectl),
        kubectl("get", "configmap", "kubeadm-config", "-n", "kube-system", "-o", "jsonpath={.data.ClusterConfiguration}"),
      ]).then(([nodes, clusterConfiguration]) => ({ nodes, clusterConfiguration }));
    };
    const r = await apply(spec(base(NEW), "3h", 90, [base(OLD)]));
    onEvent = undefined;

    // THEN the apply ran the plan previewed, every step of it, step 1's before step 2's.
    expect(r.plan.phases).toEqual(preview!.phases);
    const ran = steps().filter((s) => s.i >= from);
    expect(ran.filter((s) => s.status === "failed")).toEqual([]);
    const [one, two] = [1, 2].map((n) => ran.filter((s) => s.stage === n));
    expect(
      ran.filter((s) => (s.kind === "hook:upgrade" || s.kind === "hook:check") && s.status === "done").map((s) => `${s.stage} ${s.kind} ${s.host}`),
    ).toEqual([
      `1 hook:upgrade ${m}`,
      `1 hook:check ${m}`,
      `1 hook:upgrade ${w}`,
      `1 hook:check ${w}`,
      `2 hook:upgrade ${m}`,
      `2 hook:check ${m}`,
      `2 hook:upgrade ${w}`,
      `2 hook:check ${w}`,
    ]);
    expect(Math.max(...one!.map((s) => s.i))).toBeLessThan(Math.min(...two!.map((s) => s.i)));
    // Every host's check on v1.30.14 done before the first v1.31.4 upgrade step starts.
    const checked = one!.filter((s) => s.kind === "hook:check" && s.status === "done");
    expect(checked.map((s) => s.host).sort()).toEqual([m, w].sort());
    const firstUpgrade = two!.find((s) => s.kind === "hook:upgrade" && s.status === "start")!;
    expect(checked.every((s) => s.i < firstUpgrade.i)).toBe(true);
    // ... and the cluster it found was all on v1.30.14, kubeadm's configuration in v1beta3 for it.
    const mid = await midway!;
    expect(mid.nodes).toEqual([m, w].map((ip) => expect.objectContaining({ ip, ready: true, version: OLD })));
    expect(mid.clusterConfiguration).toContain("apiVersion: kubeadm.k8s.io/v1beta3");
    expect(mid.clusterConfiguration).toContain(`kubernetesVersion: ${OLD}`);
    const span = (s: typeof one) => ((Math.max(...s!.map((x) => x.at)) - Math.min(...s!.map((x) => x.at))) / 1000).toFixed(0);
    console.log(`two-minor upgrade of 1 master + 1 worker: step 1 (-> ${OLD}) ${span(one)} s, step 2 (-> ${NEW}) ${span(two)} s`);

    // THEN every node runs v1.31.4 with the configuration in v1beta4 and the changed argument.
    expect(await nodesOf(kubectl)).toEqual([m, w].map((ip) => expect.objectContaining({ ip, ready: true, version: NEW })));
    const a = await applied();
    expect(a.clusterConfiguration).toContain("apiVersion: kubeadm.k8s.io/v1beta4");
    expect(a.clusterConfiguration).toContain(`kubernetesVersion: ${NEW}`);
    expect(a.clusterConfiguration).toMatch(/- name: event-ttl\n\s+value: 3h/);
    expect(a.manifest.trim()).toBe("- --event-ttl=3h");
    expect(a.running.trim()).toBe("--event-ttl=3h");
    expect(a.workerKubelet.trim()).toBe("maxPods: 90");
    // Downgrading is refused before anything changes.
    await expect(apply(spec(base(OLD), "3h", 90), true)).rejects.toThrow(/Kubernetes v1\.31\.4 cannot be downgraded to v1\.30\.14/);
  }, 1_500_000);

  it("applies a kubeadm configuration change of the running cluster the documented way: uploaded, the control plane regenerated, the kubelets re-read", async () => {
    const plan = (await apply(spec(base(NEW), "4h", 80), true)).plan;
    expect(plan.actions).toEqual(["reconfigure"]);
    expect(plan.phases.flatMap((p) => p.steps.filter((s) => s.kind === "hook:upgrade").map((s) => s.description))).toEqual([
      `reconfigure ${m}: drain, the spec's kubeadm configuration uploaded (kube-system/kubeadm-config, kubelet-config), this control plane's static pods regenerated from it (kubeadm init phase control-plane), kubelet configuration re-read, uncordon`,
      `reconfigure ${w}: drain, kubelet configuration re-read from the cluster (kubeadm upgrade node phase kubelet-config), kubelet restarted, uncordon`,
    ]);
    const r = await apply(spec(base(NEW), "4h", 80));
    expect(r.plan.actions).toEqual(["reconfigure"]);
    const a = await applied();
    expect(a.clusterConfiguration).toMatch(/- name: event-ttl\n\s+value: 4h/);
    expect(a.kubeletConfig).toMatch(/maxPods: 80/);
    expect(a.manifest.trim()).toBe("- --event-ttl=4h");
    expect(a.running.trim()).toBe("--event-ttl=4h");
    expect(a.workerKubelet.trim()).toBe("maxPods: 80");
    // The worker's kubelet runs with it: the node offers 80 pods.
    const node = JSON.parse(await kubectl("get", "nodes", "-o", "json")) as {
      items: { status: { capacity: { pods: string }; addresses: { address: string }[] } }[];
    };
    expect(node.items.find((n) => n.status.addresses.some((x) => x.address === w))!.status.capacity.pods).toBe("80");
    expect(await nodesOf(kubectl)).toEqual([m, w].map((ip) => expect.objectContaining({ ip, ready: true, version: NEW })));
  }, 600_000);
});
