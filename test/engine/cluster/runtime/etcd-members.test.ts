import { describe, expect, it } from "vitest";
import { etcdMembers, parseEtcdMembers } from "../../../../src/engine/cluster/runtime/kubernetes/etcd-members";

// What etcdctl 3.5 prints (member list; endpoint health --cluster -w json) with 127.0.10.3's host stopped.
const LIST = `a1b2c3d4e5f60001, started, m1, https://127.0.10.1:2380, https://127.0.10.1:2379, false
a1b2c3d4e5f60002, started, m2, https://127.0.10.2:2380, https://127.0.10.2:2379, false
a1b2c3d4e5f60003, started, m3, https://127.0.10.3:2380, https://127.0.10.3:2379, false`;
const HEALTH = JSON.stringify([
  { endpoint: "https://127.0.10.1:2379", health: true, took: "9.1ms" },
  { endpoint: "https://127.0.10.2:2379", health: true, took: "11.3ms" },
  { endpoint: "https://127.0.10.3:2379", health: false, took: "3.0s", error: "failed to commit proposal: context deadline exceeded" },
]);

describe("kubeadm's stacked etcd members, as the first master's etcd pod sees them", () => {
  it("each member's peer IP, name and health (a dead member's error, short)", () => {
    expect(parseEtcdMembers(`== etcd members\n${LIST}\n== etcd health\n${HEALTH}\n`)).toEqual([
      { ip: "127.0.10.1", name: "m1", healthy: true },
      { ip: "127.0.10.2", name: "m2", healthy: true },
      { ip: "127.0.10.3", name: "m3", healthy: false, problem: "context deadline exceeded" },
    ]);
  });

  it("a member added but never started, and one the health check did not list", () => {
    const list = `${LIST.split("\n").slice(0, 2).join("\n")}\n0000000000000004, unstarted, , https://127.0.10.4:2380, , false`;
    const health = JSON.stringify([{ endpoint: "https://127.0.10.1:2379", health: true }]);
    expect(parseEtcdMembers(`== etcd members\n${list}\n== etcd health\n${health}`).map((m) => [m.ip, m.healthy, m.problem])).toEqual([
      ["127.0.10.1", true, undefined],
      ["127.0.10.2", false, "did not answer"],
      ["127.0.10.4", false, "not started"],
    ]);
  });

  it("no health answer at all is an error, not a cluster of dead members", () => {
    expect(() => parseEtcdMembers(`== etcd members\n${LIST}\n== etcd health\n`)).toThrow(/etcd's health could not be read on the first master/);
  });

  it("the read is bounded: every member asked at once for 3 s, the whole check cut at 30 s", () => {
    const cmd = etcdMembers.read({ ip: "127.0.10.1", roles: ["master"] }).command;
    expect(cmd).toContain("endpoint health --cluster -w json --dial-timeout=2s --command-timeout=3s");
    expect(cmd).toMatch(/timeout 30 kubectl -n kube-system exec "etcd-\$\(node_of '?127\.0\.10\.1'?\)"/);
  });
});
