#!/usr/bin/env bash
# The real `kubeadm` (k8s.io/kubernetes/cmd/kubeadm), for tests that check the kubeadm
# configuration sealant generates with `kubeadm config validate --config FILE`. It comes from
# scripts/kubernetes.sh, which builds all the Kubernetes binaries of a release from the Go module
# proxy and caches them under $SEALANT_CACHE/kubernetes-vX.Y.Z/bin (default ~/.cache/sealant; see
# its header for how and why); so CI builds a release once for kubeadm and the sandbox clusters.
# $SEALANT_CACHE/kubeadm-current is a symlink to that directory: tests read kubeadm-current/bin/kubeadm.
# Idempotent: when a complete build is cached this does no network or Go work at all.
#
#   bash scripts/kubeadm.sh           build if missing (first build: ~5-10 min on 2 cores); prints the
#                                     kubeadm binary's path on stdout (KUBEADM="$(bash scripts/kubeadm.sh)")
#   bash scripts/kubeadm.sh --check   build if missing, then a smoke test: `kubeadm version`, a good
#                                     InitConfiguration+ClusterConfiguration (v1beta4 and v1beta3) is
#                                     accepted, and one with an unknown field is rejected
#
# Version: $default below (override: KUBEADM_VERSION=v1.X.Y; >= v1.31 knows kubeadm.k8s.io/v1beta4).
# KUBEADM_GO=1.X.Y|local picks the Go toolchain (scripts/kubernetes.sh's KUBE_GO).
#
# Note for tests: `kubeadm config validate` applies kubeadm's host-dependent defaults too; a loopback
# advertiseAddress (e.g. a sandbox host's 127.0.10.N) means "pick the global IP on lo" and fails with
# "unable to select an IP from lo network interface" on a machine without one.
# `kubeadm init --dry-run --config FILE --ignore-preflight-errors=all` runs here as root; besides the
# preflight checks' brief test listens on ports 2379/2380/6443/10250/10257/10259 (skip them with
# --skip-phases=preflight), it only writes a temporary directory, under /etc/kubernetes/tmp unless
# KUBEADM_INIT_DRYRUN_DIR=DIR puts it under DIR/tmp.
set -euo pipefail
cache="${SEALANT_CACHE:-$HOME/.cache/sealant}"
default="v1.31.4" # newest v1.31.x whose modules this project's module proxy serves (scripts/kubernetes.sh)

log() { echo "kubeadm: $*" >&2; }
die() { echo "kubeadm: ERROR: $*" >&2; exit 1; }

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  -h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument: $1 (usage: scripts/kubeadm.sh [--check])" ;;
esac

want="${KUBEADM_VERSION:-$default}"
want="v${want#v}"
[[ "$want" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "KUBEADM_VERSION must be a release like v1.31.4, got '$want'"
minor="${BASH_REMATCH[1]}"

release_dir="$(KUBE_GO="${KUBE_GO:-${KUBEADM_GO:-}}" bash "$(dirname "$0")/kubernetes.sh" "$want")" \
  || die "scripts/kubernetes.sh could not provide Kubernetes $want (see above)"
kubeadm="$release_dir/bin/kubeadm"
[ -x "$kubeadm" ] || die "scripts/kubernetes.sh printed $release_dir, which has no bin/kubeadm"

# Atomically repoint $cache/kubeadm-current at the release directory (relative: the cache may move).
ln -sfn "$(basename "$release_dir")" "$cache/.kubeadm-current.$$"
mv -T "$cache/.kubeadm-current.$$" "$cache/kubeadm-current"

got="$("$kubeadm" version -o short)"
[ "$got" = "$want" ] || die "kubeadm version printed '$got', expected '$want'"
log "kubeadm $want ready: $kubeadm"
echo "$kubeadm"

[ "$check" = 1 ] || exit 0

# ---- smoke test: `kubeadm config validate` accepts good configurations and rejects a bad one ----
tmp="$(mktemp -d "${TMPDIR:-/tmp}/sealant-kubeadm-check.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# $1 apiVersion, $2 podSubnet's field name (podSubnetz makes it an unknown field). The advertise
# address is not a loopback one: kubeadm would look for a global IP on lo (see the header).
write_config() {
  cat << EOC
apiVersion: kubeadm.k8s.io/$1
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 10.0.0.10
  bindPort: 6443
nodeRegistration:
  name: node1
  criSocket: unix:///run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/$1
kind: ClusterConfiguration
kubernetesVersion: $want
clusterName: sealant
controlPlaneEndpoint: 10.0.0.10:6443
networking:
  $2: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
EOC
}
s=$(date +%s)
for api in v1beta4 v1beta3; do
  if [ "$api" = v1beta4 ] && [ "$minor" -lt 31 ]; then continue; fi # v1beta4 is new in v1.31
  write_config "$api" podSubnet > "$tmp/good-$api.yaml"
  log "check: kubeadm config validate --config good-$api.yaml"
  out="$("$kubeadm" config validate --config "$tmp/good-$api.yaml" 2>&1)" || { printf '%s\n' "$out" >&2; die "kubeadm rejected a valid $api configuration"; }
  printf '%s\n' "$out" | sed 's/^/  /' >&2
  [ "$(printf '%s\n' "$out" | tail -n 1)" = ok ] || die "kubeadm config validate did not print 'ok' for the $api configuration"
done
write_config "$(if [ "$minor" -ge 31 ]; then echo v1beta4; else echo v1beta3; fi)" podSubnetz > "$tmp/bad.yaml"
log "check: kubeadm config validate --config bad.yaml (networking.podSubnetz is not a field)"
rc=0
out="$("$kubeadm" config validate --config "$tmp/bad.yaml" 2>&1)" || rc=$?
printf '%s\n' "$out" | sed 's/^/  /' >&2
[ "$rc" != 0 ] || die "kubeadm accepted a configuration with the unknown field networking.podSubnetz"
grep -q podSubnetz <<< "$out" || die "kubeadm rejected the bad configuration (exit $rc) without naming the field podSubnetz"
log "check passed: kubeadm $want validates good configurations and rejects an unknown field (exit $rc) in $(($(date +%s) - s)) s"
