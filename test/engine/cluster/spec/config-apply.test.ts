import { describe, expect, it } from "vitest";
import { applyConfig, ConfigApplyError, parseClusterfile, processConfigData } from "../../../../src/engine/cluster/spec";

const CONFIGMAPS = `apiVersion: v1
data:
  key1: myConfigMap1
kind: ConfigMap
metadata:
  name: myConfigMap1
---
apiVersion: v1
data:
  key2: myConfigMap2
  version: 1.10
kind: ConfigMap
metadata:
  name: myConfigMap2
`;

describe("applyConfig", () => {
  it("merge: deep-merges the data into every document of the file, as sealer does", () => {
    // GIVEN sealer's test: two ConfigMaps, data adding a key and a namespace
    const data = "data:\n  test-key: test-key\nmetadata:\n  namespace: test-namespace\n";
    // WHEN merged
    const out = applyConfig(CONFIGMAPS, { data, strategy: "merge" });
    // THEN each document has both, the rest kept as written (1.10 stays 1.10)
    expect(out).toBe(`apiVersion: v1
data:
  key1: myConfigMap1
  test-key: test-key
kind: ConfigMap
metadata:
  name: myConfigMap1
  namespace: test-namespace
---
apiVersion: v1
data:
  key2: myConfigMap2
  version: 1.10
  test-key: test-key
kind: ConfigMap
metadata:
  name: myConfigMap2
  namespace: test-namespace
`);
  });

  it("merge: data values replace (lists too) and null leaves a value alone", () => {
    const out = applyConfig("a: {b: 1, c: [1, 2]}\nd: keep\n", { data: "a: {c: [3]}\nd: null\ne: 0123\n", strategy: "merge" });
    expect(out).toBe("a:\n  b: 1\n  c:\n    - 3\nd: keep\ne: 0123\n");
  });

  it("overwrite (the default) replaces the file; a missing file gets the data", () => {
    expect(applyConfig("old: 1\n", { data: "[Service]\nExecStart=/usr/bin/dockerd\n" })).toBe("[Service]\nExecStart=/usr/bin/dockerd\n");
    expect(applyConfig(undefined, { data: "x: 1\n", strategy: "merge" })).toBe("x: 1\n");
  });

  it("merge needs YAML mappings", () => {
    expect(() => applyConfig("- a\n", { name: "calico", data: "x: 1", strategy: "merge" })).toThrow(ConfigApplyError);
    expect(() => applyConfig("a: 1\n", { name: "calico", data: "just text", strategy: "merge" })).toThrow(
      "config calico: strategy merge needs data that is a YAML mapping (key: value)",
    );
  });

  it("runs sealer's processors: value|toJson|toBase64 per value, toJson on the whole data", () => {
    // GIVEN sealer's pre-process test vector
    const data = "\nconfig:\n  username: root\n  passwd: xxx\n";
    // THEN the value is JSON with sorted keys, then base64
    expect(processConfigData(data, ["value", "toJson", "toBase64"])).toBe(`config: ${Buffer.from('{"passwd":"xxx","username":"root"}').toString("base64")}\n`);
    expect(processConfigData("b: 1\na: [x]\n", ["toJson"])).toBe('{"a":["x"],"b":1}');
    expect(processConfigData("plain text", ["toBase64"])).toBe(Buffer.from("plain text").toString("base64"));
  });

  it("toSecret puts the data into the existing Secret, base64-encoded as sealer does", () => {
    // GIVEN sealer's convertSecretYaml test vector
    const secret = "apiVersion: v1\ndata:\nkind: Secret\nmetadata:\n  name: gu-demo-configuration\n  namespace: default\ntype: Opaque";
    const data = "global: e2FiYzogeHh4fQo=\ncomponents: e215c3FsOntjcHU6e3JlcXVlc3Q6IDEwMDBtfX19Cg==";
    const out = applyConfig(secret, { data, process: ["toSecret"] });
    expect(out).toBe(`apiVersion: v1
data:
  components: ZTIxNWMzRnNPbnRqY0hVNmUzSmxjWFZsYzNRNklERXdNREJ0ZlgxOUNnPT0=
  global: ZTJGaVl6b2dlSGg0ZlFvPQ==
kind: Secret
metadata:
  name: gu-demo-configuration
  namespace: default
type: Opaque
`);
  });

  it("applies a Config document of a sealer Clusterfile", () => {
    // GIVEN sealer's calico Config (merge) read from a Clusterfile
    const { configs } = parseClusterfile(`apiVersion: sealer.io/v2
kind: Cluster
metadata: {name: c}
spec:
  image: kubernetes:v1.22.15
  hosts: [{ips: [10.0.0.1], roles: [master]}]
---
apiVersion: sealer.io/v1
kind: Config
metadata:
  name: calico
spec:
  path: etc/custom-resources.yaml
  strategy: merge
  data: |
    spec:
      calicoNetwork:
        nodeAddressAutodetectionV4:
          interface: "eth*|en*"
`);
    const [calico] = configs;
    expect(calico).toBeDefined();
    const existing =
      "kind: Installation\nspec:\n  calicoNetwork:\n    ipPools: [{cidr: 100.64.0.0/10}]\n    nodeAddressAutodetectionV4:\n      interface: eth.*\n";
    // WHEN applied THEN only the interface changes
    expect(applyConfig(existing, calico as NonNullable<typeof calico>)).toBe(
      "kind: Installation\nspec:\n  calicoNetwork:\n    ipPools:\n      - cidr: 100.64.0.0/10\n    nodeAddressAutodetectionV4:\n      interface: eth*|en*\n",
    );
  });
});
