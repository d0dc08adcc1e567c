import { describe, expect, it } from "vitest";
import { formatPlan, planCluster, PlanError } from "../../../../src/engine/cluster/plan";
import type { CurrentCluster, DesiredCluster, PlannedHost } from "../../../../src/engine/cluster/plan";
import { afterStage, planUpgradePath, upgradePath, type PathImage } from "../../../../src/engine/cluster/plan/upgrade-path";
import { kubeRollSteps } from "../../../../src/engine/cluster/runtime/kubernetes/reconfigure";

/**
 * A change of several Kubernetes minors, planned as one-minor steps through the spec's
 * `upgrade.through` images (pure: versions and plans, no hosts).
 */
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const image = (version: string, c: string): PathImage => ({ ref: `sealant/kubernetes:${version}`, digest: digest(c), version });
const V129 = image("v1.29.15", "9");
const V130 = image("v1.30.14", "a");
const V130_OLD = image("v1.30.8", "8");
const V131 = image("v1.31.4", "b");
const V132 = image("v1.32.1", "c");
const CFG = digest("f");

const master: PlannedHost = { ip: "10.0.0.1", roles: ["master"] };
const workers: PlannedHost[] = [
  { ip: "10.0.0.10", roles: ["node"] },
  { ip: "10.0.0.11", roles: ["node"] },
];

function desired(img: PathImage, hosts: PlannedHost[], configDigest = CFG): DesiredCluster {
  return {
    name: "prod",
    image: img.ref,
    imageDigest: img.digest,
    hosts,
    upgrade: { maxUnavailable: 1 },
    configDigest,
    bootstrap: "first-master",
    workersFollowMasters: true,
    rollSteps: kubeRollSteps(img.version),
  };
}

/** A running cluster: every host a member on `img`, its steps done. */
function running(img: PathImage, hosts: PlannedHost[]): CurrentCluster {
  const d = desired(img, hosts);
  return afterStage({ name: "prod", imageDigest: img.digest, configDigest: CFG, hosts: [] }, d, planCluster(d, undefined));
}

describe("the upgrade path: one minor at a time", () => {
  it("goes through one image per minor between the running version and the target, the newest patch of each", () => {
    expect(upgradePath("v1.29.15", V131, [V130_OLD, V130])).toEqual([V130]);
    expect(upgradePath("v1.29.15", V132, [V131, V130])).toEqual([V130, V131]);
  });

  it("needs no step for a patch or the next minor, and ignores images outside the path", () => {
    expect(upgradePath("v1.30.8", V130, [V129])).toEqual([]);
    expect(upgradePath("v1.30.14", V131, [V129, V130])).toEqual([]);
    expect(upgradePath("v1.28.3", V130, [V129, V131])).toEqual([V129]);
    // A cluster being created has no running version.
    expect(upgradePath(undefined, V132, [])).toEqual([]);
  });

  it("refuses a missing minor with one error naming it and what the spec offers", () => {
    const err = (() => {
      try {
        upgradePath("v1.29.15", V132, [V130]);
      } catch (e) {
        return e as Error;
      }
      throw new Error("no error");
    })();
    expect(err).toBeInstanceOf(PlanError);
    expect(err.message).toBe(
      "Kubernetes v1.29.15 -> v1.32.1 goes one minor version at a time (kubeadm's version skew policy), and each step needs an image of that minor: none for v1.31.x. " +
        'Name one in upgrade.through (e.g. upgrade: {through: ["sealant/kubernetes:v1.31.N"]}); upgrade.through has sealant/kubernetes:v1.30.14 (v1.30.14)',
    );
    expect(() => upgradePath("v1.28.1", V131, [])).toThrow(/none for v1\.29\.x, v1\.30\.x\. Name them in upgrade\.through .*upgrade\.through has nothing$/);
  });

  it("refuses a downgrade and another major version before anything changes", () => {
    expect(() => upgradePath("v1.31.4", V130, [])).toThrow(
      new PlanError("Kubernetes v1.31.4 cannot be downgraded to v1.30.14 (sealant/kubernetes:v1.30.14): kubeadm only upgrades; restore a backup to go back"),
    );
    expect(() => upgradePath("v1.31.4", image("v2.0.0", "d"), [])).toThrow(/another major version/);
    expect(() => upgradePath("v1.29.15", V131, [{ ...V130, version: "1.30" }])).toThrow(
      'upgrade.through: sealant/kubernetes:v1.30.14\'s Kubernetes version: "1.30" is not a Kubernetes version',
    );
  });
});

describe("planning a change of several minors", () => {
  const hosts = [master, ...workers];
  const current = running(V129, hosts);
  const stages = [
    { desired: desired(V130, hosts), from: "v1.29.15", to: "v1.30.14" },
    { desired: desired(V131, hosts), from: "v1.30.14", to: "v1.31.4" },
  ];

  it("shows each one-minor step: from, to, its image, and every host's upgrade and check in order, the step before finished first", () => {
    const plan = planUpgradePath(stages, current);
    expect(plan.actions).toEqual(["upgrade"]);
    expect(plan.summary[0]).toBe(
      `upgrade step 1/2: Kubernetes v1.29.15 -> v1.30.14 with image sealant/kubernetes:v1.30.14 (${"a".repeat(12)}); every host checked (node Ready on v1.30.14, its control plane healthy) before the next step`,
    );
    expect(plan.summary).toContain(
      `upgrade step 2/2: Kubernetes v1.30.14 -> v1.31.4 with image sealant/kubernetes:v1.31.4 (${"b".repeat(12)}); every host checked (node Ready on v1.31.4, its control plane healthy) before the next step`,
    );
    const steps = plan.phases.flatMap((p) => p.steps.map((s) => `${p.title.slice(0, 18)} ${s.kind} ${s.description}`));
    const upgrades = steps.filter((s) => s.includes("hook:upgrade") || s.includes("hook:check"));
    expect(upgrades).toEqual([
      "[upgrade step 1/2: hook:upgrade upgrade 10.0.0.1 to v1.30.14: drain, kubeadm upgrade apply v1.30.14, the spec's kubeadm configuration uploaded (kube-system/kubeadm-config, kubelet-config) and this control plane regenerated from it, kubelet replaced, uncordon",
      "[upgrade step 1/2: hook:check check 10.0.0.1",
      "[upgrade step 1/2: hook:upgrade upgrade 10.0.0.10 to v1.30.14: drain, kubeadm upgrade node, kubelet replaced, uncordon",
      "[upgrade step 1/2: hook:check check 10.0.0.10",
      "[upgrade step 1/2: hook:upgrade upgrade 10.0.0.11 to v1.30.14: drain, kubeadm upgrade node, kubelet replaced, uncordon",
      "[upgrade step 1/2: hook:check check 10.0.0.11",
      "[upgrade step 2/2: hook:upgrade upgrade 10.0.0.1 to v1.31.4: drain, kubeadm upgrade apply v1.31.4, the spec's kubeadm configuration uploaded (kube-system/kubeadm-config, kubelet-config) and this control plane regenerated from it, kubelet replaced, uncordon",
      "[upgrade step 2/2: hook:check check 10.0.0.1",
      "[upgrade step 2/2: hook:upgrade upgrade 10.0.0.10 to v1.31.4: drain, kubeadm upgrade node, kubelet replaced, uncordon",
      "[upgrade step 2/2: hook:check check 10.0.0.10",
      "[upgrade step 2/2: hook:upgrade upgrade 10.0.0.11 to v1.31.4: drain, kubeadm upgrade node, kubelet replaced, uncordon",
      "[upgrade step 2/2: hook:check check 10.0.0.11",
    ]);
    // Each step's image goes to every host before its upgrades.
    expect(plan.phases.filter((p) => p.name === "distribute").map((p) => p.steps.map((s) => s.description))).toEqual([
      hosts.map((h) => `send image ${"a".repeat(12)} to ${h.ip}`),
      hosts.map((h) => `send image ${"b".repeat(12)} to ${h.ip}`),
    ]);
    expect(formatPlan(plan)).toContain("[upgrade step 2/2: Kubernetes v1.30.14 -> v1.31.4] Rolling upgrade, batch 1/3: 10.0.0.1");
  });

  it("plans each step from the record the step before leaves: once it is done, only the rest remains", () => {
    const first = planCluster(stages[0]!.desired, current);
    const after = afterStage(current, stages[0]!.desired, first);
    expect(after.hosts.every((h) => h.member && h.imageDigest === V130.digest)).toBe(true);
    // Resumed after the first step: the second is a plain one-minor upgrade.
    const rest = planUpgradePath(stages.slice(1), after);
    expect(rest.phases.map((p) => p.name)).toEqual(
      planUpgradePath(stages, current)
        .phases.slice(first.phases.length)
        .map((p) => p.name),
    );
    // And once the whole path is applied, nothing is left.
    expect(planCluster(stages[1]!.desired, afterStage(after, stages[1]!.desired, planCluster(stages[1]!.desired, after))).phases).toEqual([]);
  });

  it("joins a new host in the last step only: intermediate steps move the members", () => {
    const joining: PlannedHost = { ip: "10.0.0.12", roles: ["node"] };
    const plan = planUpgradePath([stages[0]!, { ...stages[1]!, desired: desired(V131, [...hosts, joining]) }], current);
    const joins = plan.phases.filter((p) => p.name === "runtime:join");
    expect(joins.map((p) => [p.title, p.steps.map((s) => s.host)])).toEqual([["[upgrade step 2/2: Kubernetes v1.30.14 -> v1.31.4] Join hosts", ["10.0.0.12"]]]);
  });
});

describe("a kubeadm configuration change of a running cluster", () => {
  it("is its own step on each host, in kubeadm's documented way: uploaded, control planes regenerated, kubelets re-read", () => {
    const hosts = [master, ...workers];
    const plan = planCluster(desired(V131, hosts, digest("e")), running(V131, hosts));
    expect(plan.actions).toEqual(["reconfigure"]);
    expect(plan.phases.flatMap((p) => p.steps.filter((s) => s.kind === "hook:upgrade").map((s) => s.description))).toEqual([
      "reconfigure 10.0.0.1: drain, the spec's kubeadm configuration uploaded (kube-system/kubeadm-config, kubelet-config), this control plane's static pods regenerated from it (kubeadm init phase control-plane), kubelet configuration re-read, uncordon",
      "reconfigure 10.0.0.10: drain, kubelet configuration re-read from the cluster (kubeadm upgrade node phase kubelet-config), kubelet restarted, uncordon",
      "reconfigure 10.0.0.11: drain, kubelet configuration re-read from the cluster (kubeadm upgrade node phase kubelet-config), kubelet restarted, uncordon",
    ]);
    // Another master regenerates its own control plane from what the first uploaded.
    const two = [master, { ip: "10.0.0.2", roles: ["master"] }];
    const words = planCluster(desired(V131, two, digest("e")), running(V131, two)).phases.flatMap((p) => p.steps.filter((s) => s.kind === "hook:upgrade"));
    expect(words[1]!.description).toMatch(/^reconfigure 10\.0\.0\.2: drain, its control plane's static pods regenerated from the uploaded configuration/);
  });
});
