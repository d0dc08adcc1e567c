import { describe, expect, it } from "vitest";
import { ClusterSpecError, formatProblem, parseClusterfile, readClusterfile } from "../../../../src/engine/cluster/spec";
import { clusterfileProblems, inputProblems, sealerCluster } from "./helpers";

const SOURCE = 'Clusterfile (Cluster "my-cluster")';
const twoHosts = `    - ips: [ 10.0.0.1 ]
      roles: [ master ]
    - ips: [ 10.0.0.2 ]
      roles: [ node ]`;

describe("problems in the user's terms", () => {
  it("rejects an unknown field with a did-you-mean, in sealer's spelling", () => {
    // GIVEN typos at three levels: spec.hsots, spec.ssh.pasword, spec.hosts[0].rolse
    const text = sealerCluster("    - ips: [ 10.0.0.1 ]\n      rolse: [ master ]\n      roles: [ master ]")
      .replace("  hosts:", "  hsots: []\n  hosts:")
      .replace("passwd: s3cret-Pa55", "pasword: s3cret-Pa55");
    // WHEN parsed THEN each is named with the field it was likely meant to be, and no value is shown
    expect(clusterfileProblems(text)).toEqual([
      `${SOURCE}: spec.hosts[0].rolse: unknown field (did you mean "roles"?)`,
      `${SOURCE}: spec.ssh.pasword: unknown field (did you mean "passwd"?)`,
      `${SOURCE}: spec.hsots: unknown field (did you mean "hosts"?)`,
    ]);
  });

  it("ignores an unknown field with no near miss, as sealer does, and says so", () => {
    // GIVEN sealer's obsolete spec.provider (sealer's decoder ignores unknown fields)
    const text = sealerCluster(twoHosts, "  provider: BAREMETAL");
    // WHEN read THEN it is read, with a warning listing the fields there are
    expect(parseClusterfile(text).warnings.map(formatProblem)).toContain(
      `${SOURCE}: spec.provider: unknown field (expected one of "image", "env", "cmd_args", "cmd", "appNames", "hosts", "ssh", "containerRuntime", "hostAliases", "registry", "dataRoot"): ignored, as sealer ignores it`,
    );
  });

  it("names a bad IP with its position and what is allowed", () => {
    // GIVEN a second host group whose first IP is not an address
    const text = sealerCluster(twoHosts.replace("10.0.0.2", "10.0.0.300"));
    // THEN the message has the path, the value and what is allowed
    expect(clusterfileProblems(text)).toEqual([`${SOURCE}: spec.hosts[1].ips[0]: "10.0.0.300" is not an IPv4 or IPv6 address`]);
  });

  it("reports an IP listed in two groups, and a host in two role groups", () => {
    // GIVEN 10.0.0.2 in two node groups and 10.0.0.1 both as master and as node
    const text = sealerCluster(`    - ips: [ 10.0.0.1 ]
      roles: [ master ]
    - ips: [ 10.0.0.2 ]
      roles: [ node ]
    - ips: [ 10.0.0.2, 10.0.0.1 ]
      roles: [ node ]`);
    // THEN both are named with the groups involved
    expect(clusterfileProblems(text)).toEqual([
      `${SOURCE}: spec.hosts[2].ips[0]: 10.0.0.2 is in spec.hosts[1] and spec.hosts[2]: list each host once`,
      `${SOURCE}: spec.hosts[2].ips[1]: 10.0.0.1 is in two role groups, spec.hosts[0] (master) and spec.hosts[2] (node): a host belongs to one group (give it all its roles there)`,
    ]);
  });

  it("requires at least one master, and one IP family", () => {
    // GIVEN only node hosts, IPv4 and IPv6 mixed
    const text = sealerCluster(`    - ips: [ 10.0.0.1 ]
      roles: [ node ]
    - ips: [ "fd00::1" ]
      roles: [ worker ]`);
    expect(clusterfileProblems(text)).toEqual([
      `${SOURCE}: spec.hosts: no host group has the role "master": a cluster needs at least one master`,
      `${SOURCE}: spec.hosts: IPv4 (10.0.0.1) and IPv6 (fd00::1) hosts are mixed: all hosts of a cluster must be in one IP family`,
    ]);
  });

  it("requires the cluster name to be a DNS label", () => {
    const text = sealerCluster(twoHosts).replace("name: my-cluster", "name: My_Cluster");
    expect(clusterfileProblems(text)).toEqual([
      'Clusterfile (Cluster "My_Cluster"): metadata.name: "My_Cluster" is not a valid DNS label: lower-case letters, digits and "-", starting and ending with a letter or digit',
    ]);
  });

  it("lists every problem of the file at once, across documents", () => {
    // GIVEN a bad taint, a bad label, a bad plugin action and an unknown kind
    const text = `${sealerCluster(`    - ips: [ 10.0.0.1 ]
      roles: [ master ]
      taints: [ "dedicated=db:NoScheduled" ]
      labels:
        "-bad": x`)}
---
apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: hook
spec:
  action: post-instal
  data: echo hi
---
apiVersion: sealer.io/v1
kind: Confg
metadata:
  name: x
`;
    expect(clusterfileProblems(text)).toEqual([
      `${SOURCE}: spec.hosts[0].labels["-bad"]: label "-bad" is not a valid name: at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit (optionally prefixed by "example.com/")`,
      `${SOURCE}: spec.hosts[0].taints[0]: taint "dedicated=db:NoScheduled" has effect "NoScheduled": expected one of NoSchedule, PreferNoSchedule, NoExecute`,
      'Clusterfile (Plugin "hook"): spec.action: "post-instal" is not a plugin action (expected pre-init-host, post-init-host, pre-clean-host, post-clean-host, upgrade-host, pre-install, post-install, pre-uninstall, post-uninstall, pre-scaleup, post-scaleup, upgrade, rollback); did you mean "post-install"?',
    ]);
    // AND the document of no known kind is skipped, as sealer skips it, with a did-you-mean
    expect(readClusterfile(text).warnings.map(formatProblem)).toContain(
      'Clusterfile (Confg "x"): kind: kind "Confg" is not one sealer or sealant reads: ignored, as sealer ignores it (did you mean "Config"?)',
    );
  });

  it("never prints a secret's value", () => {
    // GIVEN secrets of the wrong type and secrets next to other errors
    const text = sealerCluster(`    - ips: [ 10.0.0.1 ]
      roles: [ master ]
      ssh:
        passwd: hunter2
        pkPasswd: 424242
        port: 0`).replace("passwd: s3cret-Pa55", "passwd: [ s3cret-Pa55 ]");
    const inputs = {
      name: "c",
      image: "x:1",
      hosts: [{ ips: ["10.0.0.1"], roles: ["master"], ssh: { password: 7, passphrase: false, privateKey: "not-a-key-hunter2" } }],
      registry: { password: 99 },
    };
    // WHEN they fail
    let message = "";
    try {
      parseClusterfile(text);
    } catch (err) {
      message = (err as ClusterSpecError).message;
    }
    const lines = inputProblems(inputs);
    // THEN the messages say what is wrong, never the secret
    expect(message.split("\n").slice(1)).toEqual([
      `  ${SOURCE}: spec.ssh.passwd: expected a string, got a list`,
      `  ${SOURCE}: spec.hosts[0].ssh.port: 0 is not a port number (1-65535)`,
    ]);
    expect(message).not.toMatch(/s3cret-Pa55|hunter2|424242/);
    expect(lines).toEqual([
      "hosts[0].ssh.password: expected a string, got <redacted>",
      "hosts[0].ssh.privateKey: is not a PEM or OpenSSH private key (expected a -----BEGIN ... PRIVATE KEY----- block)",
      "hosts[0].ssh.passphrase: expected a string, got <redacted>",
      "registry.password: expected a string, got <redacted>",
    ]);
    expect(lines.join("\n")).not.toMatch(/hunter2|99|false/);
  });

  it("uses the inputs' own paths for the Cluster resource", () => {
    expect(
      inputProblems({ name: "c", image: "x:1", hosts: [{ ips: ["10.0.0.1", "nope"], roles: ["master"] }], parallelism: 0, timeouts: { apply: "soon" } }),
    ).toEqual([
      'hosts[0].ips[1]: "nope" is not an IPv4 or IPv6 address',
      'timeouts.apply: "soon" is not a duration: a number of seconds or e.g. "90s", "5m", "1h30m"',
      "parallelism: 0 is below the minimum 1",
    ]);
  });

  it("reads sealer's v1 Cluster format as sealer v0.8 did, and rejects a file without a Cluster", () => {
    // GIVEN a v1 Cluster with no masters: read, but there is nothing to apply
    const v1 = "apiVersion: sealer.aliyun.com/v1alpha1\nkind: Cluster\nmetadata: {name: c}\nspec: {image: x:1, masters: {ipList: []}}\n";
    expect(readClusterfile(v1).warnings.map(formatProblem)).toContain(
      'Clusterfile (Cluster "c"): spec: sealer\'s first Clusterfile format (spec.masters/spec.nodes), read as sealer v0.8 read it; `sealant convert -f FILE` writes it as a current one',
    );
    expect(clusterfileProblems(v1)).toEqual(['Clusterfile (Cluster "c"): spec.hosts: no hosts: list the cluster\'s hosts (ips and roles)']);
    // AND an `encrypted` password that is not sealer's encryption of one is named without its value
    expect(clusterfileProblems(sealerCluster(twoHosts).replace("passwd: s3cret-Pa55", "passwd: b64stuff\n    encrypted: true"))).toEqual([
      `${SOURCE}: spec.ssh.passwd: encrypted is true, but this is not a password encrypted by sealer (sealer fails to log in with it too)`,
    ]);
    expect(clusterfileProblems("# nothing\n")).toEqual(["Clusterfile: no Cluster document (kind: Cluster, with apiVersion sealer.io/v2 or sealant.io/v1)"]);
    expect(clusterfileProblems("a: [1\n")[0]).toMatch(/^Clusterfile: invalid YAML: /);
  });
});
