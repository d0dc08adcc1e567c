import { describe, expect, it } from "vitest";
import { formatPlan, planCluster, planReset, PlanError, rollingBatches } from "../../../../src/engine/cluster/plan";
import type { CurrentCluster, DesiredCluster, Plan, PlannedHost } from "../../../../src/engine/cluster/plan";

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

  it("creates kubeadm-style when the runtime says so: the first master bootstraps, other masters join one at a time, workers in parallel", () => {
    const d = { ...desired([...hosts(3), ...hosts(2, ["node"], 10)]), bootstrap: "first-master" as const };
    const plan = planCluster(d, undefined);
    expect(plan.phases.map((p) => `${p.name}:${p.mode}`)).toEqual([
      "distribute:parallel",
      "render:parallel",
      "runtime:init-host:parallel",
      "runtime:bootstrap:serial",
      "runtime:join-masters:serial",
      "runtime:join:parallel",
      "runtime:check:parallel",
    ]);
    expect(stepsOf(plan, "runtime:bootstrap")).toEqual(["127.0.10.1"]);
    expect(stepsOf(plan, "runtime:join-masters")).toEqual(["127.0.10.2", "127.0.10.3"]);
    expect(stepsOf(plan, "runtime:join")).toEqual(["127.0.10.10", "127.0.10.11"]);
    // Once created, it is a cluster like any other: nothing more to do.
    expect(planCluster(d, applied(d, plan)).phases).toEqual([]);
  });

  it("a member's changed labels or taints: one host-settings step for it, nothing else", () => {
    const base = hosts(3).map((h) => ({ ...h, labels: { tier: "db" }, taints: [] as string[] }));
    const d = desired(base);
    const state = applied(d, planCluster(d, undefined));
    for (const h of state.hosts) Object.assign(h, { labels: { tier: "db" }, taints: [] });
    expect(planCluster(d, state).phases).toEqual([]);
    const changed = desired(base.map((h, i) => (i === 1 ? { ...h, labels: { tier: "web" }, taints: ["dedicated=web:NoSchedule"] } : h)));
    const plan = planCluster(changed, state);
    expect(plan.summary).toEqual(["set labels and taints on 127.0.10.2"]);
    expect(plan.phases.map((p) => p.name)).toEqual(["host-settings"]);
    expect(stepsOf(plan, "host-settings")).toEqual(["127.0.10.2"]);
  });

  it("workers that follow the masters (Kubernetes' VIP) are pointed at them again when the masters change", () => {
    const d = { ...desired([...hosts(1), ...hosts(2, ["node"], 10)]), workersFollowMasters: true };
    const state = applied(d, planCluster(d, undefined));
    for (const h of state.hosts) if (!h.roles.includes("master")) h.follows = ["127.0.10.1"];
    expect(planCluster(d, state).phases).toEqual([]);
    const grown = { ...d, hosts: [...hosts(2), ...hosts(2, ["node"], 10)] };
    const plan = planCluster(grown, state);
    expect(plan.summary).toEqual(["join 127.0.10.2 (master)", "point 127.0.10.10, 127.0.10.11 at masters 127.0.10.1, 127.0.10.2"]);
    expect(stepsOf(plan, "host-settings")).toEqual(["127.0.10.10", "127.0.10.11"]);
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
        done: full.phases
          .flatMap((p) => p.steps)
          .filter((s) => s.host === h.ip && (s.kind !== "hook:bootstrap" || h.ip !== "127.0.10.3"))
          .map((s) => s.id),
      })),
    };
    // WHEN planned again THEN only host 3's bootstrap is left
    const plan = planCluster(d, partial);
    expect(plan.phases.map((p) => [p.name, p.steps.map((s) => s.host)])).toEqual([["runtime:bootstrap", ["127.0.10.3"]]]);
  });

  it("resumes a kubeadm-style create whose worker joined while another's join failed as a create: the rest of it, the apps launched last", () => {
    // GIVEN the first master bootstrapped, worker 10 joined (a member), worker 11's join failed
    const d = { ...desired([...hosts(1), ...hosts(2, ["node"], 10)]), launch: true, bootstrap: "first-master" as const };
    const full = planCluster(d, undefined);
    const failed = full.phases.flatMap((p) => p.steps).filter((s) => s.host === "127.0.10.11" && s.kind === "hook:join")[0]!;
    const partial: CurrentCluster = {
      name: "etcd",
      imageDigest: IMG_A,
      configDigest: CFG,
      creating: true,
      hosts: d.hosts.map((h) => ({
        ...h,
        member: h.ip === "127.0.10.10",
        imageDigest: IMG_A,
        done: full.phases
          .filter((p) => p.name !== "runtime:check" && p.name !== "launch")
          .flatMap((p) => p.steps)
          .filter((s) => s.host === h.ip && s !== failed)
          .map((s) => s.id),
      })),
    };
    // WHEN planned again THEN it is still the create: the failed join, the checks of hosts not yet members, the launch
    const plan = planCluster(d, partial);
    expect(plan.actions).toEqual(["create"]);
    expect(plan.phases.map((p) => [p.name, p.steps.map((s) => s.host)])).toEqual([
      ["runtime:join", ["127.0.10.11"]],
      ["runtime:check", ["127.0.10.1", "127.0.10.11"]],
      ["launch", ["127.0.10.1"]],
    ]);
    // Without the mark (a record of a finished create) the same hosts would be a scale-up with no launch.
    const { creating: _c, ...finished } = partial;
    expect(planCluster(d, finished).actions).toEqual(["scale-up"]);
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
    expect(() =>
      planCluster(
        desired([
          { ip: "127.0.10.1", roles: ["master"] },
          { ip: "127.0.10.2", roles: ["node"] },
        ]),
        state,
      ),
    ).toThrow(/127\.0\.10\.2 is a master and would become a node/);
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

describe("planning registry, plugins and launch", () => {
  const withExtras = (h: PlannedHost[], extra: Partial<DesiredCluster>): DesiredCluster => ({ ...desired(h), ...extra });

  it("serves the registry on its servers and points every host at it; a new server set re-points all", () => {
    const d = withExtras([...hosts(1), ...hosts(2, ["node"], 2)], { registry: { servers: ["127.0.10.1"] } });
    const plan = planCluster(d, undefined);
    const reg = plan.phases.find((p) => p.name === "registry")!;
    expect(reg.steps.filter((s) => s.kind === "registry").map((s) => s.host)).toEqual(["127.0.10.1"]);
    expect(reg.steps.filter((s) => s.kind === "mirrors").map((s) => s.host)).toEqual(["127.0.10.1", "127.0.10.2", "127.0.10.3"]);
    expect(plan.phases.map((p) => p.name).indexOf("registry")).toBeLessThan(plan.phases.map((p) => p.name).indexOf("runtime:init-host"));
    const now = applied(d, plan);
    expect(planCluster(d, now).phases).toEqual([]);
    const moved = planCluster(withExtras(d.hosts, { registry: { servers: ["127.0.10.2"] } }), now);
    expect(moved.phases.map((p) => p.name)).toEqual(["registry"]);
    expect(moved.phases[0]!.steps).toHaveLength(4);
  });

  it("runs plugins at their phase and scope; cluster phases default to the first master", () => {
    const d = withExtras([...hosts(2), ...hosts(1, ["node"], 3)], {
      plugins: [
        { name: "marker", action: "post-install", scope: ["127.0.10.1", "127.0.10.2"] },
        { name: "prep", action: "pre-init-host" },
        { name: "once", action: "post-install" },
      ],
    });
    const plan = planCluster(d, undefined);
    const names = plan.phases.map((p) => p.name);
    expect(names.indexOf("plugin:pre-init-host")).toBe(names.indexOf("runtime:init-host") - 1);
    expect(names.slice(-2)).toEqual(["plugin:post-install", "plugin:post-install"]);
    expect(stepsOf(plan, "plugin:post-install")).toEqual(["127.0.10.1", "127.0.10.2", "127.0.10.1"]);
    expect(stepsOf(plan, "plugin:pre-init-host")).toEqual(["127.0.10.1", "127.0.10.2", "127.0.10.3"]);
    // Done once: the next apply of the same spec runs none of them again.
    expect(planCluster(d, applied(d, plan)).phases).toEqual([]);
  });

  it("runs scale-up plugins for each new set of hosts; apps launch at create, not for a join", () => {
    const d = withExtras(hosts(1), { plugins: [{ name: "announce", action: "post-scaleup" }], launch: true });
    const created = planCluster(d, undefined);
    expect(created.phases.at(-1)!.name).toBe("launch");
    const one = applied(d, created);
    const bigger = withExtras(hosts(2), { plugins: d.plugins!, launch: true });
    const join = planCluster(bigger, one);
    expect(join.phases.map((p) => p.name).slice(-2)).toEqual(["runtime:check", "plugin:post-scaleup"]);
    expect(stepsOf(join, "plugin:post-scaleup")).toEqual(["127.0.10.1"]);
    const two = applied(bigger, join, one);
    const third = withExtras(hosts(3), { plugins: d.plugins!, launch: true });
    expect(stepsOf(planCluster(third, two), "plugin:post-scaleup")).toEqual(["127.0.10.1"]);
  });

  it("cleans up a recorded host whose join never finished without asking it to leave", () => {
    const d = desired(hosts(1));
    const now = applied(d, planCluster(d, undefined));
    now.hosts.push({ ip: "127.0.10.9", roles: ["master"], member: false, imageDigest: "", done: ["distribute@aaaaaaaaaaaa"] });
    const plan = planCluster(d, now);
    expect(plan.phases.map((p) => p.name)).toEqual(["runtime:reset", "cleanup"]);
  });

  it("resets with the uninstall and clean-host plugins around the reset", () => {
    const d = desired(hosts(2));
    const now = applied(d, planCluster(d, undefined));
    const plan = planReset(now, [
      { name: "bye", action: "pre-uninstall" },
      { name: "wipe", action: "post-clean-host", scope: ["127.0.10.2"] },
    ]);
    expect(plan.phases.map((p) => `${p.name} ${p.steps.map((s) => s.host).join(",")}`)).toEqual([
      "plugin:pre-uninstall 127.0.10.1",
      "runtime:reset 127.0.10.1,127.0.10.2",
      "plugin:post-clean-host 127.0.10.2",
      "cleanup 127.0.10.1,127.0.10.2",
    ]);
  });
});

describe("hosts that drifted from the cluster", () => {
  it("brings back a host left on the new image when a failed upgrade is reverted", () => {
    const d = desired(hosts(3));
    const now = applied(d, planCluster(d, undefined));
    // The upgrade to B finished on the first host only, then failed; the user goes back to A.
    now.hosts[0]!.imageDigest = IMG_B;
    now.hosts[0]!.done.push("hook:upgrade@bbbbbbbbbbbb.cccccccccccc");
    const plan = planCluster(d, now);
    expect(plan.actions).toEqual(["upgrade"]);
    expect(plan.summary).toEqual(["bring hosts left on another image back to aaaaaaaaaaaa on 1 host (1 batch)"]);
    expect(stepsOf(plan, "runtime:upgrade")).toEqual(["127.0.10.1", "127.0.10.1"]);
  });

  it("re-renders a host whose configuration differs from the cluster's", () => {
    const d = desired(hosts(2));
    const now = applied(d, planCluster(d, undefined));
    // As a reconfigure that failed after rendering this host with other settings leaves it.
    now.hosts[1]!.configDigest = `sha256:${"d".repeat(64)}`;
    now.hosts[1]!.done = now.hosts[1]!.done.filter((id) => !id.startsWith("render@"));
    const plan = planCluster(d, now);
    expect(plan.actions).toEqual(["reconfigure"]);
    expect(plan.phases.flatMap((p) => p.steps.map((s) => s.host))).toEqual(["127.0.10.2", "127.0.10.2", "127.0.10.2"]);
  });
});

describe("a reconfigure that stopped halfway, then reverted", () => {
  it("re-renders the hosts whose files were rendered with the abandoned settings", () => {
    const d = desired(hosts(2));
    const now = applied(d, planCluster(d, undefined));
    // Render of another config finished on both hosts (the executor keeps one render@ per host); no restart happened yet.
    for (const h of now.hosts) h.done = [...h.done.filter((id) => !id.startsWith("render@")), "render@aaaaaaaaaaaa.dddddddddddd"];
    const plan = planCluster(d, now);
    expect(plan.actions).toEqual(["reconfigure"]);
    expect(stepsOf(plan, "render")).toEqual(["127.0.10.1", "127.0.10.2"]);
  });
});
