import { shellQuote } from "../../ssh/shell";
import { isMaster, type PlannedHost } from "../plan";
import { onNode } from "../runtime/kubernetes/first-master";

const CONTROL_PLANE = "node-role.kubernetes.io/control-plane";

/**
 * On the first master after a restore: a node's labels and taints as kubeadm and the spec set
 * them at its join (a node that registered again after the restore has lost them; one the
 * snapshot held keeps them, and --overwrite makes this a no-op there).
 */
export function nodeSettings(host: PlannedHost): string | undefined {
  const master = isMaster(host);
  const labels = [...(master ? [`${CONTROL_PLANE}=`] : []), ...Object.entries(host.labels ?? {}).map(([k, v]) => `${k}=${v}`)];
  // As at the join: a master without taints of its own keeps kubeadm's control-plane taint.
  const taints = host.taints && host.taints.length > 0 ? host.taints : master ? [`${CONTROL_PLANE}:NoSchedule`] : [];
  const steps = [
    ...(labels.length > 0 ? [`kubectl label node "$n" ${labels.map(shellQuote).join(" ")} --overwrite > /dev/null`] : []),
    ...(taints.length > 0 ? [`kubectl taint node "$n" ${taints.map(shellQuote).join(" ")} --overwrite > /dev/null`] : []),
  ];
  return steps.length > 0 ? onNode(host.ip, steps.join(" && ")).command : undefined;
}
