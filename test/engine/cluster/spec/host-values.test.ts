/**
 * Every value that lands in a host file or command line is checked when the spec is read, by the
 * Clusterfile reader (both formats) and the Cluster resource's inputs alike: one problem per bad
 * field, named by its path, the bad value quoted with control characters escaped (a secret's
 * never shown), and what is allowed.
 */
import { describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../../../src/engine/cluster/spec";
import { clusterfileProblems, inputProblems, sealerCluster } from "./helpers";

const base = { name: "c1", image: "example/app:1", hosts: [{ ips: ["10.0.0.2"], roles: ["master"] }], ssh: { password: "pw" } };

describe("values that land on hosts, in the Cluster inputs", () => {
  it("GIVEN a registry domain with a line break WHEN read THEN it is refused at registry.domain, the value escaped on one line", () => {
    const problems = inputProblems({ ...base, registry: { domain: "sea.hub\n10.6.6.6 evil.example" } });
    expect(problems).toEqual([
      'registry.domain: "sea.hub\\n10.6.6.6 evil.example" is not a host name: dot-separated labels of letters, digits and "-" (not first or last), each at most 63 characters (e.g. sea.hub)',
    ]);
  });

  it.each([
    [{ registry: { domain: "-sea.hub" } }, "registry.domain"],
    [{ registry: { domain: "sea..hub" } }, "registry.domain"],
    [{ registry: { domain: "sea hub" } }, "registry.domain"],
    [{ registry: { subjectAltNames: ["ok.example", "bad,DNS:evil.example"] } }, "registry.subjectAltNames[1]"],
    [{ registry: { subjectAltNames: ["a\nb"] } }, "registry.subjectAltNames[0]"],
    [{ registry: { username: "user:x", password: "pw" } }, "registry.username"],
    [{ registry: { username: "user\tx", password: "pw" } }, "registry.username"],
    [{ hostAliases: [{ ip: "10.0.0.9", hostnames: ["ok.example", "bad.example\n10.6.6.6 evil"] }] }, "hostAliases[0].hostnames[1]"],
    [{ hostAliases: [{ ip: "10.0.0.9", hostnames: ["two names"] }] }, "hostAliases[0].hostnames[0]"],
    [{ dataRoot: "/var/lib/x\n10.6.6.6 evil" }, "dataRoot"],
    [{ dataRoot: "/" }, "dataRoot"],
    [{ dataRoot: "/var/lib/../../etc" }, "dataRoot"],
    [{ dataRoot: "relative/dir" }, "dataRoot"],
    [{ env: { "A;B": "1" } }, 'env["A;B"]'],
    [{ env: { "1BAD": "1" } }, 'env["1BAD"]'],
    [{ env: ["A$(id)=1"] }, "env[0]"],
    [{ ssh: { password: "pw", bastion: { host: "jump\nhost", password: "pw" } } }, "ssh.bastion.host"],
    [{ ssh: { password: "pw", user: "ro ot\n" } }, "ssh.user"],
    [{ plugins: [{ name: "p\n1", action: "post-install", data: "true" }] }, "plugins[0].name"],
    [{ configs: [{ name: "c", path: "etc/a\nb", data: "x" }] }, "configs[0].path"],
    [{ configs: [{ name: "c", appName: "../../etc", path: "passwd", data: "x" }] }, "configs[0].appName"],
    [{ plugins: [{ name: "n", type: "HOSTNAME", action: "pre-init-host", data: "10.0.0.2 ok\n10.0.0.3 bad;name" }] }, "plugins[0].data"],
    [{ plugins: [{ name: "n", type: "HOSTNAME", action: "pre-init-host", data: "10.0.0.999 node1" }] }, "plugins[0].data"],
    [{ hosts: [{ ips: ["10.0.0.2"], roles: ["master"], labels: { "a\nb": "c" } }] }, 'hosts[0].labels["a\\nb"]'],
    [{ hosts: [{ ips: ["10.0.0.2"], roles: ["master"], taints: ["k=v\n:NoSchedule"] }] }, "hosts[0].taints[0]"],
  ])("GIVEN %j WHEN read THEN the problem is at %s, on one line", (extra, path) => {
    const problems = inputProblems({ ...base, ...extra });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.startsWith(`${path}: `)).toBe(true);
    expect(problems[0]).not.toMatch(/[\n\r\t]/);
  });

  it("GIVEN a registry password with a line break WHEN read THEN it is refused at registry.password without showing it", () => {
    const problems = inputProblems({ ...base, registry: { username: "u", password: "first\nsecond-s3cret" } });
    expect(problems).toEqual(["registry.password: must be one line (no line break or NUL character; the value is not shown)"]);
  });

  it("GIVEN an env value with a NUL character (no shell variable can hold one) WHEN read THEN it is refused at its name, the value unshown", () => {
    expect(inputProblems({ ...base, env: { DB_PASSWORD: "pa\u0000ss-s3cret" } })).toEqual([
      "env.DB_PASSWORD: the value holds a NUL character, which no shell variable can carry (the value is not shown)",
    ]);
    expect(inputProblems({ ...base, env: ["DB_PASSWORD=pa\u0000ss-s3cret"] })).toEqual([
      "env[0]: the value holds a NUL character, which no shell variable can carry (the value is not shown)",
    ]);
  });

  it("GIVEN good values of every kind WHEN read THEN they are accepted as written", () => {
    const spec = parseClusterSpec({
      ...base,
      registry: { domain: "registry-1.Example.com", subjectAltNames: ["*.example.com", "10.0.0.5", "fd00::5"], username: "admin", password: "p@ss w0rd" },
      hostAliases: [{ ip: "10.0.0.9", hostnames: ["db", "db.internal"] }],
      dataRoot: "/data/sealant/c1/",
      env: { ETCD_DIR: "/data/etcd", "etcd-dir": "/data/etcd", MULTI: "a\nb" },
    });
    expect(spec.registry.domain).toBe("registry-1.Example.com");
    expect(spec.env["etcd-dir"]).toBe("/data/etcd");
    expect(spec.env["MULTI"]).toBe("a\nb");
  });
});

describe("values that land on hosts, in Clusterfiles", () => {
  it("GIVEN a sealant Clusterfile whose registry domain injects a line WHEN read THEN the problem names the file's path", () => {
    const text = `apiVersion: sealant.io/v1
kind: Cluster
metadata: {name: c1}
spec:
  image: example/app:1
  hosts: [{ips: [10.0.0.2], roles: [master]}]
  registry: {domain: "sea.hub\\n10.6.6.6 evil.example"}
  hostAliases: [{ip: 10.0.0.9, hostnames: ["a b"]}]
`;
    expect(clusterfileProblems(text)).toEqual([
      'Clusterfile (Cluster "c1"): spec.registry.domain: "sea.hub\\n10.6.6.6 evil.example" is not a host name: dot-separated labels of letters, digits and "-" (not first or last), each at most 63 characters (e.g. sea.hub)',
      'Clusterfile (Cluster "c1"): spec.hostAliases[0].hostnames[0]: "a b" is not a host name: dot-separated labels of letters, digits and "-" (not first or last), each at most 63 characters (e.g. sea.hub)',
    ]);
  });

  it("GIVEN a sealer Clusterfile with a bad local registry domain, host alias and env name WHEN read THEN each is named in sealer's terms", () => {
    const text = sealerCluster(
      "    - {ips: [10.0.0.2], roles: [master]}",
      `  env: ["GOOD=1", "BAD NAME=2"]
  registry:
    localRegistry: {domain: "sea.hub\\tx", port: 5000}
  hostAliases: [{ip: 10.0.0.9, hostnames: ["x\\ny"]}]`,
    );
    const problems = clusterfileProblems(text);
    expect(problems).toHaveLength(3);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^Clusterfile \(Cluster "my-cluster"\): spec\.env\[1\]: env entry: "BAD NAME" is not a variable name/),
        expect.stringMatching(/^Clusterfile \(Cluster "my-cluster"\): spec\.registry\.localRegistry\.domain: "sea\.hub\\tx" is not a host name/),
        expect.stringMatching(/^Clusterfile \(Cluster "my-cluster"\): spec\.hostAliases\[0\]\.hostnames\[0\]: "x\\ny" is not a host name/),
      ]),
    );
  });
});
