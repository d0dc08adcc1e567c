import { describe, expect, it } from "vitest";
import { configDigest, parseClusterSpec, specDigest } from "../../../../src/engine/cluster/spec";

const base = {
  name: "etcd",
  image: "example/etcd:3.5",
  hosts: [
    { ips: ["127.0.10.2", "127.0.10.3"], roles: ["master"] },
    { ips: ["127.0.10.4"], roles: ["node"], labels: { disk: "ssd" } },
  ],
  ssh: { user: "root", password: "hunter2" },
  env: { A: "1", B: "2" },
};

describe("specDigest", () => {
  it("is stable across key order and the form values are written in", () => {
    // GIVEN the same spec with keys in another order, env as a list and the port as a string
    const reordered = {
      env: ["B=2", "A=1"],
      ssh: { password: "hunter2", port: "22", user: "root" },
      hosts: [
        { roles: ["master"], ips: ["127.0.10.2", "127.0.10.3"] },
        { labels: { disk: "ssd" }, roles: ["worker"], ips: ["127.0.10.4"] },
      ],
      image: "example/etcd:3.5",
      name: "etcd",
    };
    // THEN both digest the same
    const d = specDigest(parseClusterSpec(base));
    expect(d).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(specDigest(parseClusterSpec(reordered))).toBe(d);
  });

  it("changes with a host, and with a secret, without containing the secret", () => {
    const d = specDigest(parseClusterSpec(base));
    const moved = { ...base, hosts: [base.hosts[0], { ...base.hosts[1], ips: ["127.0.10.5"] }] };
    expect(specDigest(parseClusterSpec(moved))).not.toBe(d);
    const newPassword = { ...base, ssh: { ...base.ssh, password: "hunter3" } };
    expect(specDigest(parseClusterSpec(newPassword))).not.toBe(d);
    // AND with secrets excluded, a password change does not count
    expect(specDigest(parseClusterSpec(newPassword), { secrets: "exclude" })).toBe(specDigest(parseClusterSpec(base), { secrets: "exclude" }));
  });

  it("configDigest ignores the host list and secrets, not the env", () => {
    const c = configDigest(parseClusterSpec(base));
    expect(configDigest(parseClusterSpec({ ...base, hosts: [base.hosts[0]], ssh: { password: "other" } }))).toBe(c);
    expect(configDigest(parseClusterSpec({ ...base, env: { A: "1", B: "3" } }))).not.toBe(c);
  });
});
