import { dump, load, loadAll } from "js-yaml";
import { shellQuote } from "../../../ssh/shell";
import type { PlannedHost } from "../../plan/types";
import { hookEnv } from "../hooks";
import type { FirstMasterCommand, LifecycleStep, Runtime, RuntimeCommand, RuntimeContext, RuntimeHost, RuntimeOutputs } from "../types";
import { HAPROXY_DIR, HAPROXY_POD, haproxyConfig, haproxyPod } from "./api-load-balancer";
import { API_SERVER_DOMAIN, API_SERVER_PORT, DEFAULT_VIP, initConfig, joinConfig, kubeadmDocProblems, type KubeadmInputs, type KubeNode } from "./kubeadm-config";
import { parseKubeVersion, upgradeProblem } from "./version";

/**
 * The kubernetes runtime: kubeadm on sealer-style base images — `bin/` (kubeadm, kubectl,
 * kubelet, optionally crictl and lvscare), `scripts/` (containerd.sh or docker.sh,
 * init-kube.sh), `etc/kubeadm.yml`. The first master runs `kubeadm init`; other masters join
 * one at a time as control planes, workers in parallel through a local virtual IP to every
 * master (lvscare, when the image has it). Cluster-wide steps (join tokens, drains, node
 * deletion, readiness) run on the first master, before or after the host's own command.
 */
export const KUBE_IMAGE_FILES = ["etc/kubeadm.yml"] as const;
const ADMIN_CONF = "/etc/kubernetes/admin.conf";
const CA_CERT = "/etc/kubernetes/pki/ca.crt";
/** Seconds a drain may take before the step fails. @default 300 (spec: runtime.drainTimeout) */
const DEFAULT_DRAIN_TIMEOUT_S = 300;

/** Shell helpers every command starts with. */
const PRELUDE = `set -eu
export KUBECONFIG=${ADMIN_CONF}
# the API server answering ready (it restarts for a while after a control plane's upgrade)
wait_api() {
  for i in $(seq 1 60); do kubectl get --raw /readyz > /dev/null 2>&1 && return 0; sleep 2; done
  echo "the API server did not answer ready within 120 s" >&2; return 1
}
# the node registered with this IP (kubectl's wide listing: NAME STATUS ROLES AGE VERSION INTERNAL-IP ...)
node_of() { kubectl get nodes -o wide --no-headers | awk -v ip="$1" '$6 == ip { print $1; exit }'; }
# one line of /etc/hosts, ours, replaced whole (written in place: /etc/hosts may be a bind mount)
hosts_line() {
  tmp=$(mktemp)
  grep -v " $1 # sealant-kubernetes$" /etc/hosts > "$tmp" || true
  [ -z "$2" ] || echo "$2 $1 # sealant-kubernetes" >> "$tmp"
  cat "$tmp" > /etc/hosts; rm -f "$tmp"
}
`;

/** The image's Kubernetes version, from its runtime label. */
function versionOf(ctx: RuntimeContext): string {
  const v = ctx.runtimeVersion;
  if (!v) throw new Error("the image declares no Kubernetes version: label it cluster.alpha.sealer.io/cluster-runtime-version=vX.Y.Z (or io.sealant.runtime.version)");
  return v;
}

function docsOf(text: string | undefined, where: string): Record<string, unknown>[] {
  if (text === undefined) return [];
  let parsed: unknown[];
  try {
    parsed = loadAll(text);
  } catch (err) {
    throw new Error(`${where} is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  const docs = parsed.filter((d): d is Record<string, unknown> => d !== null && typeof d === "object" && !Array.isArray(d));
  const problems = kubeadmDocProblems(docs, where);
  if (problems.length > 0) throw new Error(problems.join("\n"));
  return docs;
}

/** What the kubeadm configuration is generated from. */
function kubeadmInputs(ctx: RuntimeContext, known: RuntimeHost[] = []): KubeadmInputs {
  const settings = ctx.settings ?? {};
  // The hosts' own labels and taints where the caller has them (the host a command is for).
  const nodes = (hosts: PlannedHost[]): KubeNode[] =>
    hosts.map((h) => {
      const k = known.find((x) => x.ip === h.ip);
      return { ip: h.ip, roles: h.roles, labels: k?.labels ?? {}, taints: k?.taints ?? [] };
    });
  const overrides = settings["kubeadm"];
  return {
    clusterName: ctx.cluster,
    version: parseKubeVersion(versionOf(ctx), "the image's Kubernetes version"),
    masters: nodes(ctx.hosts.filter((h) => h.roles.includes("master"))),
    ...(typeof settings["vip"] === "string" ? { vip: settings["vip"] } : {}),
    ...(Array.isArray(settings["certSANs"]) ? { extraSANs: settings["certSANs"] as string[] } : {}),
    image: docsOf(ctx.imageFiles?.get("etc/kubeadm.yml"), "the image's etc/kubeadm.yml"),
    overrides: Array.isArray(overrides) ? (overrides as Record<string, unknown>[]) : [],
  };
}

/**
 * A heredoc writing `text` to `path` with mode 600: the text's `$` and backquotes are escaped,
 * except `${SEALANT_...}` placeholders, which the shell fills from the command's (secret) env.
 */
function writeFile(path: string, text: string): string {
  const escaped = text.replace(/[\\$`]/g, "\\$&").replace(/\\\$\{(SEALANT_[A-Z0-9_]+)\}/g, "${$1}");
  const dir = path.slice(0, path.lastIndexOf("/"));
  // The temp file is hidden: the kubelet reads every other file in its manifests dir, half-written ones too.
  const tmp = `${dir}/.${path.slice(path.lastIndexOf("/") + 1)}.tmp`;
  return `(umask 077; mkdir -p ${shellQuote(dir)}; cat > ${shellQuote(tmp)} <<SEALANT_EOF
${escaped}
SEALANT_EOF
mv -f ${shellQuote(tmp)} ${shellQuote(path)})\n`;
}

function firstMasterOf(ctx: RuntimeContext): PlannedHost {
  const m = ctx.hosts.find((h) => h.roles.includes("master"));
  if (!m) throw new Error("a Kubernetes cluster needs a master");
  return m;
}

function vipOf(ctx: RuntimeContext): string {
  return typeof ctx.settings?.["vip"] === "string" ? (ctx.settings["vip"] as string) : DEFAULT_VIP;
}

function drainTimeout(ctx: RuntimeContext): number {
  const t = ctx.settings?.["drainTimeout"];
  return typeof t === "number" && t > 0 ? t : DEFAULT_DRAIN_TIMEOUT_S;
}

/** On the first master: the node with this IP cordoned and drained (PodDisruptionBudgets respected), if registered. */
function drain(ip: string, ctx: RuntimeContext): FirstMasterCommand {
  return {
    // Asked only of a ready API (an unanswered question is not "no such node"); a drain cut off
    // by the API server going away is tried again once it is back, a drain that fails while the
    // API answers (e.g. its timeout, a PodDisruptionBudget no eviction meets) is the answer.
    command: `${PRELUDE}wait_api
n=$(node_of ${shellQuote(ip)})
[ -n "$n" ] || exit 0
cordoned=$(kubectl get node "$n" -o jsonpath='{.spec.unschedulable}')
for attempt in 1 2 3; do
  if kubectl cordon "$n" && kubectl drain "$n" --ignore-daemonsets --delete-emptydir-data --timeout=${drainTimeout(ctx)}s; then exit 0; fi
  if kubectl get --raw /readyz > /dev/null 2>&1; then break; fi
  wait_api
done
# Not drained: the node takes pods again as before (unless someone had cordoned it); a later run drains it again.
if [ "$cordoned" != true ]; then kubectl uncordon "$n" > /dev/null 2>&1 || true; fi
echo "node ${ip} was not drained (runtime.drainTimeout: ${drainTimeout(ctx)} s) and is left as it was, taking pods; nothing else was changed on it" >&2
exit 1`,
    env: {},
  };
}

/** On the first master, retried while the API server restarts: a kubectl command on the node with this IP. */
function onNode(ip: string, what: string): FirstMasterCommand {
  return {
    command: `${PRELUDE}for i in $(seq 1 30); do
  n=$(node_of ${shellQuote(ip)} 2>/dev/null) && [ -n "$n" ] && ${what} && exit 0
  sleep 2
done
echo "node ${ip}: ${what.replace(/"\$n"/g, "<node>").replace(/["$`\\]/g, "")} did not succeed within 60 s" >&2; exit 1`,
    env: {},
  };
}

function command(step: LifecycleStep, host: RuntimeHost, ctx: RuntimeContext): RuntimeCommand {
  const env = hookEnv(step, host, ctx);
  const dir = `${ctx.dataRoot.replace(/\/$/, "")}/kubernetes`;
  const first = firstMasterOf(ctx);
  const isMaster = host.roles.includes("master");
  const vip = vipOf(ctx);
  const masters = ctx.hosts.filter((h) => h.roles.includes("master")).map((h) => h.ip);
  const run = (body: string, extra: Partial<RuntimeCommand> = {}): RuntimeCommand => ({ command: `cd ${shellQuote(ctx.rootfs)}\n${PRELUDE}${body}`, env, ...extra });

  switch (step) {
    case "init-host":
      // The image's container runtime and kubelet set-up (sealer's scripts), its binaries, and
      // the API's stable name: the first master on masters, the VIP on other hosts.
      return run(`if [ -f scripts/containerd.sh ]; then sh scripts/containerd.sh; elif [ -f scripts/docker.sh ]; then sh scripts/docker.sh; fi
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
      // A kubelet.conf is a finished join (this step resumed) only if it is this cluster's (its
      // CA) and, on a master, its etcd member is still there: a host removed by force while it
      // was unreachable comes back with both, from a membership that is gone.
      return run(
        `${writeFile(`${dir}/join.yaml`, joinConfig(inputs, node))}
if [ -f /etc/kubernetes/kubelet.conf ]; then
  if ! grep -qF "$SEALANT_KUBE_CA_DATA" /etc/kubernetes/kubelet.conf || [ "$SEALANT_KUBE_ETCD" = ${NOT_AN_ETCD_MEMBER} ]; then
    echo "${host.ip} holds a Kubernetes node's files from a membership that is gone (removed while unreachable, or another cluster): reset before it joins" >&2
    kubeadm reset -f > /dev/null 2>&1 || true
  fi
fi
if [ ! -f /etc/kubernetes/kubelet.conf ]; then
  if [ -e /etc/kubernetes/pki/ca.crt ] || [ -e /etc/kubernetes/manifests/kube-apiserver.yaml ]; then kubeadm reset -f > /dev/null 2>&1 || true; fi
  kubeadm join --config ${shellQuote(`${dir}/join.yaml`)}
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
    : `etcd=""`
}
printf '{"SEALANT_KUBE_TOKEN":"%s","SEALANT_KUBE_CA_HASH":"%s","SEALANT_KUBE_CERT_KEY":"%s","SEALANT_KUBE_CA_DATA":"%s","SEALANT_KUBE_ETCD":"%s"}\\n' "$token" "$hash" "$key" "$ca" "$etcd"`,
            env: {},
          },
          // The token has done its job: deleted rather than left valid for its TTL.
          after: { command: `${PRELUDE}kubeadm token delete "$SEALANT_KUBE_TOKEN" > /dev/null\n${joinLabels(host)?.command.replace(PRELUDE, "") ?? ""}`, env: {} },
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
      // The first master moves the control plane (`upgrade apply`); every other node follows (`upgrade node`).
      return run(
        `install -m 0755 bin/kubeadm /usr/bin/kubeadm
${
  isFirst
    ? // Without kubeadm's own CoreDNS (an image that brings its DNS), kubeadm skips the DNS
      // upgrade but its preflight still fails on the missing CoreDNS: those two checks only.
      `dns_checks=""
if ! kubectl -n kube-system get configmap coredns > /dev/null 2>&1; then dns_checks="--ignore-preflight-errors=CoreDNSUnsupportedPlugins,CoreDNSMigration"; fi
kubeadm upgrade apply -y $dns_checks ${shellQuote(version)}`
    : "kubeadm upgrade node"
}
for b in kubelet kubectl crictl; do if [ -f bin/$b ]; then install -m 0755 bin/$b /usr/bin/$b; fi; done
# The new image's container runtime and kubelet set-up (e.g. its pause image: containerd's
# sandbox image must be one the new image's registry serves).
if [ -f scripts/containerd.sh ]; then sh scripts/containerd.sh; elif [ -f scripts/docker.sh ]; then sh scripts/docker.sh; fi
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
      // Ready, on the image's kubelet version: asked of the API from the first master.
      return run("true", {
        before: {
          command: `${PRELUDE}${pods}for i in $(seq 1 60); do
  n=$(node_of ${shellQuote(host.ip)} 2>/dev/null || true)
  if [ -n "$n" ]; then
    # An API error (e.g. while the control plane restarts after an upgrade) is a retry, not an answer.
    out=$(kubectl get node "$n" --no-headers 2> /dev/null) || out=""
    set -- $out
    case "\${2:-}" in Ready|Ready,*) [ "\${5:-}" = ${shellQuote(version)} ] && exit 0 ;; esac
  fi
  sleep 2
done
echo "node ${host.ip} is not Ready on ${version} after 120 s: $(kubectl get node "\${n:-?}" --no-headers 2>&1 || true)" >&2; exit 1`,
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

/** etcdctl in the first master's etcd static pod, with its certificates (a shell command prefix). */
function etcdctl(first: PlannedHost): string {
  return `kubectl -n kube-system exec "etcd-$(node_of ${shellQuote(first.ip)})" -- etcdctl --endpoints https://127.0.0.1:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/server.crt --key /etc/kubernetes/pki/etcd/server.key`;
}

/** What a master's join is told of its etcd member (values long enough not to be redacted out of unrelated messages). */
const ETCD_MEMBER = "etcd-member-present";
const NOT_AN_ETCD_MEMBER = "no-etcd-member";

/**
 * On the first master, for a host that is gone: its etcd member (a master's) removed through the
 * first master's etcd static pod, then its Node deleted.
 */
function forgetNode(host: RuntimeHost, first: PlannedHost): FirstMasterCommand {
  const etcd = etcdctl(first);
  const member = host.roles.includes("master")
    ? `id=$(${etcd} member list | awk -F', ' -v url=${shellQuote(`https://${host.ip}:2380`)} '$4 == url { print $1 }')
if [ -n "$id" ]; then ${etcd} member remove "$id"; fi
`
    : "";
  return { command: `${PRELUDE}${member}n=$(node_of ${shellQuote(host.ip)})
if [ -n "$n" ]; then kubectl delete node "$n"; fi`, env: {} };
}

/** A worker's lvscare as a static pod: it keeps the VIP's IPVS rules pointed at the healthy masters. */
function workerVipPod(vip: string, masters: string[]): string {
  const args = ["care", "--vs", `${vip}:${API_SERVER_PORT}`, ...masters.flatMap((m) => ["--rs", `${m}:${API_SERVER_PORT}`]), "--health-path", "/healthz", "--health-schem", "https"];
  const pod = `apiVersion: v1
kind: Pod
metadata:
  name: kube-lvscare
  namespace: kube-system
spec:
  hostNetwork: true
  containers:
  - name: kube-lvscare
    image: sea.hub:5000/sealerio/lvscare:v1.1.3-beta.8
    command: ["/usr/bin/lvscare"]
    args: [${args.map((a) => JSON.stringify(a)).join(", ")}]
    securityContext:
      privileged: true
`;
  return `if command -v lvscare > /dev/null; then ${writeFile("/etc/kubernetes/manifests/kube-lvscare.yaml", pod)}fi`;
}

/** The image's haproxy container image for the workers' API load balancer (its env's API_LB_IMAGE), if any. */
function lbImage(ctx: RuntimeContext): string | undefined {
  const image = ctx.env["API_LB_IMAGE"];
  return image ? image : undefined;
}

/**
 * After a worker joined (and when the masters change): its way to the API through the VIP —
 * lvscare's static pod, or haproxy's (the VIP on the worker's lo, the pod's answer on /healthz
 * awaited before the stable name moves from the first master to the VIP). See api-load-balancer.ts.
 */
function workerApi(vip: string, masters: string[], ctx: RuntimeContext): string {
  const image = lbImage(ctx);
  if (!image) return workerVipPod(vip, masters);
  const config = haproxyConfig(vip, masters);
  return `ip addr show dev lo | grep -qF ' ${vip}/32 ' || ip addr add ${vip}/32 dev lo
${writeFile(`${HAPROXY_DIR}/haproxy.cfg`, config)}chmod 0644 ${HAPROXY_DIR}/haproxy.cfg
${writeFile(HAPROXY_POD, haproxyPod(image, config))}ok=""
for i in $(seq 1 60); do
  if kubectl --kubeconfig /etc/kubernetes/kubelet.conf --server https://${vip}:${API_SERVER_PORT} get --raw /healthz > /dev/null 2>&1; then ok=1; break; fi
  sleep 2
done
if [ -z "$ok" ]; then echo "the API load balancer (haproxy static pod on ${vip}:${API_SERVER_PORT}) did not answer within 120 s" >&2; exit 1; fi
hosts_line ${API_SERVER_DOMAIN} ${shellQuote(vip)}
`;
}

/** The image's pod network and DNS (its bootstrap apps), from its rootfs, as soon as the API answers. */
function bootstrapApps(ctx: RuntimeContext): string {
  return (ctx.bootstrapApps ?? []).map((c) => `(cd ${shellQuote(ctx.rootfs)} && ${c})`).join("\n");
}

/** A new node's labels, set from the first master (kubeadm set its taints at init or join; it cannot set node-role labels). */
function joinLabels(host: RuntimeHost): FirstMasterCommand | undefined {
  return labelsAndTaints(host, { taints: host.taints ?? [] });
}

/** The admin kubeconfig with its server on the first master's address (usable from outside the cluster's hosts). */
async function outputs(readFile: (path: string) => Promise<string | undefined>, ctx: RuntimeContext): Promise<RuntimeOutputs> {
  const first = firstMasterOf(ctx);
  const endpoint = `https://${first.ip}:${API_SERVER_PORT}`;
  const admin = await readFile(ADMIN_CONF);
  const ca = await readFile(CA_CERT);
  const out: RuntimeOutputs = { endpoint };
  if (admin !== undefined) {
    const doc = load(admin) as { clusters?: { cluster?: { server?: string } }[] } | null;
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
  if (host.roles.includes("master")) return labels ? { command: "true", env: {}, after: labels } : undefined;
  const vip = vipOf(ctx);
  const masters = ctx.hosts.filter((h) => h.roles.includes("master")).map((h) => h.ip);
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

/** Labels and taints brought from `previous` to the host's own: added or changed with --overwrite, dropped ones removed. */
function labelsAndTaints(host: RuntimeHost, previous: { labels?: Record<string, string>; taints?: string[] }): FirstMasterCommand | undefined {
  const labels = host.labels ?? {};
  const taints = host.taints ?? [];
  const labelArgs = [
    ...Object.entries(labels).filter(([k, v]) => previous.labels?.[k] !== v).map(([k, v]) => `${k}=${v}`),
    ...Object.keys(previous.labels ?? {}).filter((k) => !(k in labels)).map((k) => `${k}-`),
  ];
  const taintKey = (t: string) => `${t.slice(0, t.lastIndexOf(":")).split("=")[0]}:${t.slice(t.lastIndexOf(":") + 1)}`;
  // A taint whose value changed is overwritten, not removed (kubectl refuses both in one command).
  const kept = new Set(taints.map(taintKey));
  const taintArgs = [
    ...(previous.taints ?? []).filter((t) => !taints.includes(t) && !kept.has(taintKey(t))).map((t) => `${taintKey(t)}-`),
    ...taints.filter((t) => !(previous.taints ?? []).includes(t)),
  ];
  const steps = [
    ...(labelArgs.length > 0 ? [`kubectl label node "$n" ${labelArgs.map(shellQuote).join(" ")} --overwrite`] : []),
    ...(taintArgs.length > 0 ? [`kubectl taint node "$n" ${taintArgs.map(shellQuote).join(" ")} --overwrite`] : []),
  ];
  return steps.length > 0 ? onNode(host.ip, steps.join(" && ")) : undefined;
}

const SETTINGS = ["kubeadm", "drainTimeout", "vip", "certSANs"] as const;

/** The spec's `runtime` settings this runtime reads, checked before anything changes. */
function settingsProblems(settings: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const k of Object.keys(settings)) {
    if (!(SETTINGS as readonly string[]).includes(k)) problems.push(`runtime.${k}: not a setting of the kubernetes runtime (it reads ${SETTINGS.join(", ")})`);
  }
  const { kubeadm, drainTimeout, vip, certSANs } = settings;
  if (kubeadm !== undefined) {
    if (!Array.isArray(kubeadm) || kubeadm.some((d) => d === null || typeof d !== "object" || Array.isArray(d))) problems.push("runtime.kubeadm: must be a list of kubeadm documents (mappings with apiVersion and kind)");
    else problems.push(...kubeadmDocProblems(kubeadm as Record<string, unknown>[], "runtime.kubeadm"));
  }
  if (drainTimeout !== undefined && !(typeof drainTimeout === "number" && Number.isInteger(drainTimeout) && drainTimeout > 0)) {
    problems.push(`runtime.drainTimeout: ${JSON.stringify(drainTimeout)} is not a number of seconds (a whole number above 0, e.g. 300)`);
  }
  if (vip !== undefined && !(typeof vip === "string" && /^(\d{1,3})(\.\d{1,3}){3}$/.test(vip) && vip.split(".").every((o) => Number(o) <= 255))) {
    problems.push(`runtime.vip: ${JSON.stringify(vip)} is not an IPv4 address (the workers' virtual IP for the API, e.g. ${DEFAULT_VIP})`);
  }
  if (certSANs !== undefined && !(Array.isArray(certSANs) && certSANs.every((s) => typeof s === "string" && s !== ""))) problems.push("runtime.certSANs: must be a list of host names or IPs");
  return problems;
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
  changeProblem(from, to) {
    if (!from || !to) return undefined;
    return upgradeProblem(parseKubeVersion(from, "the cluster's Kubernetes version"), parseKubeVersion(to, "the image's Kubernetes version"));
  },
};
