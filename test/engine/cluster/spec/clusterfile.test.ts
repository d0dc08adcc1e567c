import { describe, expect, it } from "vitest";
import { parseClusterfile, parseClusterSpec } from "../../../../src/engine/cluster/spec";
import { clusterfileProblems, sealerCluster } from "./helpers";

const APPLICATION = `---
apiVersion: sealer.io/v2
kind: Application
metadata:
  name: my-apps
spec:
`;

/** sealer's documented Clusterfile (sealer.cool "Clusterfile" concept page), Cluster + Config + Plugin + Application + kubeadm. */
const SEALER_CLUSTERFILE = `apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: my-cluster
  creationTimestamp: null
spec:
  image: docker.io/sealerio/kubernetes:v1.22.15
  env:
    - EtcdDevice=/dev/vdb # EtcdDevice is device for etcd
    - StorageDevice=/dev/vdc
    - PodCIDR=100.64.0.0/10
  ssh:
    passwd: password
    pk: /root/.ssh/id_rsa
    port: "22"
    user: root
  hosts:
    - ips: [ 192.168.0.2,192.168.0.3,192.168.0.4 ]
      roles: [ master ]
      env:
        - StorageDevice=/dev/vde
      labels:
        fake: labels
      taints:
        - key1=value1:NoSchedule
      ssh: {}
    - ips: [ 192.168.0.5 ]
      roles: [ node, db ]
      ssh:
        passwd: yyy
        port: "2222"
  registry:
    localRegistry:
      domain: sea.hub
      port: 5000
      ha: false
  containerRuntime:
    type: containerd
status: {}
---
apiVersion: sealer.io/v1
kind: Config
metadata:
  name: mysql-config
spec:
  path: etc/mysql.yaml
  process: value|toJson|toBase64
  data: |
    config:
      username: root
      passwd: xxx
---
apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: pre_init_host
spec:
  type: SHELL
  action: pre-init-host
  scope: master | node
  data: |
    set -x
    bash scripts/pre_init_disk.sh
---
apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: post_install
spec:
  type: SHELL
  action: post-install
  data: |
    kubectl get nodes
${APPLICATION}  launchApps:
    - app1
    - app2
  configs:
    - name: app2
      launch:
        cmds:
          - kubectl apply -f app2.yaml
---
apiVersion: kubeadm.k8s.io/v1beta2
kind: ClusterConfiguration
networking:
  podSubnet: 101.64.0.0/10
`;

describe("sealer Clusterfile v2, read unchanged", () => {
  it("reads sealer's documented multi-document Clusterfile into one normalised spec", () => {
    // GIVEN sealer's documented Clusterfile with Cluster, Config, Plugin, Application and kubeadm documents
    // WHEN it is parsed
    const r = parseClusterfile(SEALER_CLUSTERFILE);
    const spec = r.spec;
    // THEN the Cluster is sealant's spec, in sealant's terms
    expect(r.format).toBe("sealer");
    expect(spec.name).toBe("my-cluster");
    expect(spec.image).toBe("docker.io/sealerio/kubernetes:v1.22.15");
    expect(spec.env).toEqual({ EtcdDevice: "/dev/vdb", StorageDevice: "/dev/vdc", PodCIDR: "100.64.0.0/10" });
    expect(spec.ssh).toEqual({ user: "root", port: 22, password: "password", privateKeyPath: "/root/.ssh/id_rsa", hostKeyPolicy: "strict" });
    expect(spec.hosts).toEqual([
      {
        ips: ["192.168.0.2", "192.168.0.3", "192.168.0.4"],
        roles: ["master"],
        env: { StorageDevice: "/dev/vde" },
        labels: { fake: "labels" },
        taints: ["key1=value1:NoSchedule"],
      },
      { ips: ["192.168.0.5"], roles: ["node", "db"], ssh: { password: "yyy", port: 2222 } },
    ]);
    expect(spec.registry).toMatchObject({ domain: "sea.hub", port: 5000, ha: false });
    expect(spec.registry.external).toBeFalsy();
    // AND the other documents are typed and folded in
    expect(r.plugins.map((p) => [p.name, p.type, p.action, p.scope, p.data])).toEqual([
      ["pre_init_host", "SHELL", ["pre-init-host"], ["master", "node"], "set -x\nbash scripts/pre_init_disk.sh"],
      ["post_install", "SHELL", ["post-install"], undefined, "kubectl get nodes"],
    ]);
    expect(spec.plugins).toEqual(r.plugins);
    expect(r.configs).toEqual([
      {
        name: "mysql-config",
        path: "etc/mysql.yaml",
        data: "config:\n  username: root\n  passwd: xxx\n",
        strategy: "overwrite",
        process: ["value", "toJson", "toBase64"],
      },
    ]);
    expect(spec.apps).toEqual({ launch: ["app1", "app2"], configs: [{ name: "app2", launch: { cmds: ["kubectl apply -f app2.yaml"] } }] });
    expect(spec.runtime).toEqual({
      containerRuntime: { type: "containerd" },
      kubeadm: [{ apiVersion: "kubeadm.k8s.io/v1beta2", kind: "ClusterConfiguration", networking: { podSubnet: "101.64.0.0/10" } }],
    });
    // AND sealant's defaults fill the rest
    expect(spec.dataRoot).toBe("/var/lib/sealant/my-cluster/");
    expect(spec.parallelism).toBe(16);
    expect(spec.timeouts).toEqual({ connect: 30, command: 600, apply: 3600 });
    expect(spec.upgrade).toEqual({ maxUnavailable: 1, strategy: "rolling" });
    // AND an unpinned image is worth a warning, not an error
    expect(r.warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([
      'spec.image: "docker.io/sealerio/kubernetes:v1.22.15" is not pinned by digest: the cluster gets whatever the tag points to when applied (pin it as ref@sha256:...)',
    ]);
  });

  it("keeps a numeric password exactly as written, as a string", () => {
    // GIVEN passwords that YAML would read as numbers: 123456, 0123 (octal-looking), 1e3, 0x1F
    const text = sealerCluster(
      `    - ips: [ 10.0.0.1 ]
      roles: [ master ]
      ssh:
        passwd: 0123
        pkPasswd: 1e3
    - ips: [ 10.0.0.2 ]
      roles: [ node ]
      ssh:
        passwd: 0x1F`,
    ).replace("passwd: s3cret-Pa55", "passwd: 123456");
    // WHEN parsed
    const { spec } = parseClusterfile(text);
    // THEN each is the string as written
    expect(spec.ssh.password).toBe("123456");
    expect(spec.hosts[0]?.ssh).toEqual({ password: "0123", passphrase: "1e3" });
    expect(spec.hosts[1]?.ssh?.password).toBe("0x1F");
  });

  it("accepts the ssh port as a string or a number, and rejects anything else", () => {
    // GIVEN port "2222" (sealer's docs), port 22 (a number) and port "22x"
    const ok = sealerCluster(
      `    - ips: [ 10.0.0.1 ]
      roles: [ master ]
      ssh: { port: "2222" }
    - ips: [ 10.0.0.2 ]
      roles: [ node ]
      ssh: { port: 22 }`,
    );
    // WHEN parsed THEN both are numbers
    const { spec } = parseClusterfile(ok);
    expect(spec.hosts.map((h) => h.ssh?.port)).toEqual([2222, 22]);
    // AND a port that is no number is an error at sealer's field
    expect(clusterfileProblems(ok.replace('port: "2222"', 'port: "22x"'))).toEqual([
      'Clusterfile (Cluster "my-cluster"): spec.hosts[0].ssh.port: "22x" is not a port number (1-65535)',
    ]);
  });

  it("reads sealer v0.8 plugin fields: CamelCase actions and `on`", () => {
    // GIVEN an old-style SHELL plugin
    const text = `${sealerCluster("    - ips: [ 10.0.0.1, 10.0.0.2 ]\n      roles: [ master ]")}
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata:
  name: taint
spec:
  type: SHELL
  action: PreInit|PostInstall
  on: 10.0.0.1-10.0.0.2
  data: |
    kubectl taint nodes node-role.kubernetes.io/master=:NoSchedule
`;
    // WHEN parsed THEN actions are today's phases and the range is expanded
    const [plugin] = parseClusterfile(text).plugins;
    expect(plugin?.action).toEqual(["pre-init-host", "post-install"]);
    expect(plugin?.scope).toEqual(["10.0.0.1", "10.0.0.2"]);
  });

  it("lets the Cluster's cmd override the Application's launch apps", () => {
    // GIVEN spec.cmd on the Cluster and launchApps in the Application
    const text = `${sealerCluster("    - ips: [ 10.0.0.1 ]\n      roles: [ master ]", '  cmd: [ "kubectl apply -f etc/tigera-operator.yaml" ]')}
${APPLICATION}  launchApps: [ app1 ]
`;
    // WHEN parsed THEN the Cluster's commands win (sealer: cmds have the highest priority)
    expect(parseClusterfile(text).spec.apps).toEqual({ cmds: ["kubectl apply -f etc/tigera-operator.yaml"] });
  });
});

describe("sealant's own Clusterfile", () => {
  it("reads apiVersion sealant.io/v1 with the spec in sealant's field names", () => {
    // GIVEN a sealant Clusterfile (YAML) with IPv6 hosts, env as a map, durations and a pinned image
    const text = `apiVersion: sealant.io/v1
kind: Cluster
metadata:
  name: edge
spec:
  image: registry.local/etcd:3.5@sha256:${"a".repeat(64)}
  ssh:
    user: ops
    privateKeyPath: keys/id_ed25519
    hostKeyPolicy: strict
    fingerprints:
      "fd00::1": SHA256:${"A".repeat(43)}
  env:
    ETCD_QUOTA: "8589934592"
  hosts:
    - ips: [ "fd00:0:0::1" ]
      roles: [ master ]
    - ips: [ "fd00::2" ]
      roles: [ worker ]
  timeouts:
    apply: 1h30m
    connect: 10s
  parallelism: 4
`;
    // WHEN parsed
    const r = parseClusterfile(text);
    // THEN it is normalised the same way (canonical IPv6, worker → node, durations in seconds)
    expect(r.format).toBe("sealant");
    expect(r.warnings).toEqual([]);
    expect(r.spec.hosts).toEqual([
      { ips: ["fd00::1"], roles: ["master"] },
      { ips: ["fd00::2"], roles: ["node"] },
    ]);
    expect(r.spec.ssh).toMatchObject({ user: "ops", port: 22, privateKeyPath: "keys/id_ed25519", hostKeyPolicy: "strict" });
    expect(r.spec.env).toEqual({ ETCD_QUOTA: "8589934592" });
    expect(r.spec.timeouts).toEqual({ connect: 10, command: 600, apply: 5400 });
    expect(r.spec.parallelism).toBe(4);
  });

  it("parses the Cluster resource's inputs (a plain object) with the same schema", () => {
    // GIVEN inputs as a Pulumi program gives them
    const spec = parseClusterSpec({ name: "etcd", image: "example/etcd:1", hosts: [{ ips: ["127.0.10.2"], roles: ["master"] }], env: ["A=1"] });
    // THEN the defaults are filled in
    expect(spec).toMatchObject({ name: "etcd", env: { A: "1" }, ssh: { user: "root", port: 22 }, dataRoot: "/var/lib/sealant/etcd/" });
  });
});
