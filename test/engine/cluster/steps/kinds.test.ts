import { describe, expect, it } from "vitest";
import type { ClusterContext } from "../../../../src/engine/cluster/host/context";
import { HostLayout } from "../../../../src/engine/cluster/host/layout";
import { planCluster, planReset, type DesiredCluster, type Plan, type PlanStep, type RecordedHost } from "../../../../src/engine/cluster/plan";
import * as K from "../../../../src/engine/cluster/plan/kinds";
import type { Runtime } from "../../../../src/engine/cluster/runtime";
import type { ClusterRecord } from "../../../../src/engine/cluster/state/record";
import { STEP_KINDS, stepKindOf, stepRecorder, stepRunner } from "../../../../src/engine/cluster/steps";
import { FakeConnection } from "../../../../src/engine/ssh";

const MASTER = "10.0.0.2";
const WORKER = "10.0.0.3";
const DIGEST = `sha256:${"a".repeat(64)}`;

/** A runtime that says what it was asked: `<step> <ip> <action> <rootfs>`; leave has a cluster-side part on the first master. */
const echoRuntime: Runtime = {
  kind: "echo",
  command(step, host, ctx) {
    const base = { command: `echo ${step} ${host.ip} ${ctx.action} ${ctx.rootfs}${ctx.hostUnreachable ? " unreachable" : ""}`, env: { STEP: step } };
    return step === "leave" ? { ...base, before: { command: `drain ${host.ip}`, env: {} }, after: { command: `delete-node ${host.ip}`, env: {} } } : base;
  },
  hostSettings: (host, previous) => ({ command: `settings ${host.ip} ${JSON.stringify(previous)}`, env: {} }),
};

/** Just what the step kinds read of a cluster: two hosts on scripted connections. */
function fakeCluster(conns: Map<string, FakeConnection>): ClusterContext {
  const host = (ip: string, roles: string[]) => ({ ip, roles, address: ip, env: { E: "1" }, labels: {}, taints: [], group: 0, ssh: {} });
  return {
    spec: {
      name: "demo",
      hosts: [
        { ips: [MASTER], roles: ["master"] },
        { ips: [WORKER], roles: ["node"] },
      ],
      timeouts: { command: 60 },
      env: {},
      registry: { domain: "sea.hub", port: 5000 },
      runtime: {},
      configs: [],
      apps: { cmds: ["./start-app"] },
      plugins: [{ name: "hello", type: "SHELL", data: "echo hello", action: ["post-install"] }],
      hostAliases: [],
    },
    hosts: new Map([
      [MASTER, host(MASTER, ["master"])],
      [WORKER, host(WORKER, ["node"])],
    ]),
    image: { ref: "demo:1", digest: DIGEST, metadata: { env: {}, labels: {}, applications: [], launch: {} }, platforms: new Map() },
    runtime: echoRuntime,
    layout: new HostLayout("/var/lib/sealant/demo"),
    pool: { get: (h: { ip: string }) => Promise.resolve(conns.get(h.ip)!) },
    facts: new Map(),
    emit: () => undefined,
  } as unknown as ClusterContext;
}

function setup(plan: Pick<Plan, "actions">, unreachable: string[] = []) {
  const conns = new Map([MASTER, WORKER].map((ip) => [ip, new FakeConnection(ip, [], { unmatched: "ok" })]));
  const run = stepRunner(fakeCluster(conns), {
    plan: { cluster: "demo", phases: [], summary: [], ...plan },
    added: [WORKER],
    removed: [],
    sent: new Map(),
    unreachable: new Set(unreachable),
  });
  return { conns, run, master: conns.get(MASTER)!, worker: conns.get(WORKER)! };
}

const step = (kind: PlanStep["kind"], host: string, id: string = kind): PlanStep => ({ id, kind, host, description: `${kind} on ${host}` });

const desired: DesiredCluster = {
  name: "demo",
  image: "demo:1",
  imageDigest: DIGEST,
  configDigest: "c0ffee",
  hosts: [
    { ip: MASTER, roles: ["master"], labels: { zone: "a" } },
    { ip: WORKER, roles: ["node"], labels: { zone: "b" }, taints: ["t=1:NoSchedule"] },
  ],
  upgrade: { maxUnavailable: 1 },
  registry: { servers: [MASTER] },
  plugins: [{ name: "hello", action: "post-install" }],
  launch: true,
  workersFollowMasters: true,
};

function recorded(ip: string, over: Partial<RecordedHost> = {}): RecordedHost {
  return { ip, roles: ip === MASTER ? ["master"] : ["node"], member: false, imageDigest: "", done: [], ...over };
}

function record(hosts: RecordedHost[]): ClusterRecord {
  return { version: 1, generation: 0, name: "demo", image: "", imageDigest: "", configDigest: "", specDigest: "", runtime: "echo", updatedAt: "", hosts };
}

describe("the table of step kinds", () => {
  it("GIVEN every kind a plan can hold WHEN looked up THEN each has exactly one home", () => {
    const create = planCluster(desired, undefined);
    const reset = planReset(record([recorded(MASTER, { member: true }), recorded(WORKER, { member: true })]), [{ name: "hello", action: "pre-uninstall" }]);
    const kinds = new Set([...create.phases, ...reset.phases].flatMap((p) => p.steps.map((s) => s.kind)));
    for (const kind of kinds)
      expect(stepKindOf(kind).kind === kind || (kind.startsWith(K.PLUGIN_PREFIX) && stepKindOf(kind).kind === K.PLUGIN_PREFIX)).toBe(true);
    expect(new Set(STEP_KINDS.map((k) => k.kind)).size).toBe(STEP_KINDS.length);
  });

  it("GIVEN a kind no home has WHEN looked up THEN it fails naming it", () => {
    expect(() => stepKindOf("hook:dance")).toThrow("unknown step kind hook:dance");
  });
});

describe("what each step kind runs on a scripted host", () => {
  it("GIVEN a join WHEN it runs THEN the host switches to the new image and runs the runtime's join there, as a scale-up", async () => {
    const { run, worker } = setup({ actions: ["scale-up"] });
    await run(step(K.JOIN, WORKER));
    const [cmd] = worker.ran(/echo join/);
    expect(cmd).toContain(`ln -sfn images/${"a".repeat(64)}/rootfs /var/lib/sealant/demo/rootfs.new`);
    expect(cmd).toContain(`echo join ${WORKER} scale-up /var/lib/sealant/demo/images/${"a".repeat(64)}/rootfs`);
  });

  it("GIVEN a bootstrap and an upgrade WHEN they run THEN the runtime is told create, then upgrade or reconfigure by the plan", async () => {
    const a = setup({ actions: ["create"] });
    await a.run(step(K.BOOTSTRAP, MASTER));
    expect(a.master.ran(/echo bootstrap .* create /)).toHaveLength(1);
    const b = setup({ actions: ["reconfigure"] });
    await b.run(step(K.UPGRADE, MASTER));
    expect(b.master.ran(/echo upgrade .* reconfigure /)).toHaveLength(1);
    const c = setup({ actions: ["upgrade"] });
    await c.run(step(K.UPGRADE, MASTER));
    expect(c.master.ran(/echo upgrade .* upgrade /)).toHaveLength(1);
  });

  it("GIVEN a leave WHEN it runs THEN it runs in the image the host has, only if it has one, with the drain and the node's deletion on the first master", async () => {
    const { run, master, worker } = setup({ actions: ["scale-down"] });
    await run(step(K.LEAVE, WORKER));
    const [cmd] = worker.ran(/echo leave/);
    expect(cmd).toMatch(/^if \[ -d \/var\/lib\/sealant\/demo\/rootfs \]; then echo leave 10\.0\.0\.3 scale-down \/var\/lib\/sealant\/demo\/rootfs; fi$/);
    expect(master.ran(/^drain /)).toHaveLength(1);
    expect(master.ran(/delete-node/)).toHaveLength(1);
  });

  it("GIVEN a leaving host that cannot be reached WHEN its steps run THEN only the cluster's side of its leave runs, on the first master", async () => {
    const { run, master, worker } = setup({ actions: ["scale-down"] }, [WORKER]);
    for (const kind of [K.LEAVE, K.RESET, K.CLEANUP] as PlanStep["kind"][]) await run(step(kind, WORKER));
    expect(worker.commands).toEqual([]);
    expect(master.commands.map((c) => c.command)).toEqual([`drain ${WORKER}`, `delete-node ${WORKER}`]);
  });

  it("GIVEN a reset during a cluster's reset WHEN it runs THEN the runtime is told reset", async () => {
    const { run, worker } = setup({ actions: ["reset"] });
    await run(step(K.RESET, WORKER));
    expect(worker.ran(/echo reset 10\.0\.0\.3 reset /)).toHaveLength(1);
  });

  it("GIVEN a cleanup WHEN it runs THEN the host aliases block goes and the data root is removed", async () => {
    const { run, worker } = setup({ actions: ["scale-down"] });
    await run(step(K.CLEANUP, WORKER));
    expect(worker.ran("rm -rf /var/lib/sealant/demo")).toHaveLength(1);
  });

  it("GIVEN host settings WHEN they run THEN the runtime's settings command runs with what was applied before", async () => {
    const { run, worker } = setup({ actions: [] });
    await run(step(K.HOST_SETTINGS, WORKER));
    expect(worker.ran(`settings ${WORKER} {}`)).toHaveLength(1);
  });

  it("GIVEN launch and a plugin WHEN they run THEN the apps start from the new rootfs and the plugin gets its env", async () => {
    const { run, master } = setup({ actions: ["create"] });
    await run(step(K.LAUNCH, MASTER));
    expect(master.ran(`cd /var/lib/sealant/demo/images/${"a".repeat(64)}/rootfs && ./start-app`)).toHaveLength(1);
    await run(step(K.pluginKind("hello", "post-install"), MASTER));
    // The script travels on stdin (never the command line: ps and sudo's log show that).
    const plugin = master.commands.find((c) => c.stdin?.includes("echo hello"))!;
    expect(plugin.command).not.toContain("echo hello");
    expect(plugin.env).toMatchObject({ SEALANT_CLUSTER: "demo", SEALANT_HOST_IP: MASTER, SEALANT_PLUGIN_ACTION: "post-install", E: "1" });
    await expect(run(step(K.pluginKind("gone", "post-install"), MASTER))).rejects.toThrow("plugin gone is not in the spec");
  });

  it("GIVEN a step for a host the cluster does not have WHEN it runs THEN it fails naming the host", async () => {
    const { run } = setup({ actions: ["create"] });
    await expect(run(step(K.JOIN, "10.0.0.9"))).rejects.toThrow("10.0.0.9, which is not a host of this cluster");
  });
});

describe("what each step kind records", () => {
  const recorder = stepRecorder({ imageDigest: DIGEST, configDigest: "c0ffee", desired });

  it("GIVEN a finished join WHEN recorded THEN the host is a member on the image and config, with its settings and the masters it follows", () => {
    const h = recorded(WORKER);
    recorder(step(K.JOIN, WORKER), h, record([h]));
    expect(h).toMatchObject({
      member: true,
      imageDigest: DIGEST,
      configDigest: "c0ffee",
      labels: { zone: "b" },
      taints: ["t=1:NoSchedule"],
      follows: [MASTER],
    });
  });

  it("GIVEN a bootstrap or host settings WHEN recorded THEN only the settings change", () => {
    const h = recorded(MASTER);
    recorder(step(K.BOOTSTRAP, MASTER), h, record([h]));
    expect(h).toEqual(recorded(MASTER, { labels: { zone: "a" } }));
    const w = recorded(WORKER, { member: true });
    recorder(step(K.HOST_SETTINGS, WORKER), w, record([w]));
    expect(w).toEqual(recorded(WORKER, { member: true, labels: { zone: "b" }, taints: ["t=1:NoSchedule"], follows: [MASTER] }));
  });

  it("GIVEN an upgrade, a leave and a cleanup WHEN recorded THEN the image moves, membership ends, and the host is forgotten", () => {
    const h = recorded(WORKER, { member: true, imageDigest: "sha256:old", configDigest: "old" });
    const r = record([recorded(MASTER), h]);
    recorder(step(K.UPGRADE, WORKER), h, r);
    expect(h).toMatchObject({ member: true, imageDigest: DIGEST, configDigest: "c0ffee" });
    recorder(step(K.LEAVE, WORKER), h, r);
    expect(h.member).toBe(false);
    recorder(step(K.CLEANUP, WORKER), h, r);
    expect(r.hosts.map((x) => x.ip)).toEqual([MASTER]);
  });

  it("GIVEN steps that change no membership WHEN recorded THEN the host stays as it was", () => {
    for (const kind of [
      K.DISTRIBUTE,
      K.RENDER,
      K.REGISTRY,
      K.MIRRORS,
      K.INIT_HOST,
      K.CHECK,
      K.RESET,
      K.LAUNCH,
      K.pluginKind("hello", "post-install"),
    ] as PlanStep["kind"][]) {
      const h = recorded(WORKER, { member: true });
      recorder(step(kind, WORKER), h, record([h]));
      expect(h).toEqual(recorded(WORKER, { member: true }));
    }
  });
});
