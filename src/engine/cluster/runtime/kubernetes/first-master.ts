import { shellQuote } from "../../../ssh/shell";
import type { PlannedHost } from "../../plan/types";
import type { FirstMasterCommand, RuntimeContext, RuntimeHost } from "../types";
import { drainTimeout } from "./settings";
import { PRELUDE } from "./shell";
import { isMaster } from "../../plan/roles";

/** Commands run on the first master for one host: drains, node changes, etcd membership. */
/** On the first master: the node with this IP cordoned and drained (PodDisruptionBudgets respected), if registered. */
export function drain(ip: string, ctx: RuntimeContext): FirstMasterCommand {
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
export function onNode(ip: string, what: string): FirstMasterCommand {
  return {
    command: `${PRELUDE}for i in $(seq 1 30); do
  n=$(node_of ${shellQuote(ip)} 2>/dev/null) && [ -n "$n" ] && ${what} && exit 0
  sleep 2
done
echo "node ${ip}: ${what.replace(/"\$n"/g, "<node>").replace(/["$`\\]/g, "")} did not succeed within 60 s" >&2; exit 1`,
    env: {},
  };
}

/** etcdctl in the first master's etcd static pod, with its certificates (a shell command prefix). */
export function etcdctl(first: PlannedHost): string {
  return `kubectl -n kube-system exec "etcd-$(node_of ${shellQuote(first.ip)})" -- etcdctl --endpoints https://127.0.0.1:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/server.crt --key /etc/kubernetes/pki/etcd/server.key`;
}

/** What a master's join is told of its etcd member (values long enough not to be redacted out of unrelated messages). */
export const ETCD_MEMBER = "etcd-member-present";
export const NOT_AN_ETCD_MEMBER = "no-etcd-member";

/**
 * On the first master, for a host that is gone: its etcd member (a master's) removed through the
 * first master's etcd static pod, then its Node deleted.
 */
export function forgetNode(host: RuntimeHost, first: PlannedHost): FirstMasterCommand {
  const etcd = etcdctl(first);
  const member = isMaster(host)
    ? `id=$(${etcd} member list | awk -F', ' -v url=${shellQuote(`https://${host.ip}:2380`)} '$4 == url { print $1 }')
if [ -n "$id" ]; then ${etcd} member remove "$id"; fi
`
    : "";
  return {
    command: `${PRELUDE}${member}n=$(node_of ${shellQuote(host.ip)})
if [ -n "$n" ]; then kubectl delete node "$n"; fi`,
    env: {},
  };
}

/** A new node's labels, set from the first master (kubeadm set its taints at init or join; it cannot set node-role labels). */
export function joinLabels(host: RuntimeHost): FirstMasterCommand | undefined {
  return labelsAndTaints(host, { taints: host.taints ?? [] });
}

/** Labels and taints brought from `previous` to the host's own: added or changed with --overwrite, dropped ones removed. */
export function labelsAndTaints(host: RuntimeHost, previous: { labels?: Record<string, string>; taints?: string[] }): FirstMasterCommand | undefined {
  const labels = host.labels ?? {};
  const taints = host.taints ?? [];
  const labelArgs = [
    ...Object.entries(labels)
      .filter(([k, v]) => previous.labels?.[k] !== v)
      .map(([k, v]) => `${k}=${v}`),
    ...Object.keys(previous.labels ?? {})
      .filter((k) => !(k in labels))
      .map((k) => `${k}-`),
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
