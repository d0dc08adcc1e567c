#!/usr/bin/env bash
# Builds the real `kubeadm` (k8s.io/kubernetes/cmd/kubeadm) from the Go module proxy and caches it
# under $SEALANT_CACHE/kubeadm-vX.Y.Z/bin/kubeadm (default ~/.cache/sealant), for tests that check
# the kubeadm configuration sealant generates with `kubeadm config validate --config FILE`.
# Idempotent: when a complete build is cached this does no network or Go work at all.
#
#   bash scripts/kubeadm.sh           build if missing (first build: ~5-10 min on 2 cores); prints the
#                                     binary's path on stdout (KUBEADM="$(bash scripts/kubeadm.sh)")
#   bash scripts/kubeadm.sh --check   build if missing, then a smoke test: `kubeadm version`, a good
#                                     InitConfiguration+ClusterConfiguration (v1beta4 and v1beta3) is
#                                     accepted, and one with an unknown field is rejected
#
# Version: $default below (override: KUBEADM_VERSION=v1.X.Y; >= v1.31 knows kubeadm.k8s.io/v1beta4).
# kubeadm is not downloadable here (dl.k8s.io and github.com are unreachable), and
# `go install k8s.io/kubernetes/cmd/kubeadm@v1.X.Y` is refused: k8s.io/kubernetes's go.mod requires
# its staging modules (k8s.io/api, apimachinery, client-go, kubelet, kube-proxy, ...) at v0.0.0 and
# `replace`s them with ./staging/src/k8s.io/*. So a small wrapper module of our own requires
# k8s.io/kubernetes@v1.X.Y and replaces every one of those staging modules (the list is read from the
# downloaded go.mod, not hard-coded) with its published v0.X.Y tag, which is cut from the same commit.
# The module proxy this project reaches does not serve every version of every staging module (it
# answers 403 "This module version is not available"): e.g. for v1.31.5-v1.31.14 some of kube-proxy,
# cri-client, cri-api, cluster-bootstrap, endpointslice are refused. $default is the newest v1.31.x
# whose modules are all served here (checked 2026-11); another version fails with the list of refused
# modules. The build follows Kubernetes' own (hack/lib/golang.sh, version.sh): the Go release named
# in the module's .go-version (override: KUBEADM_GO=1.X.Y, or KUBEADM_GO=local for the machine's Go),
# CGO_ENABLED=0, -trimpath, -s -w, and the version stamped into k8s.io/component-base/version and
# k8s.io/client-go/pkg/version (kubeadm compares it with kubernetesVersion).
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
default="v1.31.4" # newest v1.31.x whose staging modules this project's module proxy all serves

log() { echo "kubeadm: $*" >&2; }
die() { echo "kubeadm: ERROR: $*" >&2; exit 1; }

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  -h | --help) sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument: $1 (usage: scripts/kubeadm.sh [--check])" ;;
esac

want="${KUBEADM_VERSION:-$default}"
want="v${want#v}"
[[ "$want" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "KUBEADM_VERSION must be a release like v1.31.4, got '$want'"
minor="${BASH_REMATCH[1]}"
staging="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}" # k8s.io/kubernetes v1.X.Y <-> staging modules v0.X.Y
dir="$cache/kubeadm-$want"

complete() { [ -f "$dir/.complete" ] && [ -x "$dir/bin/kubeadm" ] && [ -f "$dir/BUILD-INFO" ]; }

point_current() { # atomically repoint $cache/kubeadm-current at kubeadm-$want
  ln -sfn "kubeadm-$want" "$cache/.kubeadm-current.$$"
  mv -T "$cache/.kubeadm-current.$$" "$cache/kubeadm-current"
}

use_go() {
  if ! command -v go > /dev/null 2>&1; then export PATH="/usr/local/go/bin:$PATH"; fi
  command -v go > /dev/null 2>&1 || die "go not found (looked on PATH and in /usr/local/go/bin)"
  export GOWORK=off GOFLAGS="${GOFLAGS:--buildvcs=false}"
}

# Selects the Go toolchain Kubernetes released $want with (the module's .go-version, e.g. 1.22.9 for
# v1.31.4), fetched by the go command as the module golang.org/toolchain from the module proxy. The
# machine's newer Go compiles kubeadm too, but changes behaviour: e.g. Go 1.26's net/url rejects
# "https://[10.96.0.1]:1234/", which kubeadm's HTTPProxyCIDR preflight check builds for IPv4 ranges
# (`kubeadm init` then fails with "[ERROR HTTPProxyCIDR]: ... invalid IP-literal"). KUBEADM_GO=local
# builds with the machine's Go instead; so does a toolchain the proxy does not serve (with a warning).
use_upstream_go() {
  local src="$1" gv
  if [ "${KUBEADM_GO:-}" = local ]; then export GOTOOLCHAIN=local; return; fi
  gv="${KUBEADM_GO:-$(cat "$src/.go-version" 2> /dev/null || true)}"
  gv="${gv#go}"
  if [ -z "$gv" ]; then
    log "k8s.io/kubernetes@$want has no .go-version: building with the machine's $(GOTOOLCHAIN=local go env GOVERSION)"
    export GOTOOLCHAIN=local
    return
  fi
  log "using Go $gv, the toolchain Kubernetes built $want with (first use: downloads it, ~70 MB)"
  local out
  if out="$(GOTOOLCHAIN="go$gv" go version 2>&1)"; then
    export GOTOOLCHAIN="go$gv"
  else
    log "WARNING: cannot get the go$gv toolchain ($(printf '%s' "$out" | tail -n 1)); building with the machine's $(GOTOOLCHAIN=local go env GOVERSION), whose behaviour may differ from the released kubeadm"
    export GOTOOLCHAIN=local
  fi
}

json_field() { # json_field NAME < `go mod download -json` output (tab-indented, one field a line)
  sed -n 's/^\t"'"$1"'": "\(.*\)",\{0,1\}$/\1/p' | head -n 1
}

# Names the modules the proxy refused in go's output $1, as a hint for the die message.
refused() {
  printf '%s\n' "$1" | sed -nE 's#.*[[:space:]:]([a-z0-9.-]+(/[^ @:]+)+@v[^ :]+): (reading|verifying) .*(403 Forbidden|404 Not Found|410 Gone).*#    \1 (\4)#p' | sort -u || true
}

build() {
  local v="$want" start end
  start=$(date +%s)
  use_go
  local work="$cache/kubeadm-build/$v"
  mkdir -p "$work"

  log "checking k8s.io/kubernetes@$v on the module proxy"
  local dl
  dl="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$v" 2>&1)" || true
  if printf '%s' "$dl" | grep -q '"Error"'; then
    die "the module proxy does not serve k8s.io/kubernetes@$v: $(printf '%s\n' "$dl" | json_field Error) (known to work here: KUBEADM_VERSION=$default)"
  fi
  local mod_file info_file commit
  mod_file="$(printf '%s\n' "$dl" | json_field GoMod)"
  info_file="$(printf '%s\n' "$dl" | json_field Info)"
  [ -f "$mod_file" ] || die "go mod download gave no go.mod for k8s.io/kubernetes@$v: $dl"
  commit="$(sed -n 's/.*"Hash":"\([0-9a-f]\{40\}\)".*/\1/p' "$info_file" 2> /dev/null | head -n 1)"
  use_upstream_go "$(printf '%s\n' "$dl" | json_field Dir)"

  # The staging modules: required at v0.0.0 and/or replaced by ./staging/src/... in k8s.io/kubernetes's
  # go.mod. Every one is pinned to its v0.X.Y tag. Any other (non-local) replace line is kept as is.
  local staging_mods other_replaces go_line
  staging_mods="$(awk '
    /^require[ \t]*\(/ { req = 1; next }
    /^replace[ \t]*\(/ { rep = 1; next }
    (req || rep) && /^[ \t]*\)/ { req = 0; rep = 0; next }
    {
      l = $0; sub(/[ \t]*\/\/.*$/, "", l)
      if (req) kind = "req"; else if (rep) kind = "rep"
      else if (l ~ /^require[ \t]/) { sub(/^require[ \t]+/, "", l); kind = "req" }
      else if (l ~ /^replace[ \t]/) { sub(/^replace[ \t]+/, "", l); kind = "rep" }
      else next
      sub(/^[ \t]+/, "", l); split(l, f, /[ \t]+/)
      if (kind == "req" && f[2] == "v0.0.0") print f[1]
      if (kind == "rep" && l ~ /=>[ \t]*\.\/staging\//) print f[1]
    }' "$mod_file" | sort -u)"
  [ -n "$staging_mods" ] || die "found no staging modules (v0.0.0 requires / ./staging replaces) in $mod_file"
  other_replaces="$(awk '
    /^replace[ \t]*\(/ { blk = 1; next }
    blk && /^[ \t]*\)/ { blk = 0; next }
    {
      l = $0
      if (!blk) { if (l !~ /^replace[ \t]/) next; sub(/^replace[ \t]+/, "", l) }
      sub(/^[ \t]+/, "", l); if (l == "" || l ~ /^\/\//) next
      n = split(l, parts, "=>"); if (n < 2) next
      rhs = parts[2]; sub(/^[ \t]+/, "", rhs)
      if (rhs ~ /^(\.|\/)/) next   # local replacements (./staging/src/...) are pinned above
      print "replace " l
    }' "$mod_file")"
  go_line="$(awk '/^go [0-9]/ { print; exit }' "$mod_file")"

  {
    echo "// Generated by sealant scripts/kubeadm.sh: builds kubeadm $v."
    echo "module sealant.local/kubeadm-build"
    echo
    echo "$go_line"
    echo
    echo "require k8s.io/kubernetes $v"
    echo
    echo "replace ("
    printf '%s\n' "$staging_mods" | sed "s|.*|	& => & $staging|"
    echo ")"
    [ -z "$other_replaces" ] || { echo; printf '%s\n' "$other_replaces"; }
  } > "$work/go.mod"
  rm -f "$work/go.sum"
  printf '%s\n' "//go:build tools" "" "package tools" "" "import _ \"k8s.io/kubernetes/cmd/kubeadm\"" > "$work/tools.go"

  # A private build cache, removed after a successful build: its ~1-2 GB of objects are useless
  # once the binary is linked.
  export GOCACHE="$cache/kubeadm-build/gocache"
  local out_log="$work/tidy.log"
  log "resolving modules (go mod tidy; $(printf '%s\n' "$staging_mods" | wc -l) staging modules pinned at $staging; downloads ~300 MB into $(go env GOMODCACHE) the first time)"
  if ! (cd "$work" && go mod tidy) > "$out_log" 2>&1; then
    cat "$out_log" >&2
    local r
    r="$(refused "$(cat "$out_log")")"
    [ -z "$r" ] || die "the module proxy refuses modules kubeadm $v needs:
$r
  use a version whose modules are all served (known to work here: KUBEADM_VERSION=$default)"
    die "go mod tidy failed in $work (see the error above)"
  fi

  local out="$cache/.kubeadm-$v.tmp.$$"
  rm -rf "$cache/.kubeadm-$v.tmp."* # leftovers of killed builds (we hold the lock)
  mkdir -p "$out/bin"
  trap 'rm -rf "'"$out"'"' EXIT
  local build_date ldflags p
  build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=$build_date"
    [ -z "$commit" ] || ldflags+=" -X $p.gitCommit=$commit"
  done
  log "building kubeadm $v (go build; ~5-10 min on 2 cores)"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/bin/kubeadm" k8s.io/kubernetes/cmd/kubeadm) \
    || die "go build of kubeadm $v failed (see the error above)"
  local got
  got="$("$out/bin/kubeadm" version -o short 2>&1)" || die "the built kubeadm does not run: $got"
  [ "$got" = "$v" ] || die "the built kubeadm reports version '$got', expected '$v'"
  end=$(date +%s)
  {
    echo "kubeadm=$v"
    echo "module=k8s.io/kubernetes@$v${commit:+ (commit $commit)}"
    echo "staging=$staging ($(printf '%s\n' "$staging_mods" | tr '\n' ' ' | sed 's/ $//'))"
    echo "go=$(go env GOVERSION)"
    echo "build_seconds=$((end - start))"
    echo "built_at=$build_date"
  } > "$out/BUILD-INFO"
  touch "$out/.complete"
  rm -rf "$dir" # an incomplete leftover (no .complete)
  mv -T "$out" "$dir" || die "cannot move $out to $dir"
  trap - EXIT
  rm -rf "$GOCACHE"
  log "built kubeadm $v in $((end - start)) s into $dir/bin ($(du -h "$dir/bin/kubeadm" | cut -f1))"
}

ensure() {
  if complete; then point_current; return; fi
  mkdir -p "$cache/kubeadm-build"
  exec 9> "$cache/kubeadm-build/.lock"
  flock 9
  if complete; then point_current; return; fi # another run built it while we waited
  build >&2
  point_current
}

ensure
kubeadm="$dir/bin/kubeadm"
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
  cat << EOF
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
EOF
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
printf '%s\n' "$out" | grep -q 'podSubnetz' || die "kubeadm rejected the bad configuration (exit $rc) without naming the field podSubnetz"
log "check passed: kubeadm $want validates good configurations and rejects an unknown field (exit $rc) in $(($(date +%s) - s)) s"
