import { dump, load } from "js-yaml";
import { shellQuote } from "../../../ssh/shell";
import { hookEnv } from "../hooks";
import type { LifecycleStep, Runtime, RuntimeCommand, RuntimeContext, RuntimeHost, RuntimeOutputs } from "../types";
import { drain, etcdctl, ETCD_MEMBER, forgetNode, joinLabels, labelsAndTaints, NOT_AN_ETCD_MEMBER, onNode } from "./first-master";
import { API_SERVER_DOMAIN, API_SERVER_PORT, initConfig, joinConfig, type KubeNode } from "./kubeadm-config";
import { firstMasterOf, kubeadmInputs, settingsProblems, versionOf, vipOf } from "./settings";
import { ADMIN_CONF, CA_CERT, PRELUDE, writeFile } from "./shell";
import { parseKubeVersion, upgradeProblem } from "./version";
import { controlPlaneReady, KUBELET_CONFIG_FROM_CLUSTER, kubeRollSteps, regenerateControlPlane, uploadConfig } from "./reconfigure";
import { lbImage, workerApi, workerVipPod } from "./worker-api";
import { isMaster as isMasterHost } from "../../plan/roles";
import { kubernetesCertificates } from "./certs";
import { etcdMembers } from "./etcd-members";

/**
 * The kubernetes runtime: kubeadm on sealer-style base images — `bin/` (kubeadm, kubectl,
 * kubelet, optionally crictl and lvscare), `scripts/` (containerd.sh or docker.sh,
 * init-kube.sh), `etc/kubeadm.yml`. The first master runs `kubeadm init`; other masters join
 * one at a time as control planes, workers in parallel through a local virtual IP to every
 * master (lvscare, when the image has it). Cluster-wide steps (join tokens, drains, node
 * deletion, readiness) run on the first master, before or after the host's own command.
 */
export const KUBE_IMAGE_FILES = ["etc/kubeadm.yml"] as const;

/**
 * A host's node state reset before it joins anew: kubeadm reset, and what kubeadm reset leaves of
 * the old membership's pod network. Its CNI configuration was written for the pod range of a Node
 * that is gone: left there, the kubelet reports the new Node Ready at once and its first pods get
 * sandboxes on the old range, before the network add-on writes the new one; and the bridge
 * plugin's cni0 keeps the old range's gateway and refuses every sandbox on another. No pod runs on
 * the host after the reset: the CNI's IP reservations are stale too.
 */
const FRESH_NODE = `fresh_node() {
  kubeadm reset -f > /dev/null 2>&1 || true
  for d in /etc/cni/net.d /var/lib/cni; do if [ -d "$d" ]; then find "$d" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; fi; done
  if ip link show cni0 > /dev/null 2>&1; then ip link delete cni0; fi
}`;

function command(step: LifecycleStep, host: RuntimeHost, ctx: RuntimeContext): RuntimeCommand {
  const env = hookEnv(step, host, ctx);
  const dir = `${ctx.dataRoot.replace(/\/$/, "")}/kubernetes`;
  const first = firstMasterOf(ctx);
  const isMaster = isMasterHost(host);
  const vip = vipOf(ctx);
  const masters = ctx.hosts.filter(isMasterHost).map((h) => h.ip);
  const run = (body: string, extra: Partial<RuntimeCommand> = {}): RuntimeCommand => ({
    command: `cd ${shellQuote(ctx.rootfs)}\n${PRELUDE}${body}`,
    env,
    ...extra,
  });

  switch (step) {
    case "init-host":
      // The image's container runtime and kubelet set-up (sealer's scripts), its binaries, and
      // the API's stable name: the first master on masters, the VIP on other hosts.
      return run(`if [ -f scripts/containerd.sh ]; then sh scripts/containerd.sh; elif [ -f scripts/docker.sh ]; then sh scripts/docker.sh; fi
${externalRegistryAuth(ctx)}
for b in kubeadm kubectl kubelet crictl lvscare; do if [ -f bin/$b ]; then install -m 0755 bin/$b /usr/bin/$b; fi; done
if [ -f scripts/init-kube.sh ]; then sh scripts/init-kube.sh; fi
${
  isMaster || lbImage(ctx)
    ? `hosts_line ${API_SERVER_DOMAIN} ${shellQuote(first.ip)}`
    : // sealer's way: IPVS rules on the VIP before the join; without lvscare, the first master directly.
      `if command -v lvscare > /dev/null; then
  lvscare care --vs ${vip}:${API_SERVER_PORT} ${masters.map((m) => `--rs ${m}:${API_SERVER_PORT}`).join(" ")} --health-path /healthz --health-schem https --run-once
  hosts_line ${API_SERVER_DOMAIN} ${shellQuote(vip)}
else
  hosts_line ${API_SERVER_DOMAIN} ${shellQuote(first.ip)}
fi`
}`);

    case "bootstrap":
      // Only the first master bootstraps (the runtime's bootstrap policy); a re-run after a
      // completed init (admin.conf there) does not init again.
      return run(
        `${writeFile(`${dir}/init.yaml`, initConfig(kubeadmInputs(ctx, [host])))}
if [ ! -f ${ADMIN_CONF} ]; then kubeadm init --config ${shellQuote(`${dir}/init.yaml`)} --upload-certs; fi
mkdir -p /root/.kube && cp ${ADMIN_CONF} /root/.kube/config
${bootstrapApps(ctx)}`,
        { after: joinLabels(host) },
      );

    case "join": {
      const inputs = kubeadmInputs(ctx);
      const node: KubeNode = { ip: host.ip, roles: host.roles, labels: host.labels ?? {}, taints: host.taints ?? [] };
      // A join that failed half way leaves files kubeadm refuses to join over: those go first.
      // A master's kubelet.conf is a finished join (this step resumed) only if it is this
      // cluster's (its CA) and its etcd member is still there: a master removed by force while it
      // was unreachable comes back with both, from a membership that is gone. A worker's is never
      // kept: back from a forced removal, its kubelet has registered its Node again by itself, with
      // a new pod range, over the old range's pod network (FRESH_NODE); a resumed join only
      // costs a reset.
      const gone = isMaster ? `! grep -qF "$SEALANT_KUBE_CA_DATA" /etc/kubernetes/kubelet.conf || [ "$SEALANT_KUBE_ETCD" = ${NOT_AN_ETCD_MEMBER} ]` : "true";
      return run(
        `${writeFile(`${dir}/join.yaml`, joinConfig(inputs, node))}${FRESH_NODE}
if [ -f /etc/kubernetes/kubelet.conf ]; then
  if ${gone}; then
    echo "${host.ip} holds a Kubernetes node's files from a membership this cluster does not count (removed while unreachable, an interrupted join, or another cluster): reset before it joins" >&2
    fresh_node
  fi
fi
if [ ! -f /etc/kubernetes/kubelet.conf ]; then
  if [ -e /etc/kubernetes/pki/ca.crt ] || [ -e /etc/kubernetes/manifests/kube-apiserver.yaml ]; then fresh_node; fi
${
  isMaster
    ? // A new member starts empty: kubeadm reset leaves a gone membership's etcd data when it cannot tell it is etcd's (seen on a loaded CI run).
      `  if [ -d /var/lib/etcd ]; then find /var/lib/etcd -mindepth 1 -maxdepth 1 -exec rm -rf {} +; fi
`
    : ""
}  kubeadm join --config ${shellQuote(`${dir}/join.yaml`)}
fi
rm -f ${shellQuote(`${dir}/join.yaml`)}
${isMaster ? `mkdir -p /root/.kube && cp ${ADMIN_CONF} /root/.kube/config\nhosts_line ${API_SERVER_DOMAIN} ${shellQuote(host.ip)}` : workerApi(vip, masters, ctx)}`,
        {
          // A fresh token (and certificate key for a control plane) for every join: a later join
          // never finds the ones from the create expired.
          before: {
            command: `${PRELUDE}token=$(kubeadm token create --ttl 2h)
hash=sha256:$(openssl x509 -pubkey -in ${CA_CERT} | openssl pkey -pubin -outform der 2>/dev/null | sha256sum | cut -d' ' -f1)
key=${isMaster ? "$(kubeadm init phase upload-certs --upload-certs | tail -n 1)" : '""'}
ca=$(base64 -w 0 ${CA_CERT})
${
  isMaster
    ? `members=$(${etcdctl(first)} member list)
etcd=$(echo "$members" | awk -F', ' -v url=${shellQuote(`https://${host.ip}:2380`)} '$4 == url { found = 1 } END { print found ? "${ETCD_MEMBER}" : "${NOT_AN_ETCD_MEMBER}" }')`
    : // The host's Node, if its kubelet registered one again (back from a forced removal): the
      // host is reset before it joins, and kubeadm join refuses a Ready Node of its name.
      `n=$(node_of ${shellQuote(host.ip)} 2> /dev/null || true)
if [ -n "$n" ]; then kubectl delete node "$n" > /dev/null; fi
etcd=""`
}
printf '{"SEALANT_KUBE_TOKEN":"%s","SEALANT_KUBE_CA_HASH":"%s","SEALANT_KUBE_CERT_KEY":"%s","SEALANT_KUBE_CA_DATA":"%s","SEALANT_KUBE_ETCD":"%s"}\\n' "$token" "$hash" "$key" "$ca" "$etcd"`,
            env: {},
          },
          // The token has done its job: deleted rather than left valid for its TTL. By its ID (the
          // part before the "."): the secret half never becomes a command line.
          after: {
            command: `${PRELUDE}kubeadm token delete "\${SEALANT_KUBE_TOKEN%%.*}" > /dev/null\n${joinLabels(host)?.command.replace(PRELUDE, "") ?? ""}`,
            env: {},
          },
        },
      );
    }

    case "leave":
      // A host that is gone cannot be drained (its pods never confirm) nor reset: its Node and,
      // for a master, its etcd member are removed from the first master.
      if (ctx.hostUnreachable) return run("true", { after: forgetNode(host, first) });
      // Drained first; kubeadm reset also takes a control plane's etcd member away; then the Node object.
      return run(`kubeadm reset -f`, { before: drain(host.ip, ctx), after: onNode(host.ip, `kubectl delete node "$n"`) });

    case "upgrade": {
      const version = versionOf(ctx);
      const isFirst = host.ip === first.ip;
      const upgrading = ctx.action !== "reconfigure";
      const config = `${dir}/config.yaml`;
      // This master's own InitConfiguration (its advertise address) with the cluster's configuration.
      const inputs = kubeadmInputs(ctx, [host]);
      const own = { ...inputs, masters: [...inputs.masters.filter((m) => m.ip === host.ip), ...inputs.masters.filter((m) => m.ip !== host.ip)] };
      // An upgrade moves the version first (the first master's `upgrade apply` moves the control
      // plane, every other node follows with `upgrade node`, which regenerates a master's control
      // plane from the configuration the first master uploaded); then the spec's configuration
      // is applied the documented way (reconfigure.ts) — all of it for a reconfiguration.
      return run(
        `install -m 0755 bin/kubeadm /usr/bin/kubeadm
${
  !upgrading
    ? ""
    : isFirst
      ? // Without kubeadm's own CoreDNS (an image that brings its DNS), kubeadm skips the DNS
        // upgrade but its preflight still fails on the missing CoreDNS: those two checks too.
        // CreateJob (a pod that must run to completion within a fixed 15 s) fails a healthy
        // cluster on a busy host; nodes and control-plane pods are checked by kubeadm's other
        // checks and by sealant's check after every minor.
        `ignored="CreateJob"
if ! kubectl -n kube-system get configmap coredns > /dev/null 2>&1; then ignored="$ignored,CoreDNSUnsupportedPlugins,CoreDNSMigration"; fi
kubeadm upgrade apply -y --ignore-preflight-errors="$ignored" ${shellQuote(version)}`
      : "kubeadm upgrade node"
}
${isMaster ? writeFile(config, initConfig(own)) : ""}${isFirst ? uploadConfig(config) : ""}${isMaster && (isFirst || !upgrading) ? regenerateControlPlane(host.ip, config) : ""}${KUBELET_CONFIG_FROM_CLUSTER}rm -f ${shellQuote(config)}
for b in kubelet kubectl crictl; do if [ -f bin/$b ]; then install -m 0755 bin/$b /usr/bin/$b; fi; done
# The new image's container runtime and kubelet set-up (e.g. its pause image: containerd's
# sandbox image must be one the new image's registry serves).
if [ -f scripts/containerd.sh ]; then sh scripts/containerd.sh; elif [ -f scripts/docker.sh ]; then sh scripts/docker.sh; fi
${externalRegistryAuth(ctx)}
if [ -f scripts/init-kube.sh ]; then sh scripts/init-kube.sh; fi
systemctl daemon-reload && systemctl restart kubelet`,
        { before: drain(host.ip, ctx), after: onNode(host.ip, `kubectl uncordon "$n"`) },
      );
    }

    case "check": {
      const version = versionOf(ctx);
      // A health check of the whole cluster also wants kube-system's pods running (not at apply
      // time: a network add-on the image launches afterwards is what makes some of them start).
      const pods =
        ctx.healthCheck && host.ip === first.ip
          ? `bad=$(kubectl get pods -n kube-system --no-headers | awk '$3 != "Running" && $3 != "Completed" { print $1 " " $3 }')
if [ -n "$bad" ]; then echo "kube-system pods not running: $bad" >&2; exit 1; fi
`
          : "";
      // Ready, on the image's kubelet version, and a master's control plane running that version,
      // Ready: asked of the API from the first master.
      const controlPlane = isMaster ? ' && control_plane_ready "$n"' : "";
      return run("true", {
        before: {
          command: `${PRELUDE}${pods}${isMaster ? controlPlaneReady(version) : ""}for i in $(seq 1 60); do
  n=$(node_of ${shellQuote(host.ip)} 2>/dev/null || true)
  if [ -n "$n" ]; then
    # An API error (e.g. while the control plane restarts after an upgrade) is a retry, not an answer.
    out=$(kubectl get node "$n" --no-headers 2> /dev/null) || out=""
    set -- $out
    case "\${2:-}" in Ready|Ready,*) [ "\${5:-}" = ${shellQuote(version)} ]${controlPlane} && exit 0 ;; esac
  fi
  sleep 2
done
echo ${shellQuote(`node ${host.ip} is not Ready on ${version}${isMaster ? " with its control plane Ready on it" : ""} after 120 s:`)} "$(kubectl get node "\${n:-?}" --no-headers 2>&1 || true)"${isMaster ? ' "$(kubectl -n kube-system get pods --no-headers 2>&1 | grep -e "-\${n:-?} " || true)"' : ""} >&2; exit 1`,
          env: {},
        },
      });
    }

    case "reset":
      // kubeadm reset, then what the image's own clean-up scripts undo (sealer's clean-kube.sh and
      // the container runtime's), then the rest of what this runtime wrote.
      return run(`kubeadm reset -f > /dev/null 2>&1 || true
for s in clean-kube.sh clean-containerd.sh clean-docker.sh; do if [ -f scripts/$s ]; then sh scripts/$s; fi; done
ip addr del ${vip}/32 dev lo 2> /dev/null || true
# Emptied rather than removed: /var/lib/etcd and /var/lib/kubelet are often disks of their own.
for d in /etc/kubernetes /var/lib/kubelet /var/lib/etcd /etc/cni/net.d /root/.kube ${shellQuote(dir)}; do
  if [ -d "$d" ]; then find "$d" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; rmdir "$d" 2> /dev/null || true; fi
done
hosts_line ${API_SERVER_DOMAIN} ""
for b in kubeadm kubectl kubelet crictl lvscare; do if [ -f bin/$b ]; then rm -f /usr/bin/$b; fi; done`);
  }
}

/**
 * The external registry's login put back into containerd's config.toml, which the image's
 * container runtime script has just rewritten (the script is sealant's mirrors step's, see
 * host/external-registry-clients.ts; absent without registry.external).
 */
function externalRegistryAuth(ctx: RuntimeContext): string {
  const script = shellQuote(`${ctx.dataRoot.replace(/\/$/, "")}/registry/containerd-auth.sh`);
  return `if [ -f ${script} ]; then sh ${script} > /dev/null; fi`;
}

/** The image's pod network and DNS (its bootstrap apps), from its rootfs, as soon as the API answers. */
function bootstrapApps(ctx: RuntimeContext): string {
  return (ctx.bootstrapApps ?? []).map((c) => `(cd ${shellQuote(ctx.rootfs)} && ${c})`).join("\n");
}

/** The admin kubeconfig with its server on the first master's address (usable from outside the cluster's hosts). */
async function outputs(readFile: (path: string) => Promise<string | undefined>, ctx: RuntimeContext): Promise<RuntimeOutputs> {
  const first = firstMasterOf(ctx);
  const endpoint = `https://${first.ip}:${API_SERVER_PORT}`;
  const admin = await readFile(ADMIN_CONF);
  const ca = await readFile(CA_CERT);
  const out: RuntimeOutputs = { endpoint };
  if (admin !== undefined) {
    let doc: { clusters?: { cluster?: { server?: string } }[] } | null;
    try {
      doc = load(admin) as typeof doc;
    } catch {
      // Not js-yaml's message: it quotes the lines around the fault, which hold the admin's key.
      throw new Error(`${ADMIN_CONF} on ${first.ip} is not YAML (its content is not shown: it holds the cluster admin's credentials)`);
    }
    for (const c of doc?.clusters ?? []) if (c.cluster) c.cluster.server = endpoint;
    // Re-serialised only when it parsed; the values are never put in an error message.
    out.kubeconfig = doc ? dump(doc, { lineWidth: -1 }) : admin;
  }
  if (ca !== undefined) out.caCertificate = ca;
  return out;
}

/**
 * A member's settings made current: a worker's VIP pointed at today's masters (lvscare's rules
 * once now, and its static pod), then from the first master its labels and taints.
 */
function hostSettings(host: RuntimeHost, previous: { labels?: Record<string, string>; taints?: string[] }, ctx: RuntimeContext): RuntimeCommand | undefined {
  const labels = labelsAndTaints(host, previous);
  if (isMasterHost(host)) return labels ? { command: "true", env: {}, after: labels } : undefined;
  const vip = vipOf(ctx);
  const masters = ctx.hosts.filter(isMasterHost).map((h) => h.ip);
  return {
    command: lbImage(ctx)
      ? `${PRELUDE}${workerApi(vip, masters, ctx)}`
      : `${PRELUDE}if command -v lvscare > /dev/null; then
  lvscare care --vs ${vip}:${API_SERVER_PORT} ${masters.map((m) => `--rs ${m}:${API_SERVER_PORT}`).join(" ")} --health-path /healthz --health-schem https --run-once
  ${workerVipPod(vip, masters)}
fi`,
    env: {},
    ...(labels ? { after: labels } : {}),
  };
}

export const kubernetesRuntime: Runtime = {
  kind: "kubernetes",
  bootstrap: "first-master",
  workersFollowMasters: true,
  imageFiles: KUBE_IMAGE_FILES,
  command,
  outputs,
  hostSettings,
  settingsProblems,
  certificates: kubernetesCertificates,
  members: etcdMembers,
  forcedRemoval: (host) => (isMasterHost(host) ? "its etcd member and Node are deleted" : "its Node is deleted"),
  rollSteps: kubeRollSteps,
  changeProblem(from, to) {
    if (!from || !to) return undefined;
    return upgradeProblem(parseKubeVersion(from, "the cluster's Kubernetes version"), parseKubeVersion(to, "the image's Kubernetes version"));
  },
};
