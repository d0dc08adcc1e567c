import { describe, expect, it } from "vitest";
import { formatPlan, planCluster, planReset, PlanError, rollingBatches } from "../../../src/engine/cluster/plan";
import type { CurrentCluster, DesiredCluster, Plan, PlannedHost } from "../../../src/engine/cluster/plan";

const IMG_A = `sha256:${"a".repeat(64)}`;
const IMG_B = `sha256:${"b".repeat(64)}`;
const CFG = `sha256:${"c".repeat(64)}`;

function hosts(n: number, roles = ["master"], from = 1): PlannedHost[] {
  return Array.from({ length: n }, (_, i) => ({ ip: `127.0.10.${from + i}`, roles }));
}

function desired(h: PlannedHost[], image = IMG_A, maxUnavailable = 1): DesiredCluster {
  return { name: "etcd", image: `example/etcd@${image}`, imageDigest: image, hosts: h, upgrade: { maxUnavailable }, configDigest: CFG };
}

/** The state a fully successful apply of `plan` leaves. */
function applied(d: DesiredCluster, plan: Plan, before?: CurrentCluster): CurrentCluster {
  const done = new Map<string, Set<string>>();
  for (const h of before?.hosts ?? []) done.set(h.ip, new Set(h.done));
  for (const p of plan.phases) for (const s of p.steps) done.set(s.host, new Set([...(done.get(s.host) ?? []), s.id]));
  return {
    name: d.name,
    imageDigest: d.imageDigest,
    configDigest: d.configDigest,
    hosts: d.hosts.map((h) => ({ ...h, member: true, imageDigest: d.imageDigest, done: [...(done.get(h.ip) ?? [])] })),
  };
}

const stepsOf = (plan: Plan, phase: string) => plan.phases.filter((p) => p.name === phase).flatMap((p) => p.steps.map((s) => s.host));

describe("planning a cluster", () => {
  it("creates: distribute, render, prepare, bootstrap and check every host", () => {
    const plan = planCluster(desired(hosts(3)), undefined);
    expect(plan.actions).toEqual(["create"]);
    expect(plan.phases.map((p) => p.name)).toEqual(["distribute", "render", "runtime:init-host", "runtime:bootstrap", "runtime:check"]);
    expect(stepsOf(plan, "runtime:bootstrap")).toEqual(["127.0.10.1", "127.0.10.2", "127.0.10.3"]);
    expect(plan.summary[0]).toBe("create cluster etcd on 127.0.10.1, 127.0.10.2, 127.0.10.3 (master) with image aaaaaaaaaaaa");
  });

  it("plans nothing when the cluster is as desired", () => {
    const d = desired(hosts(3));
    const plan = planCluster(d, applied(d, planCluster(d, undefined)));
    expect(plan.phases).toEqual([]);
    expect(plan.summary).toEqual(["no changes to cluster etcd"]);
  });

  it("scales 3 -> 5: only the two new hosts get work, masters join one at a time", () => {
    const d3 = desired(hosts(3));
    const state = applied(d3, planCluster(d3, undefined));
    const plan = planCluster(desired(hosts(5)), state);
    expect(plan.actions).toEqual(["scale-up"]);
    const touched = new Set(plan.phases.flatMap((p) => p.steps.map((s) => s.host)));
    expect([...touched].sort()).toEqual(["127.0.10.4", "127.0.10.5"]);
    const join = plan.phases.find((p) => p.name === "runtime:join-masters")!;
    expect(join.mode).toBe("serial");
    expect(plan.summary).toEqual(["join 127.0.10.4, 127.0.10.5 (master)"]);
  });

  it("joins workers in parallel and leaves masters untouched", () => {
    const d = desired(hosts(1));
    const state = applied(d, planCluster(d, undefined));
    const plan = planCluster(desired([...hosts(1), ...hosts(2, ["node"], 2)]), state);
    expect(plan.phases.find((p) => p.name === "runtime:join")!.mode).toBe("parallel");
    expect(plan.phases.find((p) => p.name === "runtime:join-masters")).toBeUndefined();
  });

  it("scales down: the removed host leaves, is reset and cleaned; nothing else runs", () => {
    const d = desired(hosts(3));
    const state = applied(d, planCluster(d, undefined));
    const plan = planCluster(desired(hosts(2)), state);
    expect(plan.actions).toEqual(["scale-down"]);
    expect(plan.phases.map((p) => p.name)).toEqual(["runtime:leave", "runtime:reset", "cleanup"]);
    expect(new Set(plan.phases.flatMap((p) => p.steps.map((s) => s.host)))).toEqual(new Set(["127.0.10.3"]));
  });

  it("upgrades a new image rolling: masters one per batch, workers by maxUnavailable, check after each", () => {
    const d = desired([...hosts(3), ...hosts(4, ["node"], 4)], IMG_A, 2);
    const state = applied(d, planCluster(d, undefined));
    const plan = planCluster(desired(d.hosts, IMG_B, 2), state);
    expect(plan.actions).toEqual(["upgrade"]);
    const batches = plan.phases.filter((p) => p.name === "runtime:upgrade");
    expect(batches.map((b) => [...new Set(b.steps.map((s) => s.host))])).toEqual([
      ["127.0.10.1"],
      ["127.0.10.2"],
      ["127.0.10.3"],
      ["127.0.10.4", "127.0.10.5"],
      ["127.0.10.6", "127.0.10.7"],
    ]);
    expect(batches[0]!.steps.map((s) => s.kind)).toEqual(["hook:upgrade", "hook:check"]);
    expect(plan.summary[0]).toBe("upgrade image aaaaaaaaaaaa -> bbbbbbbbbbbb on 7 hosts (5 batches)");
  });

  it("resumes after a failure: steps recorded as done are not planned again", () => {
    // GIVEN a create that failed after every host was distributed and host 1 and 2 bootstrapped
    const d = desired(hosts(3));
    const full = planCluster(d, undefined);
    const partial: CurrentCluster = {
      name: "etcd",
      imageDigest: IMG_A,
      configDigest: CFG,
      hosts: d.hosts.map((h) => ({
        ...h,
        member: false,
        imageDigest: IMG_A,
        done: full.phases.flatMap((p) => p.steps).filter((s) => s.host === h.ip && (s.kind !== "hook:bootstrap" || h.ip !== "127.0.10.3")).map((s) => s.id),
      })),
    };
    // WHEN planned again THEN only host 3's bootstrap is left
    const plan = planCluster(d, partial);
    expect(plan.phases.map((p) => [p.name, p.steps.map((s) => s.host)])).toEqual([["runtime:bootstrap", ["127.0.10.3"]]]);
  });

  it("does not count a host whose join failed as a member", () => {
    const d = desired(hosts(3));
    const state = applied(d, planCluster(d, undefined));
    state.hosts.push({ ip: "127.0.10.4", roles: ["master"], member: false, imageDigest: IMG_A, done: ["distribute@aaaaaaaaaaaa"] });
    const plan = planCluster(desired(hosts(4)), state);
    expect(stepsOf(plan, "distribute")).toEqual([]);
    expect(stepsOf(plan, "runtime:join-masters")).toEqual(["127.0.10.4"]);
  });

  it("refuses what it cannot do safely, in the user's terms", () => {
    const d = desired(hosts(2));
    const state = applied(d, planCluster(d, undefined));
    expect(() => planCluster(desired([{ ip: "127.0.10.1", roles: ["master"] }, { ip: "127.0.10.2", roles: ["node"] }]), state)).toThrow(
      /127\.0\.10\.2 is a master and would become a node/,
    );
    expect(() => planCluster(desired([...hosts(1), ...hosts(1)]), undefined)).toThrow(/127\.0\.10\.1 is listed twice/);
    expect(() => planCluster(desired(hosts(2, ["node"])), undefined)).toThrow(PlanError);
    expect(() => planCluster(desired(hosts(1, ["master"], 9)), state)).toThrow(/would leave no master of the running cluster/);
  });

  it("resets every recorded host", () => {
    const d = desired(hosts(2));
    const plan = planReset(applied(d, planCluster(d, undefined)));
    expect(plan.phases.map((p) => p.name)).toEqual(["runtime:reset", "cleanup"]);
  });

  it("prints the plan it will execute", () => {
    const text = formatPlan(planCluster(desired(hosts(2)), undefined));
    expect(text).toContain("Plan for cluster etcd:");
    expect(text).toMatch(/4\. Bootstrap the cluster\n\s+bootstrap 127\.0\.10\.1/);
  });

  it("plans a 1,000-host change quickly (timed in bench, not here) and summarises it in one line", () => {
    const d = desired([...hosts(3), ...Array.from({ length: 997 }, (_, i) => ({ ip: `10.1.${Math.floor(i / 250)}.${i % 250}`, roles: ["node"] }))]);
    const plan = planCluster(d, undefined);
    expect(plan.phases.find((p) => p.name === "runtime:bootstrap")!.steps).toHaveLength(1000);
    expect(plan.summary[0]).toMatch(/127\.0\.10\.1, 127\.0\.10\.2, 127\.0\.10\.3 \(master\); 10\.1\.0\.0, .* and 992 more \(node\)/);
    expect(rollingBatches(d.hosts, 100)).toHaveLength(3 + 10);
  });
});
