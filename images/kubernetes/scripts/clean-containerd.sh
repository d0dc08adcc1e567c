#!/bin/sh
# Undoes scripts/containerd.sh: every container gone, containerd stopped, its mounts and state
# removed, and the binaries it installed (only those: /etc/containerd/.sealant-installed).
set -u
sock=/run/containerd/containerd.sock
if [ -S "$sock" ] && command -v ctr > /dev/null 2>&1; then
  for ns in $(ctr -a "$sock" namespaces list -q 2> /dev/null); do
    for t in $(ctr -a "$sock" -n "$ns" tasks list -q 2> /dev/null); do ctr -a "$sock" -n "$ns" tasks kill -s KILL "$t" > /dev/null 2>&1 || true; done
    sleep 1
    for t in $(ctr -a "$sock" -n "$ns" tasks list -q 2> /dev/null); do ctr -a "$sock" -n "$ns" tasks delete -f "$t" > /dev/null 2>&1 || true; done
    for c in $(ctr -a "$sock" -n "$ns" containers list -q 2> /dev/null); do ctr -a "$sock" -n "$ns" containers delete "$c" > /dev/null 2>&1 || true; done
  done
fi
systemctl disable --now containerd > /dev/null 2>&1 || true
# Shims left behind by a containerd that died keep mounts busy: they go too. Only mounts below
# containerd's dirs are undone, never the dirs themselves (often disks of their own).
pkill -KILL -f 'containerd-shim-runc-v2 -namespace k8s.io' 2> /dev/null || true
grep -oE ' /(run|var/lib)/containerd/[^ ]*' /proc/self/mounts 2> /dev/null | sort -r | while read -r m; do umount -l "$m" 2> /dev/null || true; done
rm -rf /run/containerd /etc/containerd/config.toml /etc/crictl.yaml /etc/systemd/system/containerd.service
find /var/lib/containerd -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2> /dev/null || true
if [ -f /etc/containerd/.sealant-installed ]; then
  while read -r f; do rm -f "$f"; done < /etc/containerd/.sealant-installed
  rm -f /etc/containerd/.sealant-installed
fi
systemctl daemon-reload > /dev/null 2>&1 || true
