import type { CertificateExpiry } from "../../plan/types";
import { shellQuote } from "../../../ssh/shell";
import type { RuntimeCertificates, RuntimeContext, RuntimeHost } from "../types";
import { apiServerCertSANs, CRI_SOCKET, DEFAULT_SERVICE_SUBNET, initConfig, type KubeNode } from "./kubeadm-config";
import { kubeadmNetwork } from "./network";
import { kubeadmInputs } from "./settings";
import { DEFAULT_RENEW_BEFORE, durationSeconds } from "./certs-settings";
import { ADMIN_CONF, PRELUDE, writeFile } from "./shell";

/**
 * A master's control-plane certificates, as kubeadm lists them (`kubeadm certs check-expiration`):
 * read with openssl, renewed with `kubeadm certs renew all` (kubeadm's one-year leaf
 * certificates, the CAs kept), and the API server's made again for changed SANs with `kubeadm
 * init phase certs apiserver`. After either, the control plane's static pods are restarted the
 * way kubeadm documents it: their manifests moved out of the kubelet's directory until their
 * containers stop, then back.
 */

const PKI = "/etc/kubernetes/pki";
const MANIFESTS = "/etc/kubernetes/manifests";

/** kubeadm's certificates under /etc/kubernetes/pki: name and file (etcd's only with stacked etcd). */
const PKI_CERTS: readonly (readonly [string, string, boolean])[] = [
  ["ca", "ca.crt", true],
  ["etcd-ca", "etcd/ca.crt", true],
  ["front-proxy-ca", "front-proxy-ca.crt", true],
  ["apiserver", "apiserver.crt", false],
  ["apiserver-kubelet-client", "apiserver-kubelet-client.crt", false],
  ["apiserver-etcd-client", "apiserver-etcd-client.crt", false],
  ["front-proxy-client", "front-proxy-client.crt", false],
  ["etcd-server", "etcd/server.crt", false],
  ["etcd-peer", "etcd/peer.crt", false],
  ["etcd-healthcheck-client", "etcd/healthcheck-client.crt", false],
];
/** The kubeconfigs whose embedded client certificates kubeadm renews (super-admin.conf: the first master, from 1.29). */
const KUBECONFIGS = ["admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf"] as const;
const CA_NAMES = new Set(PKI_CERTS.filter(([, , ca]) => ca).map(([name]) => name));

/** Prints `cert<TAB>name<TAB>notAfter` for every certificate the master has, then `san<TAB>...` for each API server SAN. Reads only. */
export const READ_CERTIFICATES = `set -eu
end_of() { openssl x509 -noout -enddate | sed 's/^notAfter=//'; }
${PKI_CERTS.map(([name, file]) => `if [ -f ${PKI}/${file} ]; then printf 'cert\\t%s\\t%s\\n' ${name} "$(end_of < ${PKI}/${file})"; fi`).join("\n")}
for k in ${KUBECONFIGS.join(" ")}; do
  f=/etc/kubernetes/$k
  [ -f "$f" ] || continue
  data=$(awk '$1 == "client-certificate-data:" { print $2; exit }' "$f")
  [ -n "$data" ] || continue
  printf 'cert\\t%s\\t%s\\n' "$k" "$(printf '%s' "$data" | base64 -d | end_of)"
done
if [ -f ${PKI}/apiserver.crt ]; then
  openssl x509 -noout -ext subjectAltName < ${PKI}/apiserver.crt | tail -n +2 | tr ',' '\\n' | sed 's/^ *//' | while IFS= read -r s; do
    [ -z "$s" ] || printf 'san\\t%s\\n' "$s"
  done
fi
`;

/** What READ_CERTIFICATES printed: each certificate's expiry (ISO) and the API server certificate's SANs (`DNS:`/`IP Address:` dropped). */
export function parseCertificates(stdout: string): { certificates: CertificateExpiry[]; apiServerSANs: string[] } {
  const certificates: CertificateExpiry[] = [];
  const apiServerSANs: string[] = [];
  for (const line of stdout.split("\n")) {
    const [tag, a = "", b = ""] = line.split("\t");
    if (tag === "cert") {
      const t = Date.parse(b);
      if (Number.isNaN(t)) throw new Error(`the expiry of certificate ${a} could not be read (openssl printed ${JSON.stringify(b)})`);
      certificates.push({ name: a, notAfter: new Date(t).toISOString(), ...(CA_NAMES.has(a) ? { ca: true } : {}) });
    } else if (tag === "san") {
      apiServerSANs.push(a.replace(/^(DNS|IP Address):/, ""));
    }
  }
  return { certificates, apiServerSANs };
}

function renewBeforeSeconds(ctx: RuntimeContext): number {
  const given = (ctx.settings?.["certificates"] as { renewBefore?: unknown } | undefined)?.renewBefore;
  return durationSeconds(given) ?? durationSeconds(DEFAULT_RENEW_BEFORE)!;
}

/**
 * The SANs kubeadm gives a master's API server certificate from the spec: sealant's list (every
 * master, the VIP, the stable name, localhost, the user's) and kubeadm's own — the node's name,
 * the `kubernetes` service's names and first IP, the host's address.
 */
function wantedSANs(host: RuntimeHost, hostname: string, ctx: RuntimeContext): string[] {
  const inputs = kubeadmInputs(ctx, [host]);
  const net = { ...kubeadmNetwork(inputs.image), ...kubeadmNetwork(inputs.overrides) };
  const domain = typeof net.dnsDomain === "string" ? net.dnsDomain : "cluster.local";
  const subnet = typeof net.serviceSubnet === "string" ? net.serviceSubnet : DEFAULT_SERVICE_SUBNET;
  const own = [
    hostname.toLowerCase(),
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    `kubernetes.default.svc.${domain}`,
    firstIp(subnet),
    host.ip,
  ];
  return [...new Set([...apiServerCertSANs(inputs), ...own].filter((s) => s !== ""))];
}

/** The first address of a service range (its IPv4 range when dual stack): the `kubernetes` service's. */
function firstIp(subnets: string): string {
  const v4 = subnets
    .split(",")
    .map((s) => s.trim())
    .find((s) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(s));
  if (!v4) return "";
  const [addr, bits] = v4.split("/") as [string, string];
  const n = addr.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  const mask = Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0;
  const first = ((n & mask) >>> 0) + 1;
  return [24, 16, 8, 0].map((s) => (first >>> s) & 255).join(".");
}

/** Manifests held out of the kubelet's directory by a restart that stopped part way go back first. */
function restartStaticPods(dir: string, components: string[]): string {
  const held = shellQuote(`${dir}/static-pods-held`);
  return `put_back() { for f in ${held}/*.yaml; do if [ -f "$f" ]; then mv -f "$f" ${MANIFESTS}/; fi; done; }
put_back
mkdir -p ${held}
for c in ${components.join(" ")}; do if [ -f ${MANIFESTS}/$c.yaml ]; then mv -f ${MANIFESTS}/$c.yaml ${held}/; fi; done
# The kubelet looks at its manifests every 20 s (fileCheckFrequency): wait until it stopped them.
for i in $(seq 1 45); do
  running=""
  if command -v crictl > /dev/null; then
    for c in ${components.join(" ")}; do
      if [ -n "$(crictl --runtime-endpoint ${CRI_SOCKET} ps -q --state running --name "^$c\\$" 2> /dev/null)" ]; then running="$running $c"; fi
    done
  elif [ "$i" -le 10 ]; then running=unknown; fi
  [ -n "$running" ] || break
  sleep 2
done
put_back
wait_api
`;
}

const CONTROL_PLANE = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"];

function dirOf(ctx: RuntimeContext): string {
  return `${ctx.dataRoot.replace(/\/$/, "")}/kubernetes`;
}

/** Every leaf certificate renewed (kubeadm's renewal: one year, same keys' CAs, same SANs), the control plane restarted, root's kubeconfig refreshed. */
function renew(_host: RuntimeHost, ctx: RuntimeContext): { command: string; env: Record<string, string> } {
  return {
    command: `${PRELUDE}kubeadm certs renew all > /dev/null
${restartStaticPods(dirOf(ctx), CONTROL_PLANE)}mkdir -p /root/.kube && cp ${ADMIN_CONF} /root/.kube/config`,
    env: {},
  };
}

/**
 * The API server certificate made again from the spec's SANs: the old certificate and key moved
 * aside (kubeadm keeps an existing one), `kubeadm init phase certs apiserver` with this master's
 * configuration, the old pair put back if that fails; the cluster's stored ClusterConfiguration
 * updated so masters joining later get the same SANs; the API server restarted.
 */
function updateSANs(host: RuntimeHost, ctx: RuntimeContext): { command: string; env: Record<string, string> } {
  const dir = dirOf(ctx);
  const inputs = kubeadmInputs(ctx, [host]);
  const self: KubeNode = inputs.masters.find((m) => m.ip === host.ip) ?? { ip: host.ip, roles: host.roles, labels: {}, taints: [] };
  // initConfig advertises its first master's address: this one's.
  const config = initConfig({ ...inputs, masters: [self, ...inputs.masters.filter((m) => m.ip !== host.ip)] });
  const cfg = shellQuote(`${dir}/apiserver-sans.yaml`);
  const kept = shellQuote(`${dir}/apiserver-previous`);
  return {
    command: `${PRELUDE}${writeFile(`${dir}/apiserver-sans.yaml`, config)}mkdir -p ${kept}
if [ -f ${PKI}/apiserver.crt ] && [ -f ${PKI}/apiserver.key ]; then cp -p ${PKI}/apiserver.crt ${PKI}/apiserver.key ${kept}/; fi
rm -f ${PKI}/apiserver.crt ${PKI}/apiserver.key
if ! out=$(kubeadm init phase certs apiserver --config ${cfg} 2>&1); then
  cp -p ${kept}/apiserver.crt ${kept}/apiserver.key ${PKI}/ 2> /dev/null || true
  echo "kubeadm init phase certs apiserver failed (the previous certificate is back): $out" >&2
  exit 1
fi
kubeadm init phase upload-config kubeadm --config ${cfg} > /dev/null
rm -rf ${kept} ${cfg}
${restartStaticPods(dir, ["kube-apiserver"])}`,
    env: {},
  };
}

export const kubernetesCertificates: RuntimeCertificates = {
  read: READ_CERTIFICATES,
  parse: parseCertificates,
  wantedSANs,
  renewBeforeSeconds,
  renew,
  updateSANs,
};
