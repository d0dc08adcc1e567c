import { describe, expect, it } from "vitest";
import { formatPlan, planCluster, type CurrentCluster, type DesiredCluster, type Plan, type PlannedHost } from "../../../../src/engine/cluster/plan";
import { parseClusterfile, resolveHosts } from "../../../../src/engine/cluster/spec";
import { sealerCluster } from "../spec/helpers";

/*
 * Hosts without a role, as sealer treats them (its last commit): in the installer's host list —
 * host aliases, the rootfs distributed, pre/post-init-host plugins, the container runtime, the
 * registry's configuration (pkg/cluster-runtime/installer.go: `all` = masters +
 * getWorkerIPList, every host that is not a master) — but the Kubernetes runtime joins
 * GetHostIPListByRole(NODE) only (pkg/runtime/kubernetes/runtime.go), and labels and taints go to
 * Kubernetes nodes only. So: prepared, never bootstrapped, joined, checked, upgraded, labelled or
 * asked to leave.
 */

const IMG_A = `sha256:${"a".repeat(64)}`;
const IMG_B = `sha256:${"b".repeat(64)}`;
const CFG = `sha256:${"c".repeat(64)}`;
const M = "10.0.0.1";
const N = "10.0.0.2";
const X = "10.0.0.9";

/** A sealer Clusterfile with a master, a node and a host group without roles, read as sealant reads it. */
function sealerHosts(): PlannedHost[] {
  const spec = parseClusterfile(
    sealerCluster(
      `    - ips: [ ${M} ]\n      roles: [ master ]\n    - ips: [ ${N} ]\n      roles: [ node ]\n    - ips: [ ${X} ]\n      labels: { tier: edge }`,
    ),
  ).spec;
  return resolveHosts(spec).map((h) => ({ ip: h.ip, roles: h.roles, labels: h.labels, taints: h.taints }));
}

function desired(hosts: PlannedHost[], extra: Partial<DesiredCluster> = {}): DesiredCluster {
  return {
    name: "k8s",
    image: `example/k8s@${IMG_A}`,
    imageDigest: IMG_A,
    hosts,
    upgrade: { maxUnavailable: 1 },
    configDigest: CFG,
    bootstrap: "first-master",
    workersFollowMasters: true,
    ...extra,
  };
}

/** The record a complete apply of `plan` leaves (every desired host recorded a member, as apply does). */
function applied(d: DesiredCluster, plan: Plan, before?: CurrentCluster): CurrentCluster {
  const done = new Map<string, Set<string>>();
  for (const h of before?.hosts ?? []) done.set(h.ip, new Set(h.done));
  for (const p of plan.phases) for (const s of p.steps) done.set(s.host, new Set([...(done.get(s.host) ?? []), s.id]));
  return {
    name: d.name,
    imageDigest: d.imageDigest,
    configDigest: d.configDigest,
    hosts: d.hosts.map((h) => ({
      ...h,
      member: true,
      imageDigest: d.imageDigest,
      done: [...(done.get(h.ip) ?? [])],
      follows: h.roles.includes("node") ? [M] : [],
    })),
  };
}

const hostsOf = (plan: Plan, phase: string) => plan.phases.filter((p) => p.name === phase).flatMap((p) => p.steps.map((s) => s.host));
const kindsOn = (plan: Plan, ip: string) => plan.phases.flatMap((p) => p.steps.filter((s) => s.host === ip).map((s) => s.kind));

describe("hosts without a role (a sealer host group with no roles)", () => {
  it("GIVEN a sealer Clusterfile WHEN planned THEN the role-less host gets the image, the registry and init-host, and is never joined, checked or labelled", () => {
    const d = desired(sealerHosts(), { registry: { servers: [M] }, plugins: [{ name: "prep", action: "pre-init-host" }] });
    const plan = planCluster(d, undefined);
    expect(plan.summary).toEqual([
      `create cluster k8s on ${M} (master); ${N} (node); ${X} (no role) with image aaaaaaaaaaaa`,
      `set up ${X} without joining them: hosts with no role are prepared, never joined (as sealer does)`,
    ]);
    expect(kindsOn(plan, X)).toEqual(["distribute", "render", "mirrors", "plugin:prep:pre-init-host", "hook:init-host"]);
    expect(hostsOf(plan, "runtime:join")).toEqual([N]);
    expect(hostsOf(plan, "runtime:check")).toEqual([M, N]);
    expect(formatPlan(plan)).not.toMatch(/10\.0\.0\.9 joins/);
    // Applied: nothing more, its labels never a host-settings step.
    expect(planCluster(d, applied(d, plan)).phases).toEqual([]);
  });

  it("GIVEN a runtime whose hosts all bootstrap (etcd-style) THEN the role-less host is prepared but not bootstrapped", () => {
    const plan = planCluster(desired(sealerHosts(), { bootstrap: "every-host" }), undefined);
    expect(hostsOf(plan, "runtime:bootstrap")).toEqual([M, N]);
    expect(hostsOf(plan, "runtime:init-host")).toEqual([M, N, X]);
  });

  it("GIVEN the running cluster WHEN a role-less host is added, the image upgraded, or the host removed THEN only host-level steps are planned for it", () => {
    const [m, n, x] = sealerHosts() as [PlannedHost, PlannedHost, PlannedHost];
    const two = desired([m, n]);
    const running = applied(two, planCluster(two, undefined));

    const grow = planCluster(desired([m, n, x]), running);
    expect(grow.summary).toEqual([`set up ${X} without joining them: hosts with no role are prepared, never joined (as sealer does)`]);
    expect(grow.phases.map((p) => p.name)).toEqual(["distribute", "render", "runtime:init-host"]);

    const three = applied(desired([m, n, x]), grow, running);
    const upgrade = planCluster(desired([m, n, x], { image: `example/k8s@${IMG_B}`, imageDigest: IMG_B }), three);
    expect(kindsOn(upgrade, X)).toEqual(["distribute", "render"]);
    expect(kindsOn(upgrade, N)).toEqual(["distribute", "render", "hook:upgrade", "hook:check"]);

    const shrink = planCluster(desired([m, n]), three);
    expect(shrink.summary).toEqual([`remove ${X} (no role)`]);
    expect(kindsOn(shrink, X)).toEqual(["hook:reset", "cleanup"]);
  });
});
