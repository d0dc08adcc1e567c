import { shellQuote } from "../../../ssh/shell";
import type { RuntimeContext } from "../types";
import { HAPROXY_DIR, HAPROXY_POD, haproxyConfig, haproxyPod, reloadHaproxy } from "./api-load-balancer";
import { API_SERVER_DOMAIN, API_SERVER_PORT } from "./kubeadm-config";
import { writeFile } from "./shell";

/** A worker's way to the API through the VIP: lvscare's static pod or haproxy's (see api-load-balancer.ts). */
/** A worker's lvscare as a static pod: it keeps the VIP's IPVS rules pointed at the healthy masters. */
export function workerVipPod(vip: string, masters: string[]): string {
  const args = [
    "care",
    "--vs",
    `${vip}:${API_SERVER_PORT}`,
    ...masters.flatMap((m) => ["--rs", `${m}:${API_SERVER_PORT}`]),
    "--health-path",
    "/healthz",
    "--health-schem",
    "https",
  ];
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
export function lbImage(ctx: RuntimeContext): string | undefined {
  const image = ctx.env["API_LB_IMAGE"];
  return image ? image : undefined;
}

/**
 * After a worker joined (and when the masters change): its way to the API through the VIP —
 * lvscare's static pod, or haproxy's (the VIP on the worker's lo, the pod's answer on /healthz
 * awaited before the stable name moves from the first master to the VIP). See api-load-balancer.ts.
 */
export function workerApi(vip: string, masters: string[], ctx: RuntimeContext): string {
  const image = lbImage(ctx);
  if (!image) return workerVipPod(vip, masters);
  const config = haproxyConfig(vip, masters);
  return `ip addr show dev lo | grep -qF ' ${vip}/32 ' || ip addr add ${vip}/32 dev lo
${writeFile(`${HAPROXY_DIR}/haproxy.cfg`, config)}chmod 0644 ${HAPROXY_DIR}/haproxy.cfg
${reloadHaproxy()}${writeFile(HAPROXY_POD, haproxyPod(image))}ok=""
for i in $(seq 1 60); do
  if kubectl --kubeconfig /etc/kubernetes/kubelet.conf --server https://${vip}:${API_SERVER_PORT} get --raw /healthz > /dev/null 2>&1; then ok=1; break; fi
  sleep 2
done
if [ -z "$ok" ]; then echo "the API load balancer (haproxy static pod on ${vip}:${API_SERVER_PORT}) did not answer within 120 s" >&2; exit 1; fi
hosts_line ${API_SERVER_DOMAIN} ${shellQuote(vip)}
`;
}
