/**
 * `registry.external` as read from the Cluster inputs and a sealant Clusterfile: the registry
 * itself (domain, port, namespace, login, CA), each value checked where it is written, the
 * password never shown.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadClusterfile, parseClusterfile, parseClusterSpec } from "../../../../src/engine/cluster/spec";
import { inputProblems } from "./helpers";

const base = { name: "c1", image: "example/app:1", hosts: [{ ips: ["10.0.0.2"], roles: ["master"] }], ssh: { password: "pw" } };
const PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";

describe("registry.external", () => {
  it("GIVEN a Clusterfile with an external registry WHEN read THEN it is the registry, port a number, the rest as written", () => {
    const { spec } = parseClusterfile(`apiVersion: sealant.io/v1
kind: Cluster
metadata: {name: c1}
spec:
  image: example/app:1
  hosts: [{ips: [10.0.0.2], roles: [master]}]
  ssh: {password: pw}
  registry:
    external:
      domain: harbor.example.com
      port: "8443"
      namespace: platform/sealant
      username: robot$ci
      password: s3cret
      ca: /etc/pki/harbor-ca.pem
`);
    expect(spec.registry.external).toEqual({
      domain: "harbor.example.com",
      port: 8443,
      namespace: "platform/sealant",
      username: "robot$ci",
      password: "s3cret",
      ca: "/etc/pki/harbor-ca.pem",
    });
  });

  it("GIVEN only a domain WHEN read THEN no port, login or CA is made up", () => {
    expect(parseClusterSpec({ ...base, registry: { external: { domain: "registry.example.com" } } }).registry.external).toEqual({
      domain: "registry.example.com",
    });
  });

  it.each([
    [{ domain: "harbor.example.com\n10.6.6.6 evil" }, "registry.external.domain", /is not a host name/],
    [{ port: 8443 }, "registry.external.domain", /expected string|Required|required/],
    [{ domain: "h.example", port: 70000 }, "registry.external.port", /65535/],
    [{ domain: "h.example", namespace: "Upper/Case" }, "registry.external.namespace", /is not a repository path/],
    [{ domain: "h.example", namespace: "a//b" }, "registry.external.namespace", /is not a repository path/],
    [{ domain: "h.example", username: "robot" }, "registry.external.password", /give both username and password/],
    [{ domain: "h.example", username: "ro:bot", password: "x" }, "registry.external.username", /is not a user name/],
    [{ domain: "h.example", username: "robot", password: "two\nlines" }, "registry.external.password", /must be one line/],
    [{ domain: "h.example", ca: "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----" }, "registry.external.ca", /not a certificate/],
    [{ domain: "h.example", ca: "ca.pem\u0007" }, "registry.external.ca", /neither PEM certificate text nor a file path/],
    [{ domain: "h.example", insecure: true }, "registry.external", /insecure/],
  ])("GIVEN external %j WHEN read THEN one problem at %s", (external, path, message) => {
    const problems = inputProblems({ ...base, registry: { external } });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.startsWith(`${path}`)).toBe(true);
    expect(problems[0]).toMatch(message);
    expect(problems[0]).not.toContain("two\nlines");
  });

  it("GIVEN external: true (the old switch) WHEN read THEN it says the registry itself is wanted", () => {
    expect(inputProblems({ ...base, registry: { external: true } })).toEqual([expect.stringMatching(/^registry\.external: /)]);
  });

  it("GIVEN a CA as PEM text WHEN read THEN it is kept as given", () => {
    expect(parseClusterSpec({ ...base, registry: { external: { domain: "h.example", ca: PEM } } }).registry.external?.ca).toBe(PEM);
  });

  it("GIVEN a Clusterfile naming its CA file relative to itself WHEN loaded THEN the CA's PEM is in the spec; a missing file is named at its field", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sealant-ext-ca-"));
    try {
      const doc = (ca: string) =>
        `apiVersion: sealant.io/v1\nkind: Cluster\nmetadata: {name: c1}\nspec:\n  image: example/app:1\n  hosts: [{ips: [10.0.0.2], roles: [master]}]\n  ssh: {password: pw}\n  registry: {external: {domain: h.example, ca: ${ca}}}\n`;
      await writeFile(join(dir, "harbor-ca.pem"), PEM);
      await writeFile(join(dir, "Clusterfile"), doc("harbor-ca.pem"));
      expect((await loadClusterfile(join(dir, "Clusterfile"))).spec.registry.external?.ca).toBe(PEM);
      await writeFile(join(dir, "Clusterfile"), doc("missing.pem"));
      await expect(loadClusterfile(join(dir, "Clusterfile"))).rejects.toThrow(
        /spec\.registry\.external\.ca.*cannot read CA file ".*missing\.pem": no such file/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
