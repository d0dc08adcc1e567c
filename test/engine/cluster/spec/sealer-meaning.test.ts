import { createCipheriv } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ClusterSpecError, convertClusterfile, formatProblem, loadClusterfile, parseClusterfile, readClusterfile } from "../../../../src/engine/cluster/spec";
import { clusterfileProblems, sealerCluster } from "./helpers";

/*
 * sealer's files with sealer's meaning: each case is a behaviour of sealer's own code
 * (pkg/clusterfile/decoder.go, types/api/v2, utils/hash/aes.go, utils/decode.go at its last
 * commit), checked against sealant's readers.
 */

const SOURCE = 'Clusterfile (Cluster "my-cluster")';
const master = "    - ips: [ 10.0.0.1 ]\n      roles: [ master ]";
const warnings = (text: string): string[] => readClusterfile(text).warnings.map(formatProblem);

/** What sealer's `sealer` tooling writes for `encrypted: true` (AES-256-CBC under the key in its source, IV = the key's first 16 bytes). */
function sealerEncrypt(password: string): string {
  const key = Buffer.from("ZU9WbzRMVXRQZ2pzTGowR2hNWUpIZjRkWld4aWVRWko=", "base64");
  const cipher = createCipheriv("aes-256-cbc", key, key.subarray(0, 16));
  return Buffer.concat([cipher.update(password, "utf8"), cipher.final()]).toString("base64");
}

describe("documents are read by kind, as sealer reads them", () => {
  it("reads a Config under sealer.com/v1alpha1 and an Application with no apiVersion", () => {
    // GIVEN a Cluster, a Config under a group sealer never checked, an Application with no apiVersion
    const text = `${sealerCluster(master)}---
apiVersion: sealer.com/v1alpha1
kind: Config
metadata:
  name: mysql-config
spec:
  path: etc/mysql.yaml
  data: |
    user: root
---
kind: Application
metadata:
  name: apps
spec:
  launchApps: [ mysql ]
`;
    // WHEN parsed to apply THEN both are part of the spec
    const spec = parseClusterfile(text).spec;
    expect(spec.configs.map((c) => [c.name, c.path, c.data])).toEqual([["mysql-config", "etc/mysql.yaml", "user: root\n"]]);
    expect(spec.apps.launch).toEqual(["mysql"]);
  });

  it("skips a document of another kind, or none, with a warning (sealer skips it)", () => {
    const text = `${sealerCluster(master)}---\napiVersion: infra.sealer.io/v1\nkind: Infra\nmetadata: {name: aliyun}\n---\nfoo: bar\n`;
    expect(parseClusterfile(text).spec.name).toBe("my-cluster");
    expect(warnings(text)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/Infra "aliyun"\): kind: kind "Infra" is not one sealer or sealant reads: ignored/),
        expect.stringMatching(/document 3 \(\?\): kind: no kind: ignored, as sealer ignores it/),
      ]),
    );
  });
});

describe("sealer's fields as sealer writes them", () => {
  it("takes cmd_args as a list of KEY=VALUE", () => {
    const text = sealerCluster(master, "  cmd_args:\n    - Replicas=3\n    - Mode=ha=on\n    - verbose");
    expect(parseClusterfile(text).spec.apps.args).toEqual({ Replicas: "3", Mode: "ha=on" });
    expect(warnings(text)).toContain(`${SOURCE}: spec.cmd_args[2]: "verbose" is not KEY=VALUE: ignored`);
  });

  it("reads a host group without roles as hosts with no role (neither master nor node), as sealer does", () => {
    const text = sealerCluster(`${master}\n    - ips: [ 10.0.0.9 ]`);
    const spec = parseClusterfile(text).spec;
    expect(spec.hosts.map((h) => [h.ips, h.roles])).toEqual([
      [["10.0.0.1"], ["master"]],
      [["10.0.0.9"], []],
    ]);
  });

  it("matches field names in any case, as Go's JSON decoding in sealer does", () => {
    const text = `apiVersion: sealer.io/v2
kind: Cluster
metadata: {name: my-cluster}
Spec:
  Image: kubernetes:v1.19.8
  SSH: {Passwd: s3cret-Pa55}
  Hosts:
    - IPS: [ 10.0.0.1 ]
      Roles: [ master ]
`;
    const r = parseClusterfile(text);
    expect([r.spec.image, r.spec.ssh.password, r.spec.hosts]).toEqual(["kubernetes:v1.19.8", "s3cret-Pa55", [{ ips: ["10.0.0.1"], roles: ["master"] }]]);
    expect(r.warnings.map(formatProblem)).toContain(`${SOURCE}: spec.hosts[0].IPS: read as ips (sealer matches field names in any case): write ips`);
  });

  it("drops env entries sealer drops (no '=', or one sealer sets itself) with a warning", () => {
    const text = sealerCluster(master, "  env:\n    - A=1\n    - justaword\n    - RegistryURL=evil:5000");
    expect(parseClusterfile(text).spec.env).toEqual({ A: "1" });
    expect(warnings(text)).toEqual(
      expect.arrayContaining([
        `${SOURCE}: spec.env[1]: "justaword" is not KEY=VALUE: ignored (sealer drops it too)`,
        `${SOURCE}: spec.env[2]: RegistryURL is set by sealer from the Clusterfile, not by env: ignored`,
      ]),
    );
  });

  it("keeps a host group's own RegistryURL=... (sealer filters the cluster's env only, and merges a group's over it)", () => {
    const group = "    - ips: [ 10.0.0.1 ]\n      roles: [ master ]\n      env: [ RegistryURL=mirror.local:5000, justaword, B=2 ]";
    const text = sealerCluster(group);
    expect(parseClusterfile(text).spec.hosts[0]!.env).toEqual({ RegistryURL: "mirror.local:5000", B: "2" });
    expect(warnings(text)).toContain(`${SOURCE}: spec.hosts[0].env[1]: "justaword" is not KEY=VALUE: ignored (sealer drops it too)`);
    expect(warnings(text).filter((w) => w.includes("RegistryURL"))).toEqual([]);
  });
});

describe("a Cluster without spec.image: read, and refused when applied", () => {
  const text = sealerCluster(master).replace("  image: docker.io/sealerio/kubernetes:v1.22.15\n", "");
  const problem = `${SOURCE}: spec.image: not set: the cluster image is what is applied (sealer reads such a file too, and fails when it pulls the image)`;

  it("is read, the missing image left for applying", () => {
    const reading = readClusterfile(text);
    expect(reading.spec?.image).toBe("");
    expect(reading.deferred.map(formatProblem)).toEqual([problem]);
  });

  it("stops parseClusterfile and loadClusterfile (what apply and plan read the file with), naming spec.image", async () => {
    expect(clusterfileProblems(text)).toEqual([problem]);
    const dir = mkdtempSync(join(tmpdir(), "sealant-noimage-"));
    writeFileSync(join(dir, "Clusterfile"), text);
    await expect(loadClusterfile(join(dir, "Clusterfile"))).rejects.toThrow(problem);
  });
});

describe("ssh.encrypted: sealer's scheme", () => {
  it("decrypts a password sealer encrypted, and warns that anyone can", () => {
    // GIVEN the cluster's password and a group's, encrypted as sealer does; the flag on the cluster covers the group (sealer merges them)
    const text = sealerCluster(`${master}\n      ssh:\n        passwd: ${sealerEncrypt("gr0up-pa55")}`).replace(
      "passwd: s3cret-Pa55",
      `passwd: ${sealerEncrypt("s3cret-Pa55")}\n    encrypted: true`,
    );
    const r = parseClusterfile(text);
    // THEN the passwords are the plain ones
    expect(r.spec.ssh.password).toBe("s3cret-Pa55");
    expect(r.spec.hosts[0]?.ssh?.password).toBe("gr0up-pa55");
    // AND the warning says it is no secret and how to keep one, without the password
    const w = r.warnings.map(formatProblem).join("\n");
    expect(w).toContain(`${SOURCE}: spec.ssh.encrypted: sealer's encrypted password, decrypted with the key in sealer's source: anyone can do the same`);
    expect(w).toMatch(/Pulumi secret/);
    expect(w).not.toMatch(/s3cret-Pa55|gr0up-pa55/);
  });

  it("is not written back in the clear by convert", () => {
    // GIVEN an encrypted password and a host group without roles
    const text = sealerCluster(`${master}\n    - ips: [ 10.0.0.9 ]`).replace(
      "passwd: s3cret-Pa55",
      `passwd: ${sealerEncrypt("s3cret-Pa55")}\n    encrypted: true`,
    );
    const r = convertClusterfile(text);
    // THEN the new file has no password, and both are said
    expect(r.text).not.toContain("s3cret-Pa55");
    expect(r.text).not.toMatch(/password/);
    expect(r.warnings.map(formatProblem)).toContain(
      "Clusterfile: spec.ssh.passwd: a password sealer encrypted is not written in the clear: give it as a Pulumi secret, or use ssh.privateKeyPath with a key file",
    );
    expect(r.unresolved.map(formatProblem)).toEqual([
      "Clusterfile: spec.hosts[1].roles: none: sealer gives these hosts no role; sealant's format names them (node for a worker)",
    ]);
  });

  it("names a password that is not sealer's encryption, never showing it", () => {
    const text = sealerCluster(master).replace("passwd: s3cret-Pa55", "passwd: s3cret-Pa55\n    encrypted: true");
    let message = "";
    try {
      parseClusterfile(text);
    } catch (err) {
      message = (err as ClusterSpecError).message;
    }
    expect(message).toContain("spec.ssh.passwd: encrypted is true, but this is not a password encrypted by sealer");
    expect(message).not.toContain("s3cret-Pa55");
  });
});

describe("refused where sealer refuses, naming the field", () => {
  it("an externalRegistry without a domain", () => {
    const text = sealerCluster(master, "  registry:\n    externalRegistry:\n      port: 443");
    expect(clusterfileProblems(text)).toContain(
      `${SOURCE}: spec.registry.externalRegistry.domain: is required: an external registry is named by its domain (sealer refuses it too)`,
    );
  });

  it.each([
    ["10.96.0.0/16", undefined],
    ["10.96.0.0/28,fd00::/108", undefined],
    ["10.96.0.0/29", 'SvcCIDR: "10.96.0.0/29" is too small: sealer takes the cluster DNS IP as the range\'s 10th address'],
    ["10.96.0.0", 'SvcCIDR: "10.96.0.0" is not a CIDR such as 10.96.0.0/16 (sealer derives the API service and cluster DNS IPs from it)'],
    ["10.96.0.300/16", 'SvcCIDR: "10.96.0.300/16" is not a CIDR such as 10.96.0.0/16 (sealer derives the API service and cluster DNS IPs from it)'],
  ])("SvcCIDR=%s", (cidr, problem) => {
    const text = sealerCluster(master, `  env:\n    - SvcCIDR=${cidr}`);
    if (problem === undefined) expect(readClusterfile(text).spec?.env["SvcCIDR"]).toBe(cidr);
    else expect(() => readClusterfile(text)).toThrow(`${SOURCE}: spec.env[0]: ${problem}`);
  });

  it("warns about a PodCIDR kubeadm will refuse (sealer reads it)", () => {
    expect(warnings(sealerCluster(master, "  env:\n    - PodCIDR=100.64.0.0"))).toContain(
      `${SOURCE}: spec.env[0]: PodCIDR: "100.64.0.0" is not a CIDR: kubeadm will refuse it (sealer reads it and fails later)`,
    );
  });

  it("a Config whose data is a mapping (sealer's type is a string)", () => {
    const text = `${sealerCluster(master)}---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {name: c}\nspec:\n  path: etc/a.yaml\n  data:\n    a: 1\n`;
    expect(() => readClusterfile(text)).toThrow('Clusterfile (Config "c"): spec.data: expected a string, got a mapping');
  });
});

describe("sealer's first Clusterfile format", () => {
  it("reads masters/nodes as sealer v0.8 did, and says how to convert", () => {
    const text = `apiVersion: sealer.cloud/v1
kind: Cluster
metadata:
  name: my-cluster
spec:
  image: kubernetes:v1.19.8
  provider: BAREMETAL
  ssh:
    passwd: xxx
  network:
    podCIDR: 100.64.0.0/10
  masters:
    ipList: [ 192.168.0.2, 192.168.0.3 ]
  nodes:
    ipList: [ 192.168.0.4 ]
`;
    const r = parseClusterfile(text);
    expect(r.spec.hosts.map((h) => [h.ips, h.roles])).toEqual([
      [["192.168.0.2", "192.168.0.3"], ["master"]],
      [["192.168.0.4"], ["node"]],
    ]);
    expect(r.spec.ssh.password).toBe("xxx");
    const w = r.warnings.map(formatProblem);
    expect(w).toContain(
      `${SOURCE}: spec: sealer's first Clusterfile format (spec.masters/spec.nodes), read as sealer v0.8 read it; \`sealant convert -f FILE\` writes it as a current one`,
    );
    expect(w).toContain(`${SOURCE}: spec.network: ignored, as sealer v0.8 did: give the ranges as env PodCIDR=... and SvcCIDR=...`);
  });
});
