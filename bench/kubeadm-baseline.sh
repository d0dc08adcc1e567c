#!/usr/bin/env bash
# The baseline of bench/kubernetes.js: a Kubernetes cluster (1 master + N workers) made from a
# cluster image's rootfs by the bare sequence of commands a careful admin's script runs over
# SSH — the same files, container images, scripts and kubeadm settings sealant uses, none of
# sealant's machinery (no state record, no lock, no TLS registry, no API load balancer).
#
#   kubeadm-baseline.sh ROOTFS MASTER_IP WORKER_IP...
#
# ROOTFS: the image's rootfs extracted on this machine (bin/ cri/ cni/ scripts/ etc/
# application/ registry/). Env: SSH_KEY (private key, required), SSH_KNOWN_HOSTS (required),
# BASE (where the files go on the hosts, default /var/lib/kubeadm-baseline), REGISTRY_PORT
# (default 5000).
# Prints `@phase NAME EPOCH_MS` when each step starts and `@phase end EPOCH_MS` at the end,
# on stdout; what the commands print goes to stderr.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
rootfs="$1"
master="$2"
shift 2
workers=("$@")
all=("$master" "${workers[@]}")
: "${SSH_KEY:?SSH_KEY: the hosts' root key}" "${SSH_KNOWN_HOSTS:?SSH_KNOWN_HOSTS: the hosts' known_hosts}"
base="${BASE:-/var/lib/kubeadm-baseline}"
port="${REGISTRY_PORT:-5000}"

phase() { echo "@phase $1 $(date +%s%3N)"; }
# One SSH session to a host as root (fastest cipher, no compression: a LAN).
on() {
  local host="$1"
  shift
  ssh -F /dev/null -i "$SSH_KEY" -o IdentitiesOnly=yes -o UserKnownHostsFile="$SSH_KNOWN_HOSTS" \
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o LogLevel=ERROR \
    -c aes128-gcm@openssh.com -o Compression=no "root@$host" "$@" >&2
}
# Waits for every background job; fails if any failed.
wait_all() {
  local pid failed=0
  for pid in $(jobs -p); do wait "$pid" || failed=1; done
  [ "$failed" = 0 ] || { echo "kubeadm-baseline: a step failed on a host (see above)" >&2; exit 1; }
}

# ---- 1. the files each host needs, in parallel: the master everything, workers no registry.
phase copy
tar -C "$rootfs" -cf - bin cri cni scripts etc application registry | on "$master" "mkdir -p $base && tar -xf - -C $base" &
node_bins=""
for b in kubeadm kubelet kubectl crictl; do
  if [ -f "$rootfs/bin/$b" ]; then node_bins="$node_bins bin/$b"; fi
done
for w in "${workers[@]}"; do
  tar -C "$rootfs" -cf - $node_bins cri cni scripts etc | on "$w" "mkdir -p $base && tar -xf - -C $base" &
done
wait_all

# ---- 2. every host in parallel: containerd pulling registry.k8s.io and docker.io images from the
# master's registry (plain HTTP, same paths as upstream), the image's containerd.sh, kubeadm,
# kubelet, kubectl (and crictl, if the image has it), its init-kube.sh, the kubelet's node address. The master first starts the
# registry serving the image's registry/ (read-only).
phase prepare
on "$master" "set -e; cat > $base/registry.yml << EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $base/registry}
  maintenance: {uploadpurging: {enabled: false}, readonly: {enabled: true}}
http: {addr: '$master:$port'}
EOF
setsid -f $base/bin/docker-registry serve $base/registry.yml > $base/registry.log 2>&1 < /dev/null
until curl -fs -o /dev/null http://$master:$port/v2/; do sleep 0.1; done" &
for h in "${all[@]}"; do
  on "$h" "set -e; cd $base
for d in registry.k8s.io docker.io; do
  mkdir -p /etc/containerd/certs.d/\$d
  printf '[host.\"http://$master:$port/v2/%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n' \$d > /etc/containerd/certs.d/\$d/hosts.toml
done
sh scripts/containerd.sh
install -m 0755 $node_bins /usr/bin/
sh scripts/init-kube.sh
echo KUBELET_EXTRA_ARGS=--node-ip=$h > /etc/default/kubelet" &
done
wait_all

# ---- 3. kubeadm init on the master with the image's settings (etc/kubeadm.yml: CoreDNS from
# the image and its tag, cgroupfs, kube-proxy in iptables mode) and the same networks as
# sealant's config, then the image's CNI (flannel) and DNS (CoreDNS) scripts.
phase init
on "$master" "set -e; cd $base
coredns_tag=\$(sed -n 's/^ *imageTag: *\"*\([^\"]*\)\"*/\1/p' etc/kubeadm.yml)
cat > kubeadm.yaml << EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: $master, bindPort: 6443}
skipPhases: [addon/coredns]
nodeRegistration: {criSocket: unix:///run/containerd/containerd.sock}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: \$(kubeadm version -o short)
controlPlaneEndpoint: $master:6443
networking: {podSubnet: 100.64.0.0/10, serviceSubnet: 10.96.0.0/22, dnsDomain: cluster.local}
dns: {imageTag: '\${coredns_tag:-}'}
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
conntrack: {maxPerCore: 0}
EOF
kubeadm init --config kubeadm.yaml
mkdir -p /root/.kube && cp /etc/kubernetes/admin.conf /root/.kube/config
sh application/apps/flannel/flannel.sh
sh application/apps/coredns/coredns.sh"

# ---- 4. a join command from the master, then every worker joins at once.
phase join
join="$(ssh -F /dev/null -i "$SSH_KEY" -o IdentitiesOnly=yes -o UserKnownHostsFile="$SSH_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
  -o StrictHostKeyChecking=yes -o BatchMode=yes -o LogLevel=ERROR "root@$master" kubeadm token create --print-join-command)"
for w in "${workers[@]}"; do on "$w" "$join" & done
wait_all

# ---- 5. every node registered and Ready.
phase ready
on "$master" "set -e
until [ \"\$(kubectl get nodes --no-headers 2> /dev/null | wc -l)\" -ge ${#all[@]} ]; do sleep 0.5; done
kubectl wait --for=condition=Ready node --all --timeout=300s"
phase end
