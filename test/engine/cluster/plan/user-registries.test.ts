import { describe, expect, it } from "vitest";
import { planCluster, type CurrentCluster, type DesiredCluster, type Plan, type PlannedHost } from "../../../../src/engine/cluster/plan";

const IMG = `sha256:${"a".repeat(64)}`;
const CFG = `sha256:${"c".repeat(64)}`;
const CFG2 = `sha256:${"d".repeat(64)}`;
const M = "127.0.10.1";
const W = "127.0.10.2";
const HOSTS: PlannedHost[] = [
  { ip: M, roles: ["master"] },
  { ip: W, roles: ["node"] },
];
// An image without container images: no registry of the cluster's, no registry.external.
const base: DesiredCluster = { name: "etcd", image: `example/etcd@${IMG}`, imageDigest: IMG, hosts: HOSTS, upgrade: { maxUnavailable: 1 }, configDigest: CFG };
const withRegistries: DesiredCluster = { ...base, userRegistries: true };

/** The record after every step of `plan` ran, as the executor records it (a versioned id replaces the kind's older one). */
function run(d: DesiredCluster, plan: Plan, before?: CurrentCluster): CurrentCluster {
  const hosts = d.hosts.map((h) => ({ ...h, member: true, imageDigest: d.imageDigest, done: [...(before?.hosts.find((b) => b.ip === h.ip)?.done ?? [])] }));
  for (const s of plan.phases.flatMap((p) => p.steps)) {
    const h = hosts.find((x) => x.ip === s.host)!;
    if (s.id.includes("@")) h.done = h.done.filter((id) => !id.startsWith(`${s.kind}@`));
    if (!h.done.includes(s.id)) h.done.push(s.id);
  }
  return { name: d.name, imageDigest: d.imageDigest, configDigest: d.configDigest, hosts };
}

const mirrorSteps = (p: Plan) => p.phases.filter((ph) => ph.name === "mirrors").flatMap((ph) => ph.steps.map((s) => `${s.host} ${s.id}: ${s.description}`));

describe("registry.registries on a cluster whose image carries no container images", () => {
  it("GIVEN registries in the spec THEN every host is pointed at them, once, and again when the configuration changes", () => {
    const created = planCluster(withRegistries, undefined);
    expect(mirrorSteps(created)).toEqual([M, W].map((ip) => `${ip} mirrors@aaaaaaaaaaaa.cccccccccccc: point ${ip}'s container runtime at registry.registries`));
    const after = run(withRegistries, created);
    expect(mirrorSteps(planCluster(withRegistries, after))).toEqual([]);
    expect(mirrorSteps(planCluster({ ...withRegistries, configDigest: CFG2 }, after))).toHaveLength(2);
  });

  it("GIVEN registries dropped from the spec THEN the plan takes them off every host once, and nothing after; added again, they come back", () => {
    const pointed = run(withRegistries, planCluster(withRegistries, undefined));
    const drop = planCluster(base, pointed);
    expect(drop.phases.find((p) => p.name === "mirrors")?.title).toBe("Take registry.registries off the hosts");
    expect(mirrorSteps(drop)).toEqual([M, W].map((ip) => `${ip} mirrors@off: take registry.registries off ${ip}`));
    const dropped = run(base, drop, pointed);
    expect(mirrorSteps(planCluster(base, dropped))).toEqual([]);
    // A later configuration change alone does not take them off again.
    expect(mirrorSteps(planCluster({ ...base, configDigest: CFG2 }, dropped))).toEqual([]);
    const again = run(withRegistries, planCluster(withRegistries, dropped), dropped);
    expect(mirrorSteps(planCluster(base, again))).toHaveLength(2);
  });

  it("GIVEN no registries ever THEN no mirrors step is planned", () => {
    expect(mirrorSteps(planCluster(base, undefined))).toEqual([]);
  });
});
