import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { loadAll } from "js-yaml";
import { afterAll, describe, expect, it } from "vitest";
import { kubernetesRuntime } from "../../../../src/engine/cluster/runtime/kubernetes/runtime";
import { selectRuntime, type RuntimeContext } from "../../../../src/engine/cluster/runtime";

const exec = promisify(execFile);
const temps: string[] = [];
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

const hosts = [
  { ip: "10.0.0.2", roles: ["master"] },
  { ip: "10.0.0.3", roles: ["master"] },
  { ip: "10.0.0.10", roles: ["node"] },
];
const ctx = (over: Partial<RuntimeContext> = {}): RuntimeContext => ({
  cluster: "prod",
  action: "create",
  hosts,
  added: [],
  removed: [],
  env: {},
  rootfs: "/var/lib/sealant/prod/rootfs",
  dataRoot: "/var/lib/sealant/prod/",
  runtimeVersion: "v1.30.8",
  registry: "sea.hub:5000",
  settings: { kubeadm: [{ apiVersion: "kubeadm.k8s.io/v1beta3", kind: "ClusterConfiguration", networking: { podSubnet: "172.16.0.0/16" } }] },
  imageFiles: new Map([["etc/kubeadm.yml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 120\n"]]),
  ...over,
});

describe("the kubernetes runtime's commands", () => {
  it("is chosen by sealer's runtime label and creates clusters kubeadm-style", () => {
    expect(selectRuntime({ runtime: { type: "kubernetes", version: "v1.30.8" } }, "x")).toBe(kubernetesRuntime);
    expect(kubernetesRuntime.bootstrap).toBe("first-master");
    expect(kubernetesRuntime.imageFiles).toEqual(["etc/kubeadm.yml"]);
  });

  it("bootstrap writes the merged init configuration with a heredoc the shell leaves alone, then kubeadm init once", async () => {
    const cmd = kubernetesRuntime.command(
      "bootstrap",
      hosts[0]!,
      ctx({
        settings: {
          kubeadm: [
            { apiVersion: "kubeadm.k8s.io/v1beta3", kind: "ClusterConfiguration", apiServer: { extraArgs: { "audit-policy-file": "/etc/$HOME/`x`" } } },
          ],
        },
      }),
    );
    expect(cmd.command).toContain("kubeadm init --config /var/lib/sealant/prod/kubernetes/init.yaml --upload-certs");
    expect(cmd.command).toContain("if [ ! -f /etc/kubernetes/admin.conf ]");
    // Run just the file-writing part with a real shell: the YAML arrives byte for byte.
    const dir = await mkdtemp(join(tmpdir(), "sealant-k8s-"));
    temps.push(dir);
    const start = cmd.command.indexOf("(umask 077");
    const write = cmd.command.slice(start, cmd.command.indexOf("init.yaml)", start) + "init.yaml)".length);
    await exec("bash", ["-c", write.replaceAll("/var/lib/sealant/prod/kubernetes", dir)]);
    const docs = loadAll(await readFile(join(dir, "init.yaml"), "utf8")) as Record<string, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
    const cc = docs.find((d) => d["kind"] === "ClusterConfiguration")!;
    expect(cc["apiServer"]["extraArgs"]).toEqual({ "audit-policy-file": "/etc/$HOME/`x`" });
    expect(cc["imageRepository"]).toBeUndefined();
    expect(docs.find((d) => d["kind"] === "KubeletConfiguration")!["maxPods"]).toBe(120);
  });

  it("join gets a fresh token, CA hash and (masters) certificate key on the first master; they reach the host only through env", async () => {
    const master = kubernetesRuntime.command("join", hosts[1]!, ctx());
    expect(master.before?.command).toContain("kubeadm token create --ttl 2h");
    expect(master.before?.command).toContain("kubeadm init phase upload-certs --upload-certs");
    const worker = kubernetesRuntime.command(
      "join",
      { ...hosts[2]!, labels: { "node-role.kubernetes.io/worker": "" }, taints: ["dedicated=db:NoSchedule"] },
      ctx(),
    );
    expect(worker.before?.command).not.toContain("upload-certs");
    expect(worker.after?.command).toContain(`kubectl label node "$n" node-role.kubernetes.io/worker= --overwrite`);
    expect(worker.after?.command).toContain(`kubeadm token delete "\${SEALANT_KUBE_TOKEN%%.*}"`);
    expect(worker.command).toContain("lvscare");
    // The join file: the shell fills in the secrets from env, nothing else.
    const dir = await mkdtemp(join(tmpdir(), "sealant-k8s-"));
    temps.push(dir);
    const start = worker.command.indexOf("(umask 077");
    const end = worker.command.indexOf("join.yaml)", start) + "join.yaml)".length;
    const env = { ...process.env, SEALANT_KUBE_TOKEN: "abcdef.0123456789abcdef", SEALANT_KUBE_CA_HASH: "sha256:" + "1".repeat(64), SEALANT_KUBE_CERT_KEY: "" };
    await exec("bash", ["-c", worker.command.slice(start, end).replaceAll("/var/lib/sealant/prod/kubernetes", dir)], { env });
    const join1 = (loadAll(await readFile(join(dir, "join.yaml"), "utf8")) as Record<string, any>[])[0]!; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(join1["discovery"]["bootstrapToken"]).toEqual({
      apiServerEndpoint: "apiserver.cluster.local:6443",
      token: "abcdef.0123456789abcdef",
      caCertHashes: ["sha256:" + "1".repeat(64)],
    });
    expect(join1["nodeRegistration"]["taints"]).toEqual([{ key: "dedicated", value: "db", effect: "NoSchedule" }]);
    // No secret is ever part of a command's text.
    for (const c of [worker.command, worker.before!.command, master.command]) expect(c).not.toContain("abcdef.0123456789abcdef");
  });

  it("a joining worker starts clean: a kubelet.conf there (back from a forced removal) is reset with the old pod network, after its re-registered Node is deleted", () => {
    const worker = kubernetesRuntime.command("join", hosts[2]!, ctx());
    // Its kubelet registered the Node again by itself when the host came back: gone before the host resets (kubeadm join refuses a Ready one).
    expect(worker.before?.command).toContain(`n=$(node_of 10.0.0.10 2> /dev/null || true)\nif [ -n "$n" ]; then kubectl delete node "$n" > /dev/null; fi`);
    // Any kubelet.conf on a worker is reset, this cluster's too; a master's only when not this cluster's or without its etcd member.
    expect(worker.command).toMatch(/if \[ -f \/etc\/kubernetes\/kubelet.conf \]; then\n {2}if true; then\n.*\n {4}fresh_node\n/);
    const master = kubernetesRuntime.command("join", hosts[1]!, ctx());
    expect(master.command).toContain('if ! grep -qF "$SEALANT_KUBE_CA_DATA" /etc/kubernetes/kubelet.conf || [ "$SEALANT_KUBE_ETCD" = no-etcd-member ]; then');
    expect(master.before?.command).not.toContain("kubectl delete node");
    // The reset takes the old pod range's CNI configuration, IP reservations and bridge with it: kubeadm reset leaves them.
    for (const c of [worker.command, master.command]) {
      expect(c).toContain("kubeadm reset -f");
      expect(c).toContain("for d in /etc/cni/net.d /var/lib/cni; do");
      expect(c).toContain("ip link delete cni0");
    }
  });

  it("upgrade: the first master applies, the others follow; every node drained before and uncordoned after", () => {
    const first = kubernetesRuntime.command("upgrade", hosts[0]!, ctx({ runtimeVersion: "v1.31.4" }));
    expect(first.command).toContain('kubeadm upgrade apply -y --ignore-preflight-errors="$ignored" v1.31.4');
    const other = kubernetesRuntime.command("upgrade", hosts[2]!, ctx({ runtimeVersion: "v1.31.4" }));
    expect(other.command).toContain("kubeadm upgrade node");
    expect(other.command).toContain("systemctl restart kubelet");
    expect(other.before?.command).toMatch(/kubectl drain "\$n" --ignore-daemonsets --delete-emptydir-data --timeout=300s/);
    expect(other.after?.command).toContain(`kubectl uncordon "$n"`);
    expect(kubernetesRuntime.changeProblem!("v1.29.1", "v1.31.4")).toMatch(/one minor version at a time/);
    expect(kubernetesRuntime.changeProblem!("v1.30.8", "v1.31.4")).toBeUndefined();
  });

  it("leave drains (with the spec's timeout), resets the host, then deletes the node", () => {
    const cmd = kubernetesRuntime.command("leave", hosts[2]!, ctx({ settings: { drainTimeout: 60 } }));
    expect(cmd.before?.command).toContain("--timeout=60s");
    expect(cmd.command).toContain("kubeadm reset -f");
    expect(cmd.after?.command).toContain(`kubectl delete node "$n"`);
  });

  it("refuses an image without a Kubernetes version, and an etc/kubeadm.yml with a document kubeadm does not read", () => {
    expect(() => kubernetesRuntime.command("bootstrap", hosts[0]!, ctx({ runtimeVersion: undefined }))).toThrow(
      /declares no Kubernetes version: label it cluster.alpha.sealer.io\/cluster-runtime-version/,
    );
    // The version lands in commands on the hosts (kubeadm upgrade apply, the readiness check): only a version's characters.
    for (const step of ["check", "upgrade"] as const) {
      expect(() => kubernetesRuntime.command(step, hosts[0]!, ctx({ runtimeVersion: 'v1.31.4-$(touch /pwned)"' }))).toThrow(
        /the image's Kubernetes version: "v1.31.4-\$\(touch \/pwned\)\\"" is not a Kubernetes version/,
      );
    }
    expect(kubernetesRuntime.command("check", hosts[0]!, ctx({ runtimeVersion: "v1.31.4-rc.1+build.5" })).before?.command).toContain("v1.31.4-rc.1+build.5");
    expect(() => kubernetesRuntime.command("bootstrap", hosts[0]!, ctx({ imageFiles: new Map([["etc/kubeadm.yml", "kind: ClusterConfig\n"]]) }))).toThrow(
      /the image's etc\/kubeadm.yml\[0\]: kind "ClusterConfig"/,
    );
  });

  it("checks the spec's runtime settings, naming each bad field and what it takes", () => {
    expect(kubernetesRuntime.settingsProblems!({ kubeadm: [], drainTimeout: 60, vip: "10.103.97.9", certSANs: ["k8s.example.com"] })).toEqual([]);
    expect(
      kubernetesRuntime.settingsProblems!({ drainTimout: 60, drainTimeout: "5m", vip: "10.103.97.300", certSANs: "x", kubeadm: [{ kind: "ClusterConfig" }] }),
    ).toEqual([
      "runtime.drainTimout: not a setting of the kubernetes runtime (it reads kubeadm, drainTimeout, vip, certSANs, certificates)",
      'runtime.kubeadm[0]: kind "ClusterConfig" is not a kubeadm document here (expected InitConfiguration, ClusterConfiguration, JoinConfiguration, KubeletConfiguration, KubeProxyConfiguration)',
      'runtime.drainTimeout: "5m" is not a number of seconds (a whole number above 0, e.g. 300)',
      'runtime.vip: "10.103.97.300" is not an IPv4 address (the workers\' virtual IP for the API, e.g. 10.103.97.2)',
      "runtime.certSANs: must be a list of host names or IPs",
    ]);
    // The ranges and DNS domain, before kubeadm meets them on the first master.
    const networking = { podSubnet: "100.64.0.0/10,fd00:10::/56", serviceSubnet: "10.96.0.0/33", dnsDomain: "cluster.local\nx" };
    expect(kubernetesRuntime.settingsProblems!({ kubeadm: [{ apiVersion: "kubeadm.k8s.io/v1beta3", kind: "ClusterConfiguration", networking }] })).toEqual([
      'runtime.kubeadm: ClusterConfiguration networking.serviceSubnet: "10.96.0.0/33" is not an address range: an IP, "/" and a prefix length (e.g. 100.64.0.0/10, fd00:10::/64)',
      'runtime.kubeadm: ClusterConfiguration networking.dnsDomain: "cluster.local\\nx" is not a host name: dot-separated labels of letters, digits and "-" (not first or last), each at most 63 characters (e.g. sea.hub)',
    ]);
    // Each name lands in kubeadm's configuration and the API server's certificate.
    expect(kubernetesRuntime.settingsProblems!({ certSANs: ["ok.example", "bad\nname", "*.example.com"] })).toEqual([
      'runtime.certSANs[1]: "bad\\nname" is not a certificate name: a host name (optionally "*." first) or an IP address',
    ]);
  });

  it("offers the admin kubeconfig (pointed at the first master), the endpoint and the CA", async () => {
    const files: Record<string, string> = {
      "/etc/kubernetes/admin.conf":
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n    server: https://apiserver.cluster.local:6443\n    certificate-authority-data: Q0E=\nusers:\n- name: admin\n  user:\n    token: secret-token\n",
      "/etc/kubernetes/pki/ca.crt": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
    };
    const out = await kubernetesRuntime.outputs!((p) => Promise.resolve(files[p]), ctx());
    expect(out.endpoint).toBe("https://10.0.0.2:6443");
    expect(out.kubeconfig).toContain("server: https://10.0.0.2:6443");
    expect(out.kubeconfig).toContain("token: secret-token");
    expect(out.caCertificate).toContain("BEGIN CERTIFICATE");
    // A broken admin.conf is named, its lines (the admin's key) never quoted.
    files["/etc/kubernetes/admin.conf"] = "users:\n- name: admin\n  user: {client-key-data: S3CR3TKEY\n  token: [unclosed";
    const err = (await kubernetesRuntime.outputs!((p) => Promise.resolve(files[p]), ctx()).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/admin.conf on 10.0.0.2 is not YAML/);
    expect(err.message).not.toContain("S3CR3TKEY");
  });
});

describe("the kubernetes runtime with an image that brings its own API load balancer and add-ons", () => {
  const lb = { API_LB_IMAGE: "docker.io/library/haproxy:2.6" };
  const worker = hosts[2]!;

  it("a worker joins through the first master, then moves to the VIP once its haproxy static pod answers", () => {
    const prepare = kubernetesRuntime.command("init-host", worker, ctx({ env: lb })).command;
    expect(prepare).toContain("hosts_line apiserver.cluster.local 10.0.0.2");
    expect(prepare).not.toContain("lvscare care");
    const join = kubernetesRuntime.command("join", worker, ctx({ env: lb })).command;
    const vip = join.indexOf("hosts_line apiserver.cluster.local 10.103.97.2");
    expect(join).toContain("ip addr add 10.103.97.2/32 dev lo");
    expect(join).toContain("server master1 10.0.0.2:6443");
    expect(join).toContain("server master2 10.0.0.3:6443");
    expect(join).toContain('image: "docker.io/library/haproxy:2.6"');
    // The name moves only after the load balancer answered /healthz.
    expect(join.indexOf("get --raw /healthz")).toBeGreaterThan(0);
    expect(vip).toBeGreaterThan(join.indexOf("get --raw /healthz"));
    // Static pods are written through a hidden temp file: the kubelet reads every other file in its dir.
    expect(join).toContain("/etc/kubernetes/manifests/.kube-apiserver-lb.yaml.tmp");
  });

  it("a change of masters rewrites the load balancer's configuration and haproxy reloads it in place: the pod's manifest stays the same (no restart, no refused connection)", () => {
    const before = kubernetesRuntime.hostSettings!(worker, {}, ctx({ env: lb }))!.command;
    const after = kubernetesRuntime.hostSettings!(worker, {}, ctx({ env: lb, hosts: [hosts[0]!, worker] }))!.command;
    expect(before).toContain("server master2");
    expect(after).not.toContain("server master2");
    const manifest = (c: string) => c.slice(c.indexOf("kind: Pod"), c.indexOf("SEALANT_EOF", c.indexOf("kind: Pod")));
    expect(manifest(after)).toBe(manifest(before));
    expect(manifest(after)).toContain("command: [haproxy, -W, -db, -f, /usr/local/etc/haproxy/haproxy.cfg]");
    // Master-worker mode: SIGUSR2 to the master reloads; the configuration is written before.
    expect(after.indexOf('kill -USR2 "$lb_master"')).toBeGreaterThan(after.indexOf("server master1"));
  });

  it("bootstrap installs the image's CNI and bootstrap apps right after kubeadm init, from the rootfs", () => {
    const cmd = kubernetesRuntime.command(
      "bootstrap",
      hosts[0]!,
      ctx({ bootstrapApps: ["sh 'application/apps/flannel/flannel.sh'", "sh 'application/apps/coredns/coredns.sh'"] }),
    ).command;
    const init = cmd.indexOf("kubeadm init");
    const cni = cmd.indexOf("(cd /var/lib/sealant/prod/rootfs && sh 'application/apps/flannel/flannel.sh')");
    expect(init).toBeGreaterThan(0);
    expect(cni).toBeGreaterThan(init);
    expect(cmd.indexOf("coredns.sh")).toBeGreaterThan(cni);
  });

  it("an image whose etc/kubeadm.yml is not YAML is named in the error", () => {
    expect(() => kubernetesRuntime.command("bootstrap", hosts[0]!, ctx({ imageFiles: new Map([["etc/kubeadm.yml", "kind: A\nkind: B\n"]]) }))).toThrow(
      /^the image's etc\/kubeadm.yml is not valid YAML: duplicated mapping key/,
    );
  });
});
