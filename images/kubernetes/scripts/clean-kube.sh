#!/bin/sh
# Undoes scripts/init-kube.sh and what the cluster left on this host after `kubeadm reset`:
# the kubelet service, pod network interfaces, Kubernetes' and the CNI's iptables rules.
set -u
systemctl disable --now kubelet > /dev/null 2>&1 || true
rm -rf /etc/systemd/system/kubelet.service /etc/systemd/system/kubelet.service.d
systemctl daemon-reload > /dev/null 2>&1 || true
# Volumes the kubelet mounted below its dir (kubeadm reset unmounts them too; a half-done reset may
# not have); never the dir itself, which may be a disk of its own.
grep -o ' /var/lib/kubelet/[^ ]*' /proc/self/mounts 2> /dev/null | sort -r | while read -r m; do umount -l "$m" 2> /dev/null || true; done
for i in cni0 flannel.1 kube-ipvs0; do ip link delete "$i" 2> /dev/null || true; done
# Only the rules Kubernetes and the CNI made: chains named KUBE-*, CNI-*, FLANNEL* and the
# rules that jump to them; everything else in the tables stays.
for t in iptables ip6tables; do
  command -v "$t-save" > /dev/null 2>&1 || continue
  if "$t-save" 2> /dev/null | grep -qE 'KUBE-|CNI-|FLANNEL'; then
    "$t-save" | grep -vE '(^:|-A |-j |-g )(KUBE-|CNI-|FLANNEL)|-j (KUBE-|CNI-|FLANNEL)|-g (KUBE-|CNI-|FLANNEL)' | "$t-restore" || true
  fi
done
rm -rf /etc/cni/net.d/* /var/lib/cni /run/flannel
for p in bridge host-local loopback portmap; do rm -f "/opt/cni/bin/$p"; done
