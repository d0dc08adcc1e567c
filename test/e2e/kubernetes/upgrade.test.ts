import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCluster, type ClusterEvent } from "../../../src/engine/cluster";
import { formatPlan } from "../../../src/engine/cluster/plan";
import { parseClusterSpec, type ClusterSpec } from "../../../src/engine/cluster/spec";
import type { Sandbox } from "../../../src/engine/sandbox";
import type { Session } from "../../../src/engine/session";
import { inHost } from "../../support/hosts";
import { NEW, OLD, kubectlWith, nodesOf, openRealBed, type RealBed, writeKubeconfig } from "./support";

/**
 * Upgrades and kubeadm configuration changes on a real cluster (real kubeadm, kubelet, etcd and
 * control plane; nothing here is a test double), one cluster of 1 master + 1 worker, in order:
 * created on v1.30.14 (kubeadm's v1beta3 config API) with an API server argument and a kubelet
 * setting of the spec's; a change of two minors planned (the dry run of an image labelled one
 * minor beyond what setup builds — see below) through `upgrade.through`, and refused without it;
 * upgraded to v1.31.4 (v1beta4) with a changed API server argument in the same change; then the
 * kubeadm configuration alone changed on v1.31.4 — each change found applied where kubeadm keeps
 * it (the kubeadm-config and kubelet-config ConfigMaps) and where it acts (the static pod's
 * manifest, the running process, the worker's kubelet).
 */
describe("real Kubernetes upgrades and kubeadm configuration changes", () => {
  let bed: RealBed;
  let session: Session;
  let sb: Sandbox;
  let m: string, w: string;
  let kubectl: ReturnType<typeof kubectlWith>;
  const events: ClusterEvent[] = [];

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
  const apply = (s: ClusterSpec, dryRun = false) => applyCluster({ session, spec: s, dryRun, onEvent: (e) => events.push(e) });

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
    bed = await openRealBed("k8supg", 2, [OLD, NEW]);
    ({ session, sb } = bed);
    [m, w] = bed.ips as [string, string];
  }, 600_000);
  afterAll(async () => {
    await bed?.close();
  });

  it("creates on v1.30.14 with the spec's kubeadm configuration in kubeadm's v1beta3", async () => {
    const r = await apply(spec(base(OLD), "2h", 90));
    kubectl = kubectlWith(await writeKubeconfig(join(bed.home, "admin.conf"), r.outputs.kubeconfig));
    expect(await nodesOf(kubectl)).toEqual([m, w].map((ip) => expect.objectContaining({ ip, ready: true, version: OLD })));
    const a = await applied();
    expect(a.clusterConfiguration).toContain("apiVersion: kubeadm.k8s.io/v1beta3");
    expect(a.clusterConfiguration).toMatch(/event-ttl: 2h/);
    expect(a.manifest.trim()).toBe("- --event-ttl=2h");
    expect(a.running.trim()).toBe("--event-ttl=2h");
    expect(a.workerKubelet.trim()).toBe("maxPods: 90");
  }, 600_000);

  it("plans a change of two minors as one-minor steps through upgrade.through, and refuses it without the middle minor's image", async () => {
    // GIVEN the cluster's record saying it runs v1.29.15 on another image: a v1.29 cluster cannot be
    // built here now (scripts/kubernetes.sh v1.29.15 takes ~11 min of both cores), so the record
    // the plan is read from is edited for these dry runs, and put back after.
    const state = "/var/lib/sealant/upgrades/state.json";
    const other = `sha256:${"0".repeat(64)}`;
    await inHost(
      sb,
      m,
      `cp ${state} ${state}.real && node -e 'const f=process.argv[1], r=JSON.parse(require("fs").readFileSync(f)); r.runtimeVersion="v1.29.15"; r.imageDigest="${other}"; for (const h of r.hosts) h.imageDigest="${other}"; require("fs").writeFileSync(f, JSON.stringify(r))' ${state}`,
    );
    try {
      // WHEN the spec names the v1.30 image to go through THEN the plan is two one-minor steps, each whole.
      const r = await apply(spec(base(NEW), "2h", 90, [base(OLD)]), true);
      expect(r.plan.summary[0]).toMatch(
        /^upgrade step 1\/2: Kubernetes v1\.29\.15 -> v1\.30\.14 with image sealant\/kubernetes:v1\.30\.14 \(\w{12}\); every host checked \(node Ready on v1\.30\.14, its control plane healthy\) before the next step$/,
      );
      expect(
        r.plan.summary.some((l) => /^upgrade step 2\/2: Kubernetes v1\.30\.14 -> v1\.31\.4 with image sealant\/kubernetes:v1\.31\.4 \(\w{12}\)/.test(l)),
      ).toBe(true);
      const upgrades = r.plan.phases.flatMap((p) => p.steps.filter((s) => s.kind === "hook:upgrade").map((s) => `${p.title.split("]")[0]}] ${s.description}`));
      expect(upgrades).toEqual([
        expect.stringMatching(
          new RegExp(`^\\[upgrade step 1/2: Kubernetes v1.29.15 -> v1.30.14\\] upgrade ${m} to v1.30.14: drain, kubeadm upgrade apply v1.30.14, `),
        ),
        `[upgrade step 1/2: Kubernetes v1.29.15 -> v1.30.14] upgrade ${w} to v1.30.14: drain, kubeadm upgrade node, kubelet replaced, uncordon`,
        expect.stringMatching(
          new RegExp(`^\\[upgrade step 2/2: Kubernetes v1.30.14 -> v1.31.4\\] upgrade ${m} to v1.31.4: drain, kubeadm upgrade apply v1.31.4, `),
        ),
        `[upgrade step 2/2: Kubernetes v1.30.14 -> v1.31.4] upgrade ${w} to v1.31.4: drain, kubeadm upgrade node, kubelet replaced, uncordon`,
      ]);
      expect(formatPlan(r.plan)).toContain(`[upgrade step 2/2: Kubernetes v1.30.14 -> v1.31.4] Rolling upgrade, batch 1/2: ${m}`);

      // WHEN upgrade.through has no image of v1.30 THEN one error names the missing minor, before anything changes.
      await expect(apply(spec(base(NEW), "2h", 90, [bed.app[NEW]!]), true)).rejects.toThrow(
        /^Kubernetes v1\.29\.15 -> v1\.31\.4 goes one minor version at a time \(kubeadm's version skew policy\), and each step needs an image of that minor: none for v1\.30\.x\. Name one in upgrade\.through/,
      );
      await expect(apply(spec(base(NEW), "2h", 90), true)).rejects.toThrow(
        /cannot be upgraded to v1\.31\.4 in one step: .*name an image with v1\.30\.x in upgrade\.through/,
      );
    } finally {
      await inHost(sb, m, `mv -f ${state}.real ${state}`);
    }
    expect(await nodesOf(kubectl)).toEqual([m, w].map((ip) => expect.objectContaining({ ip, ready: true, version: OLD })));
  }, 300_000);

  it("upgrades v1.30.14 -> v1.31.4 (v1beta3 -> v1beta4) and applies a changed API server argument in the same change", async () => {
    const r = await apply(spec(base(NEW), "3h", 90));
    expect(r.plan.actions).toContain("upgrade");
    expect(await nodesOf(kubectl)).toEqual([m, w].map((ip) => expect.objectContaining({ ip, ready: true, version: NEW })));
    const a = await applied();
    expect(a.clusterConfiguration).toContain("apiVersion: kubeadm.k8s.io/v1beta4");
    expect(a.clusterConfiguration).toContain(`kubernetesVersion: ${NEW}`);
    expect(a.clusterConfiguration).toMatch(/- name: event-ttl\n\s+value: 3h/);
    expect(a.manifest.trim()).toBe("- --event-ttl=3h");
    expect(a.running.trim()).toBe("--event-ttl=3h");
    // Downgrading is refused before anything changes.
    await expect(apply(spec(base(OLD), "3h", 90), true)).rejects.toThrow(/Kubernetes v1\.31\.4 cannot be downgraded to v1\.30\.14/);
  }, 900_000);

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
