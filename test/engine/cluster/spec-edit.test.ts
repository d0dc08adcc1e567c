import { describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../../src/engine/cluster/spec";
import { HostEditError, parseIpList, removeHosts } from "../../../src/engine/cluster/spec-edit";

const FP = "SHA256:" + "A".repeat(43);

const spec = () =>
  parseClusterSpec({
    name: "demo",
    image: "example/etcd:1",
    hosts: [
      { ips: ["10.0.0.1", "10.0.0.2"], roles: ["master"] },
      { ips: ["10.0.0.3"], roles: ["node"], ssh: { fingerprints: { "10.0.0.3": FP } } },
      { ips: ["10.0.0.4", "10.0.0.5"], roles: ["node", "db"], env: { A: "1" } },
    ],
    ssh: { password: "s3cret" },
  });

function errorOf(fn: () => unknown): HostEditError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HostEditError);
    return err as HostEditError;
  }
  throw new Error("expected a HostEditError");
}

describe("parseIpList", () => {
  it("GIVEN repeated, comma-separated flags WHEN parsed THEN the IPs come canonical, in order, each once", () => {
    expect(parseIpList(["10.0.0.2,10.0.0.1", " 10.0.0.2 ", "fd00:0::1"])).toEqual(["10.0.0.2", "10.0.0.1", "fd00::1"]);
    expect(parseIpList("")).toEqual([]);
  });

  it("GIVEN sealer's IPv4 range WHEN parsed THEN every address in it is listed", () => {
    expect(parseIpList("192.168.0.254-192.168.1.1")).toEqual(["192.168.0.254", "192.168.0.255", "192.168.1.0", "192.168.1.1"]);
  });

  it("GIVEN a bad item WHEN parsed THEN the error names it", () => {
    expect(errorOf(() => parseIpList("10.0.0.1,10.0.0.300")).message).toBe('"10.0.0.300" is not an IPv4 or IPv6 address');
    expect(errorOf(() => parseIpList("10.0.0.5-10.0.0.1")).message).toBe('"10.0.0.5-10.0.0.1": the range ends before it starts');
    expect(errorOf(() => parseIpList("10.0.0.1-x")).message).toMatch(/^"10.0.0.1-x": a range is FIRST-LAST/);
    expect(errorOf(() => parseIpList("10.0.0.0-10.1.0.0")).message).toMatch(/more than 4096/);
  });
});

describe("removeHosts", () => {
  it("GIVEN hosts in several groups WHEN removed THEN they leave their groups, emptied groups are dropped, the rest is unchanged", () => {
    const before = spec();
    const after = removeHosts(before, ["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    expect(after.hosts.map((g) => [g.ips, g.roles])).toEqual([
      [["10.0.0.1"], ["master"]],
      [["10.0.0.5"], ["node", "db"]],
    ]);
    expect(after.hosts[1]!.env).toEqual({ A: "1" });
    expect(after.ssh.password).toBe("s3cret");
    // Pure: the input spec is untouched.
    expect(before.hosts.flatMap((g) => g.ips)).toHaveLength(5);
  });

  it("GIVEN a removed host whose group pinned its host key WHEN removed THEN the fingerprint moves to the cluster's ssh", () => {
    expect(removeHosts(spec(), ["10.0.0.3"]).ssh.fingerprints).toEqual({ "10.0.0.3": FP });
    expect(removeHosts(spec(), ["10.0.0.4"]).ssh.fingerprints).toBeUndefined();
  });

  it("GIVEN an IP the spec does not list WHEN removed THEN the error names it and the hosts there are", () => {
    expect(errorOf(() => removeHosts(spec(), ["10.0.0.1", "10.0.0.9"])).message).toBe(
      "10.0.0.9 is not a host of cluster demo (its hosts: 10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4, 10.0.0.5)",
    );
  });

  it("GIVEN every master WHEN removed THEN it is refused in the user's terms", () => {
    expect(errorOf(() => removeHosts(spec(), ["10.0.0.1", "10.0.0.2"])).message).toBe(
      "removing 10.0.0.1, 10.0.0.2 would leave cluster demo without a master (its masters: 10.0.0.1, 10.0.0.2); a cluster needs at least one — to remove the whole cluster, use sealant reset",
    );
    expect(errorOf(() => removeHosts(spec(), [])).message).toBe("no hosts to remove");
  });
});
