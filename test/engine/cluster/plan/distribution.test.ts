import { describe, expect, it } from "vitest";
import { planCluster } from "../../../../src/engine/cluster/plan";
import { AUTO_RELAY_HOSTS, relaySources } from "../../../../src/engine/cluster/plan/distribution";
import { parseClusterSpec } from "../../../../src/engine/cluster/spec";
import type { CurrentCluster, DesiredCluster, Distribution, PlannedHost } from "../../../../src/engine/cluster/plan";

const IMG = `sha256:${"a".repeat(64)}`;
const CFG = `sha256:${"c".repeat(64)}`;
const ips = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `127.0.10.${from + i}`);
const masters = (list: string[]): PlannedHost[] => list.map((ip) => ({ ip, roles: ["master"] }));

function desired(hosts: PlannedHost[], distribution?: Distribution): DesiredCluster {
  return {
    name: "etcd",
    image: `example/etcd@${IMG}`,
    imageDigest: IMG,
    hosts,
    upgrade: { maxUnavailable: 1 },
    configDigest: CFG,
    ...(distribution ? { distribution } : {}),
  };
}

const distributeSteps = (d: DesiredCluster, current?: CurrentCluster) => planCluster(d, current).phases.find((p) => p.name === "distribute")?.steps ?? [];

describe("the relay tree", () => {
  it("GIVEN fanout 3 and 13 hosts THEN one seed, and every other host relays from an earlier one that serves at most 3", () => {
    const list = ips(13);
    const sources = relaySources(list, 3);
    expect(sources.get(list[0]!)).toBeUndefined();
    const served = new Map<string, number>();
    list.slice(1).forEach((ip, i) => {
      const via = sources.get(ip)!;
      expect(list.indexOf(via)).toBeLessThan(i + 1);
      served.set(via, (served.get(via) ?? 0) + 1);
    });
    expect(Math.max(...served.values())).toBe(3);
    // Depth: the seed, 3 hosts below it, 9 below those.
    expect([list[3], list[4], list[12]].map((ip) => sources.get(ip!))).toEqual([list[0], list[1], list[3]]);
  });
});

describe("planning the distribution", () => {
  it("GIVEN relay with fanout 2 THEN each distribute step says where its host gets the image from", () => {
    const steps = distributeSteps(desired(masters(ips(5)), { mode: "relay", fanout: 2 }));
    expect(steps.map((s) => s.via)).toEqual([undefined, "127.0.10.1", "127.0.10.1", "127.0.10.2", "127.0.10.2"]);
    expect(steps[2]!.description).toBe("send image aaaaaaaaaaaa to 127.0.10.3 via 127.0.10.1");
    expect(steps[0]!.description).toBe("send image aaaaaaaaaaaa to 127.0.10.1");
  });

  it("GIVEN direct, or one host THEN every host gets it from the operator", () => {
    expect(distributeSteps(desired(masters(ips(5)), { mode: "direct", fanout: 2 })).some((s) => s.via)).toBe(false);
    expect(distributeSteps(desired(masters(ips(1)), { mode: "relay", fanout: 3 })).some((s) => s.via)).toBe(false);
    expect(distributeSteps(desired(masters(ips(3)), { mode: "relay", fanout: 3 })).map((s) => s.via)).toEqual([undefined, "127.0.10.1", "127.0.10.1"]);
    expect(distributeSteps(desired(masters(ips(5)))).some((s) => s.via)).toBe(false);
  });

  it("GIVEN a join of one host THEN it touches only that host, from the operator; a join of several relays among them", () => {
    const d = desired(masters(ips(3)), { mode: "relay", fanout: 1 });
    const current: CurrentCluster = {
      name: "etcd",
      imageDigest: IMG,
      configDigest: CFG,
      hosts: ips(3).map((ip) => ({ ip, roles: ["master"], member: true, imageDigest: IMG, done: [`distribute@${IMG.slice(7, 19)}`] })),
    };
    const hostsDone = distributeSteps(d, current);
    expect(hostsDone).toEqual([]);
    const one = distributeSteps(desired(masters(ips(4)), { mode: "relay", fanout: 1 }), current);
    expect(one.map((s) => [s.host, s.via])).toEqual([["127.0.10.4", undefined]]);
    const three = distributeSteps(desired(masters(ips(6)), { mode: "relay", fanout: 1 }), current);
    expect(three.map((s) => [s.host, s.via])).toEqual([
      ["127.0.10.4", undefined],
      ["127.0.10.5", "127.0.10.4"],
      ["127.0.10.6", "127.0.10.5"],
    ]);
  });
});

describe("auto distribution", () => {
  const auto = (n: number, fanout = 3) => distributeSteps(desired(masters(ips(n)), { mode: "auto", fanout }));

  it(`GIVEN auto and fewer than ${AUTO_RELAY_HOSTS} hosts THEN every host gets the image from the operator, and the summary says nothing of relaying`, () => {
    expect(AUTO_RELAY_HOSTS).toBe(3);
    expect(auto(1).map((s) => s.via)).toEqual([undefined]);
    expect(auto(2).map((s) => s.via)).toEqual([undefined, undefined]);
    expect(auto(2).map((s) => s.description)).toEqual(["send image aaaaaaaaaaaa to 127.0.10.1", "send image aaaaaaaaaaaa to 127.0.10.2"]);
    expect(planCluster(desired(masters(ips(2)), { mode: "auto", fanout: 3 }), undefined).summary.join("\n")).not.toMatch(/relay/);
  });

  it(`GIVEN auto and ${AUTO_RELAY_HOSTS} hosts or more THEN it relays as relay does, and the summary says where every host gets it`, () => {
    expect(auto(3).map((s) => s.via)).toEqual([undefined, "127.0.10.1", "127.0.10.1"]);
    expect(auto(6, 2).map((s) => s.via)).toEqual(distributeSteps(desired(masters(ips(6)), { mode: "relay", fanout: 2 })).map((s) => s.via));
    const plan = planCluster(desired(masters(ips(6)), { mode: "auto", fanout: 2 }), undefined);
    expect(plan.summary.at(-1)).toBe(
      "relay the image (auto: 6 hosts, relayed from 3; fanout 2): 127.0.10.1 from the operator; 127.0.10.2, 127.0.10.3 via 127.0.10.1; 127.0.10.4, 127.0.10.5 via 127.0.10.2; 127.0.10.6 via 127.0.10.3",
    );
    const relayPlan = planCluster(desired(masters(ips(2)), { mode: "relay", fanout: 3 }), undefined);
    expect(relayPlan.summary.at(-1)).toBe("relay the image (relay; fanout 3): 127.0.10.1 from the operator; 127.0.10.2 via 127.0.10.1");
  });

  it("GIVEN auto and a join of fewer hosts than the threshold THEN the joining hosts get it from the operator, the members are not touched", () => {
    const current: CurrentCluster = {
      name: "etcd",
      imageDigest: IMG,
      configDigest: CFG,
      hosts: ips(5).map((ip) => ({ ip, roles: ["master"], member: true, imageDigest: IMG, done: [`distribute@${IMG.slice(7, 19)}`] })),
    };
    expect(distributeSteps(desired(masters(ips(7)), { mode: "auto", fanout: 3 }), current).map((s) => [s.host, s.via])).toEqual([
      ["127.0.10.6", undefined],
      ["127.0.10.7", undefined],
    ]);
    expect(distributeSteps(desired(masters(ips(8)), { mode: "auto", fanout: 3 }), current).map((s) => [s.host, s.via])).toEqual([
      ["127.0.10.6", undefined],
      ["127.0.10.7", "127.0.10.6"],
      ["127.0.10.8", "127.0.10.6"],
    ]);
  });
});

describe("distribution in the Clusterfile", () => {
  const spec = (distribution?: unknown) =>
    parseClusterSpec({
      name: "x",
      image: "example/app:1",
      hosts: [{ ips: ["10.0.0.1"], roles: ["master"] }],
      ...(distribution !== undefined ? { distribution } : {}),
    });

  it("GIVEN none THEN auto, fanout 3", () => {
    expect(spec().distribution).toEqual({ mode: "auto", fanout: 3 });
    expect(spec({ mode: "direct" }).distribution).toEqual({ mode: "direct", fanout: 3 });
  });

  it("GIVEN a bad mode, fanout or field THEN one error naming the field and what is allowed", () => {
    expect(() => spec({ mode: "tree" })).toThrow(/distribution\.mode.*auto.*direct.*relay/s);
    expect(() => spec({ mode: "relay", fanout: 0 })).toThrow(/distribution\.fanout/);
    expect(() => spec({ mode: "relay", fanout: 2, seeds: 1 })).toThrow(/distribution.*seeds/s);
  });
});
