import { describe, expect, it } from "vitest";
import { formatPlan, planCluster, PlanError } from "../../../../src/engine/cluster/plan";
import { QuorumError, quorumOf, withForcedRemovals, withMembership, type ConsensusMember } from "../../../../src/engine/cluster/plan/quorum";
import type { CurrentCluster, DesiredCluster, PlannedHost } from "../../../../src/engine/cluster/plan";

const IMG = `sha256:${"a".repeat(64)}`;
const CFG = `sha256:${"c".repeat(64)}`;
const [m1, m2, m3, m5, w] = ["127.0.10.1", "127.0.10.2", "127.0.10.3", "127.0.10.5", "127.0.10.9"];
const master = (ip: string): PlannedHost => ({ ip, roles: ["master"] });

function desired(masters: string[]): DesiredCluster {
  return {
    name: "ha",
    image: `example/k8s@${IMG}`,
    imageDigest: IMG,
    hosts: [...masters.map(master), { ip: w, roles: ["node"] }],
    upgrade: { maxUnavailable: 1 },
    configDigest: CFG,
    bootstrap: "first-master",
    workersFollowMasters: true,
  };
}

/** A running cluster of three masters and a worker, every step done. */
const running: CurrentCluster = {
  name: "ha",
  imageDigest: IMG,
  configDigest: CFG,
  hosts: [m1, m2, m3, w].map((ip) => ({
    ip,
    roles: ip === w ? ["node"] : ["master"],
    member: true,
    imageDigest: IMG,
    configDigest: CFG,
    done: [],
    follows: ip === w ? [m1, m2, m3] : undefined,
  })),
};

const member = (ip: string, healthy = true): ConsensusMember => ({
  ip,
  name: `node-${ip}`,
  healthy,
  ...(healthy ? {} : { problem: "context deadline exceeded" }),
});
const etcd = (...members: ConsensusMember[]) => ({ system: "etcd", members });
const leaves = (plan: ReturnType<typeof planCluster>) => plan.phases.filter((p) => p.name === "runtime:leave").flatMap((p) => p.steps.map((s) => s.host));

describe("a change of masters against the members' quorum", () => {
  it("quorum arithmetic: a majority of the members", () => {
    expect([1, 2, 3, 4, 5].map(quorumOf)).toEqual([1, 2, 2, 3, 3]);
  });

  it("replacing a dead master: its removal runs first, the new master joins after it; the plan says the members before and after", () => {
    const plan = withMembership(planCluster(desired([m1, m2, m5]), running), etcd(member(m1), member(m2), member(m3, false)));
    expect(plan.summary).toEqual([
      `remove ${m3} (master)`,
      `join ${m5} (master)`,
      `point ${w} at masters ${m1}, ${m2}, ${m5}`,
      `etcd: 3 members, 2 healthy (${m3} unhealthy: context deadline exceeded); after the change 3 members`,
    ]);
    const names = plan.phases.map((p) => p.name);
    expect(names.indexOf("runtime:leave")).toBeLessThan(names.indexOf("runtime:join-masters"));
  });

  it("members that do not answer leave before healthy ones, whatever the record's order", () => {
    const plan = withMembership(planCluster(desired([m3]), running), etcd(member(m1), member(m2, false), member(m3)));
    expect(leaves(plan)).toEqual([m2, m1]);
    expect(plan.summary.at(-1)).toBe(`etcd: 3 members, 2 healthy (${m2} unhealthy: context deadline exceeded); after the change 1 member`);
  });

  it("refuses removing a healthy master while a dead one stays: it names the members and what to write instead", () => {
    const change = () => withMembership(planCluster(desired([m1, m3]), running), etcd(member(m1), member(m2), member(m3, false)));
    expect(change).toThrow(QuorumError);
    expect(change).toThrow(PlanError);
    expect(change).toThrow(
      `etcd: 3 members, 2 healthy (${m3} unhealthy: context deadline exceeded): removing ${m2} (healthy) would leave 1 healthy of 2 etcd members, below its quorum of 2; nothing was changed. In the same change also drop ${m3} from the spec (with --force, or unreachableOnRemove: "force", if it cannot be reached): members that do not answer are removed first, then ${m2} leaves with a quorum kept`,
    );
    // Both in one change: the dead one first, then the healthy one, a quorum at every step.
    expect(leaves(withMembership(planCluster(desired([m1]), running), etcd(member(m1), member(m2), member(m3, false))))).toEqual([m3, m2]);
  });

  it("refuses joining a master while a dead member stays (four members would need three healthy)", () => {
    const change = () => withMembership(planCluster(desired([m1, m2, m3, m5]), running), etcd(member(m1), member(m2), member(m3, false)));
    expect(change).toThrow(
      `${m5} cannot join as a master while ${m3} does not answer and stays a member (4 members need 3 healthy); nothing was changed. In the same change drop ${m3} from the spec (with --force, or unreachableOnRemove: "force", if it cannot be reached): it is removed before ${m5} joins`,
    );
  });

  it("refuses any change of members once the quorum is lost", () => {
    expect(() => withMembership(planCluster(desired([m1, m5]), running), etcd(member(m1), member(m2, false), member(m3, false)))).toThrow(
      /etcd: 3 members, 1 healthy .*: etcd has lost its quorum \(2 of 3 needed\), so no member can be added or removed; nothing was changed\. .*sealant restore/,
    );
  });

  it("healthy members: changes go through unchanged but for the facts line", () => {
    const planned = planCluster(desired([m1, m2]), running);
    const plan = withMembership(planned, etcd(member(m1), member(m2), member(m3)));
    expect(plan.phases).toEqual(planned.phases);
    expect(plan.summary.at(-1)).toBe("etcd: 3 members, 3 healthy; after the change 2 members");
  });
});

describe("a removal by force in the plan", () => {
  it("says what runs on the first master and that the host's own steps do not run", () => {
    const plan = withForcedRemovals(planCluster(desired([m1, m2, m5]), running), new Set([m3]), m1, () => "its etcd member and Node are deleted");
    expect(plan.summary.slice(0, 2)).toEqual([
      `remove ${m3} (master)`,
      `remove ${m3} by force: it cannot be reached; from ${m1}: its etcd member and Node are deleted; its own reset and file removal do not run (its files stay)`,
    ]);
    const text = formatPlan(plan);
    expect(text).toContain(`     ${m3} is removed by force from ${m1}: its etcd member and Node are deleted (it cannot be reached)`);
    expect(text).toContain(`     reset ${m3}: not run (it cannot be reached; removed by force)`);
    expect(text).toContain(`     forget ${m3} in the cluster's record; its files stay (it cannot be reached; removed by force)`);
  });
});

describe("the first master of a running cluster", () => {
  it("must be one of its masters: a new host listed first is refused with the order to write instead", () => {
    expect(() => planCluster(desired([m5, m2, m3]), running)).toThrow(
      `hosts: the first master listed, ${m5}, is not a master of the running cluster yet; the first master is where the cluster is worked from (its record, lock, join tokens, membership changes), so it must be one of the current masters (${m1}, ${m2}, ${m3}). List a current master first: masters ${m2}, ${m3}, ${m5}`,
    );
    // Another current master first works (the first listed one dead and dropped).
    const plan = planCluster(desired([m2, m3, m5]), running);
    expect(plan.summary.slice(0, 2)).toEqual([`remove ${m1} (master)`, `join ${m5} (master)`]);
  });
});
