import { loadAll } from "js-yaml";
import { describe, expect, it } from "vitest";
import {
  initConfig,
  joinConfig,
  kubeadmDocProblems,
  type KubeadmInputs,
  type KubeNode,
} from "../../../../src/engine/cluster/runtime/kubernetes/kubeadm-config";
import { parseKubeVersion, upgradeProblem } from "../../../../src/engine/cluster/runtime/kubernetes/version";

const node = (ip: string, roles: string[], over: Partial<KubeNode> = {}): KubeNode => ({
  ip,
  name: `host-${ip.split(".")[3]}`,
  roles,
  labels: {},
  taints: [],
  ...over,
});
const masters = [node("10.0.0.2", ["master"]), node("10.0.0.3", ["master"]), node("10.0.0.4", ["master"])];
const inputs = (over: Partial<KubeadmInputs> = {}): KubeadmInputs => ({
  clusterName: "prod",
  version: parseKubeVersion("v1.31.4", "test"),
  masters,
  image: [],
  overrides: [],
  ...over,
});
type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const docs = (text: string) => loadAll(text) as Doc[];
const byKind = (text: string, kind: string) => docs(text).find((d) => d["kind"] === kind)!;

describe("kubeadm configuration from the cluster spec", () => {
  it("init: the first master, a stable endpoint, every master and the VIP in the certificate, images by their upstream names", () => {
    const text = initConfig(inputs({ extraSANs: ["k8s.example.com"] }));
    expect(docs(text).map((d) => `${d["apiVersion"]} ${d["kind"]}`)).toEqual([
      "kubeadm.k8s.io/v1beta4 InitConfiguration",
      "kubeadm.k8s.io/v1beta4 ClusterConfiguration",
      "kubelet.config.k8s.io/v1beta1 KubeletConfiguration",
      "kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration",
    ]);
    const init = byKind(text, "InitConfiguration");
    expect(init["localAPIEndpoint"]).toEqual({ advertiseAddress: "10.0.0.2", bindPort: 6443 });
    expect(init["nodeRegistration"]).toMatchObject({
      name: "host-2",
      criSocket: "unix:///run/containerd/containerd.sock",
      taints: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }],
    });
    // v1beta4: extra arguments are a list of name/value pairs.
    expect(init["nodeRegistration"]["kubeletExtraArgs"]).toEqual([{ name: "node-ip", value: "10.0.0.2" }]);
    const cc = byKind(text, "ClusterConfiguration");
    expect(cc).toMatchObject({ clusterName: "prod", kubernetesVersion: "v1.31.4", controlPlaneEndpoint: "apiserver.cluster.local:6443" });
    // Images keep their upstream names (registry.k8s.io/...): containerd pulls them from the cluster registry.
    expect(cc["imageRepository"]).toBeUndefined();
    expect(cc["networking"]).toEqual({ podSubnet: "100.64.0.0/10", serviceSubnet: "10.96.0.0/22", dnsDomain: "cluster.local" });
    expect(cc["apiServer"]["certSANs"]).toEqual(["127.0.0.1", "apiserver.cluster.local", "10.103.97.2", "10.0.0.2", "10.0.0.3", "10.0.0.4", "k8s.example.com"]);
    expect(byKind(text, "KubeProxyConfiguration")).toMatchObject({ mode: "ipvs", ipvs: { excludeCIDRs: ["10.103.97.2/32"] } });
  });

  it("before 1.31 it writes v1beta3, extra arguments as a map", () => {
    const text = initConfig(inputs({ version: parseKubeVersion("v1.30.8", "test") }));
    const init = byKind(text, "InitConfiguration");
    expect(init["apiVersion"]).toBe("kubeadm.k8s.io/v1beta3");
    expect(init["nodeRegistration"]["kubeletExtraArgs"]).toEqual({ "node-ip": "10.0.0.2" });
  });

  it("merges spec overrides over the image's kubeadm.yml over the defaults; SANs only grow", () => {
    const image = [
      {
        apiVersion: "kubeadm.k8s.io/v1beta3",
        kind: "ClusterConfiguration",
        networking: { podSubnet: "10.244.0.0/16", serviceSubnet: "10.96.0.0/16" },
        apiServer: { certSANs: ["from-image"] },
        etcd: { local: { dataDir: "/var/lib/etcd" } },
      },
      { apiVersion: "kubelet.config.k8s.io/v1beta1", kind: "KubeletConfiguration", maxPods: 200 },
    ];
    const overrides = [
      {
        apiVersion: "kubeadm.k8s.io/v1beta3",
        kind: "ClusterConfiguration",
        networking: { podSubnet: "172.16.0.0/16" },
        apiServer: { certSANs: ["from-spec"] },
      },
    ];
    const text = initConfig(inputs({ image, overrides }));
    const cc = byKind(text, "ClusterConfiguration");
    expect(cc["apiVersion"]).toBe("kubeadm.k8s.io/v1beta4");
    expect(cc["networking"]).toEqual({ podSubnet: "172.16.0.0/16", serviceSubnet: "10.96.0.0/16", dnsDomain: "cluster.local" });
    expect(cc["etcd"]).toEqual({ local: { dataDir: "/var/lib/etcd" } });
    expect(cc["apiServer"]["certSANs"]).toEqual(expect.arrayContaining(["10.0.0.2", "10.103.97.2", "from-image", "from-spec"]));
    expect(byKind(text, "KubeletConfiguration")).toMatchObject({ cgroupDriver: "systemd", maxPods: 200 });
  });

  it("reads documents written for either kubeadm API: extra arguments become what the version takes, kubelet arguments add to node-ip", () => {
    const overrides = [
      { apiVersion: "kubeadm.k8s.io/v1beta3", kind: "ClusterConfiguration", apiServer: { extraArgs: { "audit-log-maxage": "30" } } },
      { apiVersion: "kubeadm.k8s.io/v1beta4", kind: "InitConfiguration", nodeRegistration: { kubeletExtraArgs: [{ name: "max-pods", value: "80" }] } },
    ];
    const v4 = initConfig(inputs({ overrides }));
    expect(byKind(v4, "ClusterConfiguration")["apiServer"]["extraArgs"]).toEqual([{ name: "audit-log-maxage", value: "30" }]);
    expect(byKind(v4, "InitConfiguration")["nodeRegistration"]["kubeletExtraArgs"]).toEqual([
      { name: "node-ip", value: "10.0.0.2" },
      { name: "max-pods", value: "80" },
    ]);
    const v3 = initConfig(inputs({ overrides, version: parseKubeVersion("v1.30.8", "test") }));
    expect(byKind(v3, "ClusterConfiguration")["apiServer"]["extraArgs"]).toEqual({ "audit-log-maxage": "30" });
    expect(byKind(v3, "InitConfiguration")["nodeRegistration"]["kubeletExtraArgs"]).toEqual({ "node-ip": "10.0.0.2", "max-pods": "80" });
  });

  it("join: masters as control planes with the certificate key, workers with their taints; secrets stay shell variables", () => {
    const master = byKind(joinConfig(inputs(), masters[1]!), "JoinConfiguration");
    expect(master["controlPlane"]).toEqual({ localAPIEndpoint: { advertiseAddress: "10.0.0.3", bindPort: 6443 }, certificateKey: "${SEALANT_KUBE_CERT_KEY}" });
    expect(master["discovery"]["bootstrapToken"]).toEqual({
      apiServerEndpoint: "apiserver.cluster.local:6443",
      token: "${SEALANT_KUBE_TOKEN}",
      caCertHashes: ["${SEALANT_KUBE_CA_HASH}"],
    });
    const worker = byKind(joinConfig(inputs(), node("10.0.0.10", ["node"], { taints: ["dedicated=db:NoSchedule", "gpu:NoExecute"] })), "JoinConfiguration");
    expect(worker["controlPlane"]).toBeUndefined();
    expect(worker["nodeRegistration"]["taints"]).toEqual([
      { key: "dedicated", value: "db", effect: "NoSchedule" },
      { key: "gpu", effect: "NoExecute" },
    ]);
  });

  it("names documents of a kind kubeadm does not read", () => {
    expect(kubeadmDocProblems([{ kind: "ClusterConfiguration" }, { kind: "ClusterConfig" }], "spec.runtime.kubeadm")).toEqual([
      'spec.runtime.kubeadm[1]: kind "ClusterConfig" is not a kubeadm document here (expected InitConfiguration, ClusterConfiguration, JoinConfiguration, KubeletConfiguration, KubeProxyConfiguration)',
    ]);
  });
});

describe("Kubernetes upgrades: one minor version at a time", () => {
  const v = (t: string) => parseKubeVersion(t, "test");
  it("allows patches and the next minor; refuses skips and downgrades with what to do", () => {
    expect(upgradeProblem(v("v1.30.2"), v("v1.30.8"))).toBeUndefined();
    expect(upgradeProblem(v("v1.30.8"), v("v1.31.0"))).toBeUndefined();
    expect(upgradeProblem(v("v1.29.3"), v("v1.31.4"))).toBe(
      'Kubernetes v1.29.3 cannot be upgraded to v1.31.4 in one step: kubeadm upgrades one minor version at a time (name an image with v1.30.x in upgrade.through, e.g. upgrade: {through: ["sealant/kubernetes:v1.30.N"]}: each minor is then its own step)',
    );
    expect(upgradeProblem(v("v1.31.4"), v("v1.30.8"))).toBe("Kubernetes v1.31.4 cannot be downgraded to v1.30.8");
    expect(() => parseKubeVersion("1.31", "image example/k8s:1.31 label io.sealant.runtime.version")).toThrow(
      'image example/k8s:1.31 label io.sealant.runtime.version: "1.31" is not a Kubernetes version (expected vMAJOR.MINOR.PATCH, e.g. v1.31.4)',
    );
  });
});
