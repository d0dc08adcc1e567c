/**
 * `registry.pullThrough` as read from the Cluster inputs and a sealant Clusterfile: each upstream
 * checked where it is written (its values land in registry configs and hosts.toml files on the
 * hosts), the password never shown, defaults filled in for the hosts.
 */
import { describe, expect, it } from "vitest";
import { parseClusterfile, parseClusterSpec } from "../../../../src/engine/cluster/spec";
import { pullThroughUpstreams } from "../../../../src/engine/cluster/spec/upstreams";
import { inputProblems } from "./helpers";

const base = { name: "c1", image: "example/app:1", hosts: [{ ips: ["10.0.0.2"], roles: ["master"] }], ssh: { password: "pw" } };

describe("registry.pullThrough", () => {
  it("GIVEN a Clusterfile with upstreams WHEN read THEN they are as written, and the hosts get them with URLs and ports filled in", () => {
    const { spec } = parseClusterfile(`apiVersion: sealant.io/v1
kind: Cluster
metadata: {name: c1}
spec:
  image: example/app:1
  hosts: [{ips: [10.0.0.2], roles: [master]}]
  ssh: {password: pw}
  registry:
    pullThrough:
      - domain: docker.io
      - domain: quay.io
        fallback: upstream
      - domain: registry.example.com:5443
        url: https://mirror.example.com:8443
        username: robot$ci
        password: s3cret
        port: "6000"
`);
    expect(spec.registry.pullThrough).toEqual([
      { domain: "docker.io", fallback: "none" },
      { domain: "quay.io", fallback: "upstream" },
      { domain: "registry.example.com:5443", url: "https://mirror.example.com:8443", username: "robot$ci", password: "s3cret", port: 6000, fallback: "none" },
    ]);
    expect(pullThroughUpstreams(spec.registry.pullThrough, spec.registry.port)).toEqual([
      { domain: "docker.io", url: "https://registry-1.docker.io", port: 5010, fallback: "none" },
      { domain: "quay.io", url: "https://quay.io", port: 5011, fallback: "upstream" },
      { domain: "registry.example.com:5443", url: "https://mirror.example.com:8443", port: 6000, fallback: "none", username: "robot$ci", password: "s3cret" },
    ]);
  });

  it.each([
    [[{ domain: "quay.io/x" }], "registry.pullThrough[0].domain", /is not a registry domain/],
    [[{ domain: "quay.io\n10.6.6.6 evil" }], "registry.pullThrough[0].domain", /is not a registry domain/],
    [[{ domain: "quay.io", url: "https://me:s3cret@quay.io" }], "registry.pullThrough[0].url", /must not hold a login/],
    [[{ domain: "quay.io", url: "https://quay.io/v2" }], "registry.pullThrough[0].url", /no path/],
    [[{ domain: "quay.io", url: "ftp://quay.io" }], "registry.pullThrough[0].url", /http\(s\)/],
    [[{ domain: "quay.io", username: "robot" }], "registry.pullThrough[0].password", /give both username and password/],
    [[{ domain: "quay.io", username: "robot", password: "two\nlines" }], "registry.pullThrough[0].password", /must be one line/],
    [[{ domain: "quay.io", port: 70000 }], "registry.pullThrough[0].port", /65535/],
    [[{ domain: "quay.io", fallback: "direct" }], "registry.pullThrough[0].fallback", /none|upstream/],
    [[{ domain: "quay.io" }, { domain: "quay.io" }], "registry.pullThrough[1].domain", /listed twice/],
    [[{ domain: "quay.io", mirror: "x" }], "registry.pullThrough[0].mirror", /unknown field/],
  ])("GIVEN pullThrough %j WHEN read THEN one problem at %s", (pullThrough, path, message) => {
    const problems = inputProblems({ ...base, registry: { pullThrough } });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.startsWith(path)).toBe(true);
    expect(problems[0]).toMatch(message);
    expect(problems[0]).not.toContain("s3cret");
    expect(problems[0]).not.toContain("two\nlines");
  });

  it("GIVEN an upstream on the registry's port or its docker.io view's WHEN the hosts' upstreams are made THEN one error names the upstream and the port's owner", () => {
    const on = (port: number) => parseClusterSpec({ ...base, registry: { pullThrough: [{ domain: "quay.io", port }] } });
    expect(() => pullThroughUpstreams(on(5000).registry.pullThrough, 5000)).toThrow(
      'registry.pullThrough: pull-through upstream "quay.io": port 5000 is already used by the cluster registry',
    );
    expect(() => pullThroughUpstreams(on(5001).registry.pullThrough, 5000)).toThrow(/port 5001 is already used by the cluster registry's docker.io view/);
    const two = parseClusterSpec({ ...base, registry: { pullThrough: [{ domain: "docker.io" }, { domain: "quay.io", port: 5010 }] } });
    expect(() => pullThroughUpstreams(two.registry.pullThrough, 5000)).toThrow(/"quay.io": port 5010 is already used by the cache of docker.io/);
  });
});
