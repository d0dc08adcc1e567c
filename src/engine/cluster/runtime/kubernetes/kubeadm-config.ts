import { dump } from "js-yaml";
import { deepMerge } from "../../spec";
import { kubeadmApiVersion, type KubeVersion } from "./version";
import { isMaster as isMasterHost } from "../../plan/roles";

/**
 * kubeadm's configuration for every host of a cluster, generated from the spec and merged in
 * the order spec overrides > the image's etc/kubeadm.yml > defaults, per document kind.
 * Pure: the runtime writes the results to the hosts; secrets (bootstrap token, certificate key,
 * CA hash) are shell variables in the text, expanded on the host from the command's env.
 */

/** The stable name the API is reached by: masters resolve it to the first master, other hosts to the VIP. */
export const API_SERVER_DOMAIN = "apiserver.cluster.local";
export const API_SERVER_PORT = 6443;
/** sealer's: the virtual IP every worker reaches the masters through (IPVS, lvscare-style). */
export const DEFAULT_VIP = "10.103.97.2";
export const DEFAULT_POD_SUBNET = "100.64.0.0/10";
export const DEFAULT_SERVICE_SUBNET = "10.96.0.0/22";
export const CRI_SOCKET = "unix:///run/containerd/containerd.sock";
/** The kubeadm kinds and the config APIs that are not kubeadm's own. */
const KUBELET_API = "kubelet.config.k8s.io/v1beta1";
const KUBE_PROXY_API = "kubeproxy.config.k8s.io/v1alpha1";

/** Shell variables the join command sets from its (secret) env before writing the file. */
export const JOIN_SECRETS = { token: "${SEALANT_KUBE_TOKEN}", caCertHash: "${SEALANT_KUBE_CA_HASH}", certificateKey: "${SEALANT_KUBE_CERT_KEY}" } as const;

export interface KubeNode {
  ip: string;
  /** The node name; none: kubeadm's default, the host's name lower-cased. */
  name?: string;
  roles: string[];
  labels: Record<string, string>;
  /** `key=value:Effect` or `key:Effect`, as in the spec. */
  taints: string[];
}

export interface KubeadmInputs {
  clusterName: string;
  version: KubeVersion;
  /** Masters in spec order: the first initialises the cluster. */
  masters: KubeNode[];
  /** @default DEFAULT_VIP */
  vip?: string;
  /** More names and IPs for the API server's certificate. */
  extraSANs?: string[];
  /** The image's etc/kubeadm.yml documents. */
  image: Record<string, unknown>[];
  /** The spec's `runtime.kubeadm` documents (a sealer Clusterfile's kubeadm documents). */
  overrides: Record<string, unknown>[];
}

type Doc = Record<string, unknown>;
const KINDS = ["InitConfiguration", "ClusterConfiguration", "JoinConfiguration", "KubeletConfiguration", "KubeProxyConfiguration"] as const;
type Kind = (typeof KINDS)[number];

/** What the user gave (image, then spec) for one kind, merged; apiVersion as written is dropped (ours is the version's). */
function given(inputs: KubeadmInputs, kind: Kind): Doc {
  const api = kubeadmApiVersion(inputs.version);
  const pick = (docs: Doc[]) => docs.filter((d) => d["kind"] === kind).reduce<Doc>((acc, d) => deepMerge(acc, inApi(d, api) as Doc), {});
  const { apiVersion: _a, kind: _k, ...merged } = deepMerge(pick(inputs.image), pick(inputs.overrides));
  return merged;
}

/** Every kind in image and spec documents must be one kubeadm reads here: a typo is an error, not ignored. */
export function kubeadmDocProblems(docs: Doc[], where: string): string[] {
  return docs
    .map((d, i) => ({ kind: d["kind"], i }))
    .filter(({ kind }) => typeof kind !== "string" || !(KINDS as readonly string[]).includes(kind))
    .map(({ kind, i }) => `${where}[${i}]: kind ${JSON.stringify(kind)} is not a kubeadm document here (expected ${KINDS.join(", ")})`);
}

/** v1beta4 writes extra arguments as a list of {name, value}; v1beta3 as a map. */
function args(api: string, map: Record<string, string>): unknown {
  return api.endsWith("v1beta4") ? Object.entries(map).map(([name, value]) => ({ name, value })) : map;
}

const ARG_KEYS = new Set(["extraArgs", "kubeletExtraArgs"]);

/**
 * Documents written for either kubeadm API (an image's kubeadm.yml is often v1beta3) in the one
 * this version takes: extra arguments as a map (v1beta3) or a list of {name, value} (v1beta4).
 */
function inApi(value: unknown, api: string): unknown {
  if (Array.isArray(value)) return value.map((v) => inApi(v, api));
  if (value === null || typeof value !== "object") return value;
  const out: Doc = {};
  for (const [k, v] of Object.entries(value as Doc)) {
    if (!ARG_KEYS.has(k)) out[k] = inApi(v, api);
    else if (Array.isArray(v))
      out[k] = api.endsWith("v1beta4") ? v : Object.fromEntries((v as { name: string; value: string }[]).map((a) => [a.name, a.value]));
    else out[k] = v !== null && typeof v === "object" ? args(api, v as Record<string, string>) : v;
  }
  return out;
}

/** `key=value:Effect` / `key:Effect` as kubeadm's taint objects. */
export function taintObjects(taints: string[]): { key: string; value?: string; effect: string }[] {
  return taints.map((t) => {
    const [kv, effect] = [t.slice(0, t.lastIndexOf(":")), t.slice(t.lastIndexOf(":") + 1)];
    const eq = kv.indexOf("=");
    return eq < 0 ? { key: kv, effect } : { key: kv.slice(0, eq), value: kv.slice(eq + 1), effect };
  });
}

function nodeRegistration(api: string, node: KubeNode, given: Doc): Doc {
  const isMaster = isMasterHost(node);
  // A master without taints of its own keeps kubeadm's control-plane taint; given taints replace it.
  const taints = node.taints.length > 0 ? taintObjects(node.taints) : isMaster ? [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }] : [];
  // The user's kubelet arguments are added to node-ip, not instead of it (a list would replace it whole).
  const userArgs = inApi({ kubeletExtraArgs: given["kubeletExtraArgs"] ?? {} }, "v1beta3") as { kubeletExtraArgs: Record<string, string> };
  const kubeletExtraArgs = args(api, { "node-ip": node.ip, ...userArgs.kubeletExtraArgs });
  return {
    ...deepMerge({ ...(node.name ? { name: node.name } : {}), criSocket: CRI_SOCKET, taints }, withoutKey(given, "kubeletExtraArgs")),
    kubeletExtraArgs,
  };
}

/** The API server certificate's SANs sealant asks kubeadm for: every master, the VIP, the stable name, localhost and the user's (certs.ts compares them with a running cluster's). */
export function apiServerCertSANs(inputs: KubeadmInputs): string[] {
  const vip = inputs.vip ?? DEFAULT_VIP;
  // SANs are added up, not replaced: the image's and the spec's both stay.
  const userSANs = [...inputs.image, ...inputs.overrides]
    .filter((d) => d["kind"] === "ClusterConfiguration")
    .flatMap((d) => ((d["apiServer"] as Doc | undefined)?.["certSANs"] as string[] | undefined) ?? []);
  return [...new Set(["127.0.0.1", API_SERVER_DOMAIN, vip, ...inputs.masters.map((m) => m.ip), ...(inputs.extraSANs ?? []), ...userSANs])];
}

function clusterConfiguration(inputs: KubeadmInputs, api: string): Doc {
  const fromUser = given(inputs, "ClusterConfiguration");
  const sans = apiServerCertSANs(inputs);
  const defaults: Doc = {
    apiVersion: api,
    kind: "ClusterConfiguration",
    clusterName: inputs.clusterName,
    kubernetesVersion: inputs.version.text,
    controlPlaneEndpoint: `${API_SERVER_DOMAIN}:${API_SERVER_PORT}`,
    networking: { podSubnet: DEFAULT_POD_SUBNET, serviceSubnet: DEFAULT_SERVICE_SUBNET, dnsDomain: "cluster.local" },
    apiServer: { certSANs: sans },
  };
  const merged = deepMerge(defaults, fromUser);
  // Every master, the VIP and the stable name stay in the certificate whatever the user adds.
  (merged["apiServer"] as Doc)["certSANs"] = sans;
  const { apiVersion: _a, kind: _k, ...rest } = merged;
  return { apiVersion: api, kind: "ClusterConfiguration", ...rest };
}

function kubeletConfiguration(inputs: KubeadmInputs): Doc {
  return { apiVersion: KUBELET_API, kind: "KubeletConfiguration", ...deepMerge({ cgroupDriver: "systemd" }, given(inputs, "KubeletConfiguration")) };
}

function kubeProxyConfiguration(inputs: KubeadmInputs): Doc {
  const vip = inputs.vip ?? DEFAULT_VIP;
  // Workers reach the masters through IPVS on the VIP: kube-proxy must leave that rule alone.
  return {
    apiVersion: KUBE_PROXY_API,
    kind: "KubeProxyConfiguration",
    ...deepMerge({ mode: "ipvs", ipvs: { excludeCIDRs: [`${vip}/32`] } }, given(inputs, "KubeProxyConfiguration")),
  };
}

function withoutKey(d: Doc, key: string): Doc {
  const { [key]: _drop, ...rest } = d;
  return rest;
}

function yamlDocs(docs: Doc[]): string {
  return docs.map((d) => dump(d, { noRefs: true, lineWidth: -1, sortKeys: false })).join("---\n");
}

/** For `kubeadm init --config` on the first master: Init + Cluster + Kubelet + KubeProxy configuration. */
export function initConfig(inputs: KubeadmInputs): string {
  const api = kubeadmApiVersion(inputs.version);
  const first = inputs.masters[0];
  if (!first) throw new Error("a Kubernetes cluster needs at least one master");
  const g = given(inputs, "InitConfiguration");
  const init: Doc = {
    apiVersion: api,
    kind: "InitConfiguration",
    ...deepMerge({ localAPIEndpoint: { advertiseAddress: first.ip, bindPort: API_SERVER_PORT } }, withoutKey(g, "nodeRegistration")),
    nodeRegistration: nodeRegistration(api, first, (g["nodeRegistration"] ?? {}) as Doc),
  };
  return yamlDocs([init, clusterConfiguration(inputs, api), kubeletConfiguration(inputs), kubeProxyConfiguration(inputs)]);
}

/**
 * For `kubeadm join --config` on `node`: masters join as control planes (advertising their own
 * address, with the certificate key), other hosts as workers through the VIP. The token, CA
 * hash and certificate key are JOIN_SECRETS shell variables.
 */
export function joinConfig(inputs: KubeadmInputs, node: KubeNode): string {
  const api = kubeadmApiVersion(inputs.version);
  const isMaster = isMasterHost(node);
  const g = given(inputs, "JoinConfiguration");
  const join: Doc = {
    apiVersion: api,
    kind: "JoinConfiguration",
    ...deepMerge(
      {
        discovery: {
          bootstrapToken: {
            // Masters reach the first master by the stable name; workers through the VIP (their /etc/hosts).
            apiServerEndpoint: `${API_SERVER_DOMAIN}:${API_SERVER_PORT}`,
            token: JOIN_SECRETS.token,
            caCertHashes: [JOIN_SECRETS.caCertHash],
          },
        },
        ...(isMaster
          ? { controlPlane: { localAPIEndpoint: { advertiseAddress: node.ip, bindPort: API_SERVER_PORT }, certificateKey: JOIN_SECRETS.certificateKey } }
          : {}),
      },
      withoutKey(g, "nodeRegistration"),
    ),
    nodeRegistration: nodeRegistration(api, node, (g["nodeRegistration"] ?? {}) as Doc),
  };
  return yamlDocs([join, kubeletConfiguration(inputs)]);
}
