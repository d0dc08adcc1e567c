import { describe, expect, it } from "vitest";
import { formatPlan, planCluster, type CurrentCluster, type DesiredCluster, type Plan, type PlannedHost } from "../../../../src/engine/cluster/plan";
import { stepKindOf } from "../../../../src/engine/cluster/steps";

const IMG = `sha256:${"a".repeat(64)}`;
const CFG = `sha256:${"c".repeat(64)}`;
const M = "127.0.10.1";
const W1 = "127.0.10.2";
const W2 = "127.0.10.3";
const HOSTS: PlannedHost[] = [
  { ip: M, roles: ["master"] },
  { ip: W1, roles: ["node"] },
  { ip: W2, roles: ["node"] },
];
const base = { name: "etcd", image: `example/etcd@${IMG}`, imageDigest: IMG, hosts: HOSTS, upgrade: { maxUnavailable: 1 }, configDigest: CFG };
const own: DesiredCluster = { ...base, registry: { servers: [M] } };
const external: DesiredCluster = { ...base, externalRegistry: { endpoint: "harbor.example:443", images: 2, version: "0a1b2c3d" } };
const none: DesiredCluster = base;

/**
 * The record after `plan` ran, `failing` hosts' steps of the named kind left undone (and the
 * phases after a failed one not run, as the executor does); each done step recorded as the
 * executor records it, the step kind's own record hook included.
 */
function run(d: DesiredCluster, plan: Plan, before?: CurrentCluster, failing?: { kind: string; hosts: string[] }): CurrentCluster {
  const hosts = d.hosts.map((h) => ({ ...h, member: true, imageDigest: d.imageDigest, done: [...(before?.hosts.find((b) => b.ip === h.ip)?.done ?? [])] }));
  const record = { hosts } as never;
  for (const phase of plan.phases) {
    let failed = false;
    for (const s of phase.steps) {
      if (failing?.kind === s.kind && failing.hosts.includes(s.host)) {
        failed = true;
        continue;
      }
      const h = hosts.find((x) => x.ip === s.host)!;
      const kind = s.id.split("@")[0]!;
      if (s.id.includes("@")) h.done = h.done.filter((id) => !id.startsWith(`${kind}@`));
      if (!h.done.includes(s.id)) h.done.push(s.id);
      stepKindOf(s.kind).record?.(h, record, { imageDigest: d.imageDigest, configDigest: d.configDigest, desired: d });
    }
    if (failed) break;
  }
  return { name: d.name, imageDigest: d.imageDigest, configDigest: d.configDigest, hosts };
}

const removal = (p: Plan) => p.phases.filter((ph) => ph.name === "registry-removal");

describe("a cluster whose registry mode changes", () => {
  it("GIVEN its own registry WHEN re-applied with registry.external THEN the plan stops it and takes it off every host before pushing, then plans nothing more", () => {
    const withOwn = run(own, planCluster(own, undefined));
    const plan = planCluster(external, withOwn);
    expect(plan.summary).toEqual(["stop the cluster's own registry and take it off 3 hosts (now registry.external harbor.example:443)"]);
    expect(plan.phases.map((p) => p.name)).toEqual(["registry-removal", "registry-removal", "push", "mirrors"]);
    // The hosts that only had client configuration first, the registry server (whose record says "own") last.
    expect(removal(plan).map((p) => p.steps.map((s) => s.host))).toEqual([[W1, W2], [M]]);
    expect(removal(plan)[1]!.steps[0]).toMatchObject({
      id: "registry-removal@own",
      description: `stop the cluster's registry on ${M} and remove its files, hosts entry, hosts.toml and login`,
    });
    expect(formatPlan(plan)).toContain(`1. Stop the cluster's own registry\n     take the cluster registry's hosts entry, hosts.toml and login off ${W1}`);
    const after = run(external, plan, withOwn);
    expect(after.hosts.map((h) => h.done.filter((id) => /^(registry|pull-through|registry-removal)@/.test(id)))).toEqual([[], [], []]);
    expect(planCluster(external, after).phases).toEqual([]);
  });

  it("GIVEN an external registry WHEN re-applied with its own THEN the external registry's configuration leaves every host first", () => {
    const withExt = run(external, planCluster(external, undefined));
    const plan = planCluster(own, withExt);
    expect(plan.summary).toEqual(["take the external registry off 3 hosts (now the cluster's own)"]);
    expect(plan.phases.map((p) => p.name)).toEqual(["registry-removal", "registry-removal", "registry"]);
    expect(removal(plan).map((p) => p.steps.map((s) => `${s.host} ${s.id}`))).toEqual([
      [`${W1} registry-removal@external`, `${W2} registry-removal@external`],
      [`${M} registry-removal@external`],
    ]);
    expect(planCluster(own, run(own, plan, withExt)).phases).toEqual([]);
  });

  it("GIVEN its own registry WHEN the new image carries no container images THEN the registry is still taken off", () => {
    const withOwn = run(own, planCluster(own, undefined));
    const plan = planCluster(none, withOwn);
    expect(plan.summary).toEqual(["stop the cluster's own registry and take it off 3 hosts (the image carries no container images)"]);
    expect(planCluster(none, run(none, plan, withOwn)).phases).toEqual([]);
  });

  it("GIVEN a removal that failed on a worker WHEN planned again THEN that worker is still cleared, the server's record still saying what to clear", () => {
    const withOwn = run(own, planCluster(own, undefined));
    const partial = run(external, planCluster(external, withOwn), withOwn, { kind: "registry-removal", hosts: [W2] });
    const again = planCluster(external, partial);
    expect(removal(again).map((p) => p.steps.map((s) => s.host))).toEqual([[W2], [M]]);
  });

  it("GIVEN an unchanged mode or a new cluster THEN no removal is planned", () => {
    expect(removal(planCluster(external, undefined))).toEqual([]);
    const withOwn = run(own, planCluster(own, undefined));
    expect(planCluster(own, withOwn).phases).toEqual([]);
    const withExt = run(external, planCluster(external, undefined));
    expect(planCluster({ ...external, externalRegistry: { ...external.externalRegistry!, version: "ffffffff" } }, withExt).phases.map((p) => p.name)).toEqual([
      "push",
      "mirrors",
    ]);
  });
});
