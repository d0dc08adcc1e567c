#!/bin/sh
# Prepares a host for kubeadm (sealer's scripts/init-kube.sh contract: run as root from the
# image's rootfs after the binaries are installed): the kubelet's systemd unit and kubeadm's
# drop-in, the CNI plugins, and the kernel settings Kubernetes networking needs.
set -eu
mkdir -p /etc/systemd/system/kubelet.service.d /etc/kubernetes/manifests /etc/cni/net.d /opt/cni/bin /var/lib/kubelet
install -m 0644 etc/kubelet.service /etc/systemd/system/kubelet.service
install -m 0644 etc/10-kubeadm.conf /etc/systemd/system/kubelet.service.d/10-kubeadm.conf
for p in cni/*; do install -m 0755 "$p" "/opt/cni/bin/${p#cni/}"; done
# kube-proxy mounts /lib/modules from the host; a host without kernel modules has no such dir.
mkdir -p /lib/modules
# Best effort: a host (or network namespace) may already have them, or not allow changing them;
# kubeadm's preflight names what is still missing.
for m in overlay br_netfilter; do modprobe "$m" 2> /dev/null || true; done
sysctl -qw net.ipv4.ip_forward=1 2> /dev/null || true
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2> /dev/null || true
swapoff -a 2> /dev/null || true
systemctl daemon-reload
systemctl enable kubelet
