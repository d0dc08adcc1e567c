#!/bin/sh
# Installs and starts containerd for the kubelet (sealer's scripts/containerd.sh contract: run
# as root from the image's rootfs on every host before kubeadm). The binaries come from cri/;
# a host that already has a binary of that name keeps its own. What this script installed is
# listed in /etc/containerd/.sealant-installed so scripts/clean-containerd.sh removes exactly that.
set -eu
. etc/kube-images.env
mkdir -p /etc/containerd /etc/containerd/certs.d /var/lib/containerd /run/containerd
installed=/etc/containerd/.sealant-installed
touch "$installed"
for b in cri/*; do
  name=${b#cri/}
  dest=/usr/bin/$name
  if command -v "$name" > /dev/null 2>&1 && ! grep -qxF "$dest" "$installed"; then continue; fi
  install -m 0755 "$b" "$dest.sealant-tmp" && mv -f "$dest.sealant-tmp" "$dest"
  grep -qxF "$dest" "$installed" || echo "$dest" >> "$installed"
done

# The kubelet asks for negative OOM scores (-997/-998) for its system pods; where this host may
# not lower a score (no CAP_SYS_RESOURCE, e.g. inside a container or a restricted namespace)
# runc would fail every pod sandbox, so containerd clamps the scores instead.
restrict=false
if ! sh -c 'echo -999 > /proc/self/oom_score_adj' 2> /dev/null; then restrict=true; fi

cat > /etc/containerd/config.toml.sealant-tmp << TOML
# Written by sealant's Kubernetes image (scripts/containerd.sh); rewritten at every host set-up.
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  restrict_oom_score_adj = ${restrict}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # cgroupfs, matching the kubelet's cgroupDriver in etc/kubeadm.yml
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    # sealant's registry phase writes one hosts.toml per source registry here: images keep their
    # upstream names and are pulled from the cluster's registry.
    config_path = "/etc/containerd/certs.d"
TOML
changed=true
if cmp -s /etc/containerd/config.toml.sealant-tmp /etc/containerd/config.toml; then changed=false; fi
mv -f /etc/containerd/config.toml.sealant-tmp /etc/containerd/config.toml
install -m 0644 etc/containerd.service /etc/systemd/system/containerd.service
cat > /etc/crictl.yaml << YAML
runtime-endpoint: unix:///run/containerd/containerd.sock
image-endpoint: unix:///run/containerd/containerd.sock
YAML
systemctl daemon-reload
systemctl enable containerd
if [ "$changed" = true ] && systemctl is-active containerd > /dev/null 2>&1; then systemctl restart containerd; else systemctl start containerd; fi
i=0
until ctr --address /run/containerd/containerd.sock version > /dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -ge 60 ]; then echo "containerd did not answer on /run/containerd/containerd.sock within 30 s" >&2; exit 1; fi
  sleep 0.5
done
