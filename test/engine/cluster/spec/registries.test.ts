/**
 * `registry.registries`: the hosts' registries in the registries-file model builds read (k3s's
 * registries.yaml shape) — inline in the Cluster inputs and a Clusterfile (sealant's, and sealer's
 * Cluster document as sealant's extension), or a file the Clusterfile names, so one file serves
 * builds and hosts. Checked by the very schema the registries file is; every problem names the
 * field; no secret is shown.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRegistryConfig } from "../../../../src/engine/image/registry-config";
import { ClusterSpecError, loadClusterfile, parseClusterfile, parseClusterSpec } from "../../../../src/engine/cluster/spec";
import { hostRegistryConfig } from "../../../../src/engine/cluster/spec/registries";
import { clusterfileProblems, inputProblems } from "./helpers";

const base = { name: "c1", image: "example/app:1", hosts: [{ ips: ["10.0.0.2"], roles: ["master"] }], ssh: { password: "pw" } };
const PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
const SECRET = "Mirror-pw-s3cret";

const clusterfile = (registries: string) => `apiVersion: sealant.io/v1
kind: Cluster
metadata: {name: c1}
spec:
  image: example/app:1
  hosts: [{ips: [10.0.0.2], roles: [master]}]
  ssh: {password: pw}
  registry:
    registries:
${registries
  .split("\n")
  .map((l) => `      ${l}`)
  .join("\n")}
`;

describe("registry.registries in the spec", () => {
  it("GIVEN the k3s shape inline WHEN read THEN it is kept as written (mirrors in order, configs per host)", () => {
    const { spec } = parseClusterfile(
      clusterfile(`mirrors:
  docker.io: {endpoint: ["https://mirror.example.com:5000", "http://10.0.0.9:5000"]}
configs:
  mirror.example.com:5000:
    auth: {username: robot, password: ${SECRET}}
    tls: {ca: "${PEM.replace(/\n/g, "\\n")}"}
  10.0.0.9:5000: {plain_http: true}
  "*": {proxy: "http://proxy.example.com:3128"}`),
    );
    expect(spec.registry.registries).toEqual({
      mirrors: { "docker.io": { endpoint: ["https://mirror.example.com:5000", "http://10.0.0.9:5000"] } },
      configs: {
        "mirror.example.com:5000": { auth: { username: "robot", password: SECRET }, tls: { ca: PEM } },
        "10.0.0.9:5000": { plain_http: true },
        "*": { proxy: "http://proxy.example.com:3128" },
      },
    });
  });

  it.each([
    [{ mirrors: { "docker.io": { endpoint: ["ftp://x"] } } }, 'registry.registries.mirrors["docker.io"].endpoint[0]', /expected http\(s\):\/\/host\[:port\]/],
    [{ mirrors: { "docker.io": { endpoint: [] } } }, 'registry.registries.mirrors["docker.io"].endpoint', /at least/],
    [
      { mirrors: { "docker.io": { endpoint: ["https://m"], endpoints: ["https://m"] } } },
      'registry.registries.mirrors["docker.io"].endpoints',
      /unknown field/,
    ],
    [{ configs: { "r.example": { auth: { username: "u" } } } }, 'registry.registries.configs["r.example"].auth', /needs username and password/],
    [{ configs: { "*": { auth: { username: "u", password: SECRET } } } }, 'registry.registries.configs["*"].auth', /credentials belong to one registry/],
    [{ configs: { "r.example": { tls: { ca: "not pem" } } } }, 'registry.registries.configs["r.example"].tls.ca', /PEM/],
    [{ configs: { "r.example": { proxy: "https://p:1" } } }, 'registry.registries.configs["r.example"].proxy', /over http:\/\//],
    [
      { configs: { "a.example": { proxy: "http://p1:3128" }, "b.example": { proxy: "http://u:" + SECRET + "@p2:3128" } } },
      'registry.registries.configs["b.example"].proxy',
      /containerd on the hosts reaches every registry through one proxy.*configs\["a.example"\]\.proxy already names http:\/\/p1:3128/,
    ],
    [5, "registry.registries", /expected/],
    [{ configs: { "r.example": { auth: { token: 4711 } } } }, 'registry.registries.configs["r.example"].auth.token', /expected .*got <redacted>/],
    // k3s's base64 login under auth.auth is a secret too (only the inner auth: the outer one is the login's mapping)
    [{ configs: { "r.example": { auth: { auth: 4711 } } } }, 'registry.registries.configs["r.example"].auth.auth', /expected .*got <redacted>$/],
    [{ configs: { "r.example": { auth: 4711 } } }, 'registry.registries.configs["r.example"].auth', /expected .*got 4711$/],
  ])("GIVEN registries %j WHEN read THEN one problem at %s, no secret in it", (registries, path, message) => {
    const problems = inputProblems({ ...base, registry: { registries } });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.startsWith(`${path}:`), problems[0]).toBe(true);
    expect(problems[0]).toMatch(message);
    expect(problems[0]).not.toContain(SECRET);
  });

  it.each([
    [
      { username: "u", password: "p", registries: { configs: { "sea.hub:5000": { auth: { username: "v", password: SECRET } } } } },
      "registry.username/password",
    ],
    [
      {
        external: { domain: "h.example", username: "u", password: "p" },
        registries: { configs: { "h.example": { auth: { username: "v", password: SECRET } } } },
      },
      "registry.external",
    ],
  ])("GIVEN the cluster's registry's own login given again in registries (%#) WHEN read THEN one problem names both places", (registry, other) => {
    const problems = inputProblems({ ...base, registry });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      new RegExp(`^registry\\.registries\\.configs\\["[^"]+"\\]\\.auth: .* already gets its login from ${other.replace(/\./g, "\\.")}: give it in one place`),
    );
    expect(problems[0]).not.toContain(SECRET);
  });

  it("GIVEN one proxy on several registries, and direct ones WHEN read THEN it is accepted (containerd's one proxy)", () => {
    const spec = parseClusterSpec({
      ...base,
      registry: {
        registries: { configs: { "a.example": { proxy: "http://p:3128" }, "b.example": { proxy: "http://p:3128" }, "c.example": { proxy: "direct" } } },
      },
    });
    expect(Object.keys((spec.registry.registries as { configs: object }).configs)).toEqual(["a.example", "b.example", "c.example"]);
  });

  it("GIVEN a sealer Cluster document with registries under spec.registry (sealant's extension) WHEN read THEN it is the spec's, and a problem is named at sealer's path", () => {
    const doc = (configs: string) => `apiVersion: sealer.io/v2
kind: Cluster
metadata: {name: my-cluster}
spec:
  image: docker.io/sealerio/kubernetes:v1.22.15
  ssh: {passwd: s3cret-Pa55}
  hosts: [{ips: [192.168.0.2], roles: [master]}]
  registry:
    localRegistry: {domain: sea.hub, port: 5000}
    registries:
      configs: ${configs}
`;
    const { spec } = parseClusterfile(doc('{"10.0.0.9:5000": {plain_http: true}}'));
    expect(spec.registry.registries).toEqual({ configs: { "10.0.0.9:5000": { plain_http: true } } });
    expect(spec.registry.domain).toBe("sea.hub");
    const problems = clusterfileProblems(doc('{"10.0.0.9:5000": {plain_htp: true}}'));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/spec\.registry\.registries\.configs\["10\.0\.0\.9:5000"\]\.plain_htp: unknown field/);
  });
});

describe("registry.registries naming a registries file", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sealant-registries-spec-"));
    await writeFile(join(dir, "ca.pem"), PEM);
    await writeFile(
      join(dir, "registries.yaml"),
      `mirrors:\n  docker.io:\n    endpoint: ["https://mirror.example.com"]\nconfigs:\n  mirror.example.com:\n    auth: {username: robot, password: ${SECRET}}\n    tls: {ca_file: ca.pem}\n`,
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("GIVEN a Clusterfile naming registries.yaml beside it WHEN loaded THEN the file is read and its CA file inlined, and builds read the same file to the same model", async () => {
    await writeFile(join(dir, "Clusterfile"), clusterfile("registries.yaml"));
    const { spec } = await loadClusterfile(join(dir, "Clusterfile"));
    expect(spec.registry.registries).toEqual({
      mirrors: { "docker.io": { endpoint: ["https://mirror.example.com"] } },
      configs: { "mirror.example.com": { auth: { username: "robot", password: SECRET }, tls: { ca: PEM } } },
    });
    const hosts = await hostRegistryConfig(spec.registry.registries);
    const builds = await loadRegistryConfig(join(dir, "registries.yaml"), { required: true });
    expect({ ...hosts, source: undefined }).toEqual({ ...builds, source: undefined });
  });

  it.each([
    ["missing.yaml", "", /spec\.registry\.registries: cannot read registries file .*missing\.yaml: no such file/],
    [
      "bad.yaml",
      `configs:\n  r.example:\n    auth: {username: u, password: ${SECRET}, token: t}\n`,
      /registries file .*bad\.yaml: configs\["r\.example"\]\.auth: give either token/,
    ],
    [
      "badca.yaml",
      "configs:\n  r.example:\n    tls: {ca_file: nothing.pem}\n",
      /registries file .*badca\.yaml: configs\["r\.example"\]\.tls\.ca_file: cannot read CA file .*nothing\.pem/,
    ],
    [
      "proxies.yaml",
      'configs:\n  a.example: {proxy: "http://p1:1"}\n  b.example: {proxy: "http://p2:1"}\n',
      /configs\["b\.example"\]\.proxy: containerd on the hosts reaches every registry through one proxy/,
    ],
    ["yaml.yaml", `configs: {a: [}\npassword: ${SECRET}\n`, /registries file .*yaml\.yaml: invalid YAML at line 1/],
  ])("GIVEN the Clusterfile names %s WHEN loaded THEN one error names the field and the file, never a secret", async (name, text, message) => {
    if (text) await writeFile(join(dir, name), text);
    await writeFile(join(dir, "Clusterfile"), clusterfile(name));
    const err = await loadClusterfile(join(dir, "Clusterfile")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterSpecError);
    const message_ = (err as Error).message;
    expect(message_).toMatch(/spec\.registry\.registries/);
    expect(message_).toMatch(message);
    expect(message_).not.toContain(SECRET);
  });

  it("GIVEN the Cluster inputs name a registries file (a Pulumi program) WHEN the hosts' model is made THEN that file is read as builds read it", async () => {
    const spec = parseClusterSpec({ ...base, registry: { registries: join(dir, "registries.yaml") } });
    expect(spec.registry.registries).toBe(join(dir, "registries.yaml"));
    const hosts = await hostRegistryConfig(spec.registry.registries);
    expect(hosts.mirrors["docker.io"]).toEqual([{ scheme: "https", host: "mirror.example.com" }]);
    expect(hosts.hosts["mirror.example.com"]).toEqual({ auth: { username: "robot", password: SECRET }, ca: PEM });
    await expect(hostRegistryConfig(join(dir, "none.yaml"))).rejects.toThrow(/registries file .*none\.yaml: no such file/);
  });

  it("GIVEN an inline document whose ca_file is relative WHEN loaded THEN it is read relative to the Clusterfile", async () => {
    await writeFile(join(dir, "Clusterfile"), clusterfile("configs:\n  r.example:\n    tls: {ca_file: ca.pem}"));
    const { spec } = await loadClusterfile(join(dir, "Clusterfile"));
    expect(spec.registry.registries).toEqual({ configs: { "r.example": { tls: { ca: PEM } } } });
  });
});
