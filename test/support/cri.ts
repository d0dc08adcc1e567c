import { readFileSync } from "node:fs";
import { join } from "node:path";

/*
 * containerd with its CRI on a sandbox host, as the Kubernetes image's scripts/containerd.sh
 * configures it (CRI on, certs.d as config_path), on a socket of the test's own; and crictl, as
 * setup built it, to pull through that CRI the way a kubelet does.
 */
export const CRI_SOCKET = "/run/ctd/containerd.sock";
export const CERTS_DIR = "/etc/containerd/certs.d";
export const CONTAINERD_CONFIG_FILE = "/etc/containerd/config.toml";
export const CRI_CONTAINERD_CONFIG = `version = 2
root = "/var/lib/containerd/root"
state = "/run/ctd"
[grpc]
  address = "${CRI_SOCKET}"
[plugins."io.containerd.grpc.v1.cri"]
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${CERTS_DIR}"
`;

/** The crictl command line for that socket (scripts/kube-images.sh records where crictl is). */
export function crictl(): string {
  const home = process.env["HOME"] ?? "/root";
  const json = JSON.parse(readFileSync(join(home, ".cache/sealant/kube-images-v1.31.4/images.json"), "utf8")) as { addons: { crictl: string } };
  return `${json.addons.crictl}/crictl --runtime-endpoint unix://${CRI_SOCKET} --image-endpoint unix://${CRI_SOCKET} --timeout 60s`;
}
