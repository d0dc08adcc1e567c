import { shellQuote } from "../../../ssh/shell";
import type { RollWords } from "../../plan/types";

/**
 * A running cluster's kubeadm configuration applied the way kubeadm documents it ("Reconfiguring
 * a kubeadm cluster"): `kubeadm upgrade` only reads the ClusterConfiguration stored in the
 * cluster, and `upgrade apply --config` does not reconfigure (from v1beta4 it takes an
 * UpgradeConfiguration only; before, kubeadm warned against it and 1.30 fails with it). So:
 * - the first master uploads the spec's configuration (the kubeadm-config and kubelet-config
 *   ConfigMaps) — later `kubeadm upgrade` runs read it there, so the change persists;
 * - each master regenerates its control plane's static pods from it (`kubeadm init phase
 *   control-plane all`), and each component whose manifest changed is waited for until the
 *   kubelet runs it again, Ready;
 * - every node rewrites its kubelet configuration from the cluster's (`kubeadm upgrade node
 *   phase kubelet-config`); the step restarts the kubelet afterwards.
 * etcd's manifest is left alone: regenerating it from an init configuration on a joined master
 * would name only that member.
 */

const COMPONENTS = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"];

/** The spec's ClusterConfiguration and KubeletConfiguration uploaded from the first master. */
export function uploadConfig(configPath: string): string {
  return `kubeadm init phase upload-config all --config ${shellQuote(configPath)}\n`;
}

/** The kubelet's configuration rewritten from the cluster's kubelet-config ConfigMap (every node). */
export const KUBELET_CONFIG_FROM_CLUSTER = "kubeadm upgrade node phase kubelet-config\n";

/**
 * This master's control plane regenerated from `configPath` (its own InitConfiguration: its
 * advertise address), waiting for every component whose manifest changed to run again with it
 * (the mirror pod's config hash changes, then it is Ready): up to 300 s each.
 */
export function regenerateControlPlane(ip: string, configPath: string): string {
  const list = COMPONENTS.join(" ");
  return `n=$(node_of ${shellQuote(ip)})
before=$(mktemp -d)
for c in ${list}; do
  cp /etc/kubernetes/manifests/$c.yaml "$before/$c.yaml" 2> /dev/null || true
  kubectl -n kube-system get pod "$c-$n" -o jsonpath='{.metadata.annotations.kubernetes\\.io/config\\.hash}' > "$before/$c.hash" 2> /dev/null || true
done
kubeadm init phase control-plane all --config ${shellQuote(configPath)}
for c in ${list}; do
  if [ ! -f /etc/kubernetes/manifests/$c.yaml ] || cmp -s "$before/$c.yaml" /etc/kubernetes/manifests/$c.yaml; then continue; fi
  old=$(cat "$before/$c.hash")
  ok=""
  for i in $(seq 1 150); do
    out=$(kubectl -n kube-system get pod "$c-$n" -o jsonpath='{.metadata.annotations.kubernetes\\.io/config\\.hash} {.status.conditions[?(@.type=="Ready")].status}' 2> /dev/null) || out=""
    set -- $out
    if [ -n "\${1:-}" ] && [ "\${1:-}" != "$old" ] && [ "\${2:-}" = True ]; then ok=1; break; fi
    sleep 2
  done
  if [ -z "$ok" ]; then echo "$c on $n did not run again, Ready, with its regenerated manifest within 300 s: $(kubectl -n kube-system get pod "$c-$n" --no-headers 2>&1 || true)" >&2; rm -rf "$before"; exit 1; fi
done
rm -rf "$before"
`;
}

/**
 * A shell function `control_plane_ready NODE`: the node's API server, controller manager and
 * scheduler run the image of `version` and are Ready (what a master's check adds to its node's).
 */
export function controlPlaneReady(version: string): string {
  return `control_plane_ready() {
  for c in ${COMPONENTS.join(" ")}; do
    cp=$(kubectl -n kube-system get pod "$c-$1" -o jsonpath='{.spec.containers[0].image} {.status.conditions[?(@.type=="Ready")].status}' 2> /dev/null) || return 1
    case "$cp" in *:${shellQuote(version)}" True") ;; *) return 1 ;; esac
  done
}
`;
}

/** The plan's words for each host's step of a rolling upgrade to `version`, and of a reconfiguration. */
export function kubeRollSteps(version: string | undefined): { upgrade: RollWords; reconfigure: RollWords } {
  const v = version ?? "the image's version";
  const config = "the spec's kubeadm configuration uploaded (kube-system/kubeadm-config, kubelet-config)";
  return {
    upgrade: {
      firstMaster: `upgrade {ip} to ${v}: drain, kubeadm upgrade apply ${v}, ${config} and this control plane regenerated from it, kubelet replaced, uncordon`,
      master: `upgrade {ip} to ${v}: drain, kubeadm upgrade node (its control plane from the uploaded configuration), kubelet replaced, uncordon`,
      other: `upgrade {ip} to ${v}: drain, kubeadm upgrade node, kubelet replaced, uncordon`,
    },
    reconfigure: {
      firstMaster: `reconfigure {ip}: drain, ${config}, this control plane's static pods regenerated from it (kubeadm init phase control-plane), kubelet configuration re-read, uncordon`,
      master: `reconfigure {ip}: drain, its control plane's static pods regenerated from the uploaded configuration (kubeadm init phase control-plane), kubelet configuration re-read, uncordon`,
      other: `reconfigure {ip}: drain, kubelet configuration re-read from the cluster (kubeadm upgrade node phase kubelet-config), kubelet restarted, uncordon`,
    },
  };
}
