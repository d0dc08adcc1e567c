import { API_SERVER_PORT } from "./kubeadm-config";

/**
 * How workers reach the masters' API servers through one stable address (the VIP), so losing a
 * master does not cut its workers off:
 * - `lvscare` (sealer's base images carry bin/lvscare): IPVS rules on the VIP, set once before
 *   the join and kept by lvscare's static pod.
 * - `haproxy` (the image's env names a haproxy container image in API_LB_IMAGE): a static pod
 *   on every worker listening on the VIP (an address on the worker's `lo`), health-checking each
 *   master's /readyz: an API server that lost its etcd, is still starting or is shutting down
 *   (its shutdown delay) gets no requests, where /healthz would still say ok. For kernels without IPVS — sealer's lvscare cannot work there — and the
 *   node-local load-balancer design kubespray and k0s use.
 * - neither: workers use the first master directly (no failover).
 * The choice is made on the host, from what the image holds; these are shell fragments.
 */
export const HAPROXY_DIR = "/etc/kubernetes/apiserver-lb";
const HAPROXY_POD = "/etc/kubernetes/manifests/kube-apiserver-lb.yaml";

/** haproxy's configuration: TCP through to every master, each checked on /readyz over TLS. */
export function haproxyConfig(vip: string, masters: string[]): string {
  return `# Written by sealant: the workers' way to the API servers (the VIP ${vip}).
global
  log stdout format raw local0 notice
  maxconn 4000
  # After a reload the old process serves its open connections (watches) this long at most.
  hard-stop-after 5m
defaults
  mode tcp
  log global
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend apiserver
  bind ${vip}:${API_SERVER_PORT}
  default_backend masters
backend masters
  option httpchk GET /readyz
  http-check expect status 200
  default-server check check-ssl verify none inter 2s fall 2 rise 1
${masters.map((m, i) => `  server master${i + 1} ${m}:${API_SERVER_PORT}`).join("\n")}
`;
}

/** haproxy's command line in the pod: master-worker mode, so SIGUSR2 to its master reloads the configuration. */
export const HAPROXY_COMMAND = "haproxy -W -db -f /usr/local/etc/haproxy/haproxy.cfg";

/**
 * The static pod. It does not change with the masters: a new configuration is written beside
 * it and haproxy reloads it in place (reloadHaproxy), the listening socket kept, so the VIP
 * never refuses a connection. (A pod replaced for it refused connections for ~35 s.)
 */
export function haproxyPod(image: string): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver-lb
  namespace: kube-system
  labels: {component: kube-apiserver-lb, tier: node}
spec:
  hostNetwork: true
  priorityClassName: system-node-critical
  containers:
  - name: haproxy
    image: ${JSON.stringify(image)}
    command: [${HAPROXY_COMMAND.split(" ").join(", ")}]
    resources: {requests: {cpu: 10m, memory: 16Mi}}
    volumeMounts:
    - {name: config, mountPath: /usr/local/etc/haproxy, readOnly: true}
  volumes:
  - {name: config, hostPath: {path: ${HAPROXY_DIR}, type: DirectoryOrCreate}}
`;
}

/**
 * Shell: haproxy's master (the oldest process with its command line; its workers are forked
 * from it) told to reload its configuration. Nothing to do while the pod is not running yet:
 * it starts with the file as it is.
 */
export function reloadHaproxy(): string {
  return `lb_master=$(pgrep -o -f '^${HAPROXY_COMMAND}' || true)
if [ -n "$lb_master" ]; then kill -USR2 "$lb_master"; fi
`;
}

export { HAPROXY_POD };
