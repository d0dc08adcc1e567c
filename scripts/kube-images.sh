#!/usr/bin/env bash
# Builds every container image a real Kubernetes cluster needs, as OCI image layouts under their
# upstream names, plus the add-on binaries they are made of and the CNI plugins the hosts need;
# everything cached. Input for sealant's Kubernetes base cluster image.
#
#   bash scripts/kube-images.sh [--check] [--rebuild] [vX.Y.Z]     (default v1.31.4)
#
# stdout: the images directory ($SEALANT_CACHE/kube-images-vX.Y.Z); progress goes to stderr.
#   --check    after ensuring the images, push each one to a docker-registry started on a free
#              loopback port (stopped afterwards) and compare the digests the registry reports
#   --rebuild  rebuild the images directory even when it is complete (the add-ons stay cached)
# Environment: SEALANT_CACHE (default ~/.cache/sealant); KUBE_BIN_DIR=DIR takes the Kubernetes
# binaries from DIR instead of `bash scripts/kubernetes.sh vX.Y.Z` (stdout: the release's
# directory, binaries in its bin/).
#
# Outputs (cache layout, $SEALANT_CACHE = ~/.cache/sealant by default):
#   kube-addons/<name>-<version>/{bin/,BUILD-INFO,.complete}   built once for every Kubernetes version
#     pause-<source hash>/bin/pause            our own pause (scripts/kube-images/pause/main.go)
#     etcd-v3.5.15/bin/{etcd,etcdctl}          the version kubeadm expects (SupportedEtcdVersion: 3.5.15
#                                              for v1.30.14 and v1.31.4, 3.5.16 for v1.29.15 — an upgrade
#                                              from v1.29.15 keeps 3.5.16: kubeadm skips an etcd downgrade)
#     coredns-v1.14.7/bin/coredns
#     flannel-v0.28.10/bin/flanneld
#     cni-plugins-v1.10.0/bin/{bridge,host-local,loopback,portmap}   for the hosts' /opt/cni/bin
#   kube-images-vX.Y.Z/                         one OCI image layout per image (linux/amd64)
#     images.json     {kubernetesVersion, platform, tags: {kubernetes, etcd, pause, coredns, flannel,
#                     haproxy, busybox}, images: [{name: full upstream reference, layout: directory
#                     (relative to images.json), tag: its ref in that layout, digest, size}],
#                     cniPlugins: {version, dir, plugins}, addons: {name: bin dir}, debian: {...}}
#     <short name>/   e.g. kube-apiserver/: `skopeo copy oci:kube-images-v1.31.4/kube-apiserver:v1.31.4 ...`
#     BUILD-INFO, .complete
#   Images (names exactly as upstream, so kubeadm's defaults and manifests find them):
#     registry.k8s.io/kube-apiserver:vX.Y.Z, kube-controller-manager, kube-scheduler
#                        one layer: the static binary in /usr/local/bin (kubeadm's static pods run
#                        it by name; PATH in the image config has /usr/local/bin)
#     registry.k8s.io/kube-proxy:vX.Y.Z   + a netfilter layer: Debian's iptables (nft backend, the
#                        Debian default, under every iptables/ip6tables{,-save,-restore} name),
#                        conntrack, their shared libraries and the xtables modules
#     registry.k8s.io/etcd:<kubeadm's tag, e.g. 3.5.15-0>   etcd + etcdctl (kubeadm runs `etcd`;
#                        `kubectl exec etcd-<node> -- etcdctl ...` works)
#     registry.k8s.io/pause:<kubeadm's PauseVersion: 3.10 for 1.31, 3.9 for 1.30 and 1.29>
#     registry.k8s.io/coredns/coredns:v1.14.7   entrypoint /coredns like upstream (kubeadm's
#                        Deployment passes only args); set kubeadm's dns.imageTag to images.json's tags.coredns
#     docker.io/flannel/flannel:v0.28.10   /opt/bin/flanneld (entrypoint) + the netfilter layer +
#                        busybox (/bin/sh and its applets) for a shell sidecar
#     docker.io/library/haproxy:<Debian's major.minor, 2.6>   Debian's haproxy + its libraries
#     docker.io/library/busybox:<Debian's busybox-static major.minor, 1.35>   a test workload
#   Every image is deterministic: layers are tars with sorted entries, root-owned, mtime 0, gzip -n;
#   configs and manifests are fixed JSON with created = 1970-01-01. The same inputs give the same
#   digests (the Kubernetes binaries' own content is kubernetes.sh's business). A blob identical to
#   one in another image or another kube-images-v* directory is a hard link to it, not a copy.
#
# Caching: each add-on is built in a temporary directory, then renamed (.complete marks it; it
# records the recipe, so changing a version or the Go release rebuilds it); the whole
# kube-images-vX.Y.Z directory likewise, so a complete one is never half-written and a second run
# only checks its marker (well under a second; it does not notice new Kubernetes binaries from
# kubernetes.sh: --rebuild). flock serialises concurrent runs. Go builds use a
# private GOCACHE that is deleted afterwards (the module downloads stay in GOMODCACHE).
#
# Why these choices (this machine reaches only the Go module proxy, Debian's apt and the npm
# registry; github.com, registry.k8s.io and docker.io are not reachable):
# - Add-ons are built from the Go module proxy (CGO_ENABLED=0, -trimpath, -s -w) with one pinned
#   Go release ($addon_go; fetched as golang.org/toolchain if the machine's Go differs), so every
#   machine produces the same binaries. coredns and the CNI plugins have no replace directives:
#   `go install module/pkg@version` builds them with their own go.mod/go.sum. etcd's modules
#   replace each other with ../ paths, so a small wrapper module requires etcd's server and
#   etcdctl at the release (its v2 client module is numbered v2.305.X). flanneld imports
#   github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc for its tencent-vpc backend, and
#   the proxy refuses every version of it (403); a wrapper module replaces it with a stub of ours
#   (scripts/kube-images/tencentcloud-vpc-stub: the same types, every call fails), so the other
#   backends are flannel's code unchanged and only tencent-vpc is unavailable. flanneld is the one
#   cgo build: on amd64 its udp backend is C, so like upstream's Makefile it is CGO_ENABLED=1 with
#   -extldflags -static (+ netgo,osusergo tags: no glibc NSS), a static binary. Each wrapper's go
#   line is the built module's own, so Go's GODEBUG defaults are those its authors chose.
# - etcd's version is the one kubeadm of that Kubernetes version expects: read from the
#   k8s.io/kubernetes module source, cmd/kubeadm/app/constants/constants.go (SupportedEtcdVersion
#   for the minor; PauseVersion likewise), not hard-coded.
# - pause is our own (registry.k8s.io/pause's C source is not on the proxy): sleeps, reaps
#   children as PID 1, exits 0 on SIGTERM/SIGINT and on -v (kubeadm upgrade's health-check Job).
# - CoreDNS v1.14.7, not the v1.11.3 kubeadm names: the proxy serves only v1.14.3 and later
#   (v1.14.7 is the newest v1.14.x, and it builds). The image runs as root (upstream runs as
#   nonroot with a file capability for port 53, which would need xattrs in the layer).
# - flannel's CNI plugin (github.com/flannel-io/cni-plugin) is not served, so there is none: the
#   flannel image carries busybox for a sidecar that writes a bridge CNI config from
#   /run/flannel/subnet.env, and the hosts get the standard bridge/host-local/loopback/portmap
#   plugins (containernetworking/plugins v1.10.0). flanneld itself (iptables mode, the default):
#   the host-gw backend only adds routes, but flanneld runs `iptables`/`iptables-restore` for its
#   FORWARD accept rules (--iptables-forward-rules, default true) and for --ip-masq (default false,
#   upstream's manifest sets it); without iptables the forward rules only log an error, --ip-masq
#   is fatal; with --iptables-forward-rules=false and no --ip-masq it execs no iptables at all. In
#   iptables mode it exits unless /proc/sys/net/bridge/bridge-nf-call-iptables exists (br_netfilter). The image has iptables anyway (the same layer as kube-proxy's). nftables mode
#   (EnableNFTables in net-conf.json) would need `nft` and still `iptables` (it cleans up the
#   iptables rules at start and exits when the binary is missing): not provided.
# - haproxy, not sealer's lvscare: this kernel has no IPVS and the proxy refuses lvscare's modules;
#   workers run haproxy as a static pod, a TCP load balancer in front of the masters' API servers.
#   It is Debian's binary with its shared libraries (haproxy is C; Debian's apt is reachable).
# - kube-proxy's iptables: Debian's xtables-nft-multi, like the host's default alternative, so the
#   rules kube-proxy writes and the host's `iptables` see the same nftables tables.
# Debian packages needed: iptables conntrack haproxy busybox-static gcc libc6-dev (flanneld's cgo),
# skopeo (the checks), docker-registry and curl (--check), and coreutils/tar/gzip/util-linux.
set -euo pipefail
umask 022
export LC_ALL=C

here="$(cd "$(dirname "$0")" && pwd)"
cache="${SEALANT_CACHE:-$HOME/.cache/sealant}"
default_k8s="v1.31.4"
recipe=2       # bump when the way images are made changes: complete images directories are rebuilt
addon_recipe=1 # likewise for the add-on builds

addon_go="go1.26.8"              # one Go release for every add-on (CNI plugins v1.10.0 need >= 1.26.8)
coredns_version="v1.14.7"        # newest v1.14.x the proxy serves (v1.14.3-v1.14.7); v1.11.x is refused
flannel_version="v0.28.10"       # newest v0.28.x served (v0.28.4, v0.28.10)
cni_plugins_version="v1.10.0"
cni_plugins="bridge host-local loopback portmap"
crictl_version="v1.34.0"         # kubeadm v1.30 refuses to init without crictl (preflight FileExisting-crictl);
                                 # the proxy serves cri-tools v1.34.0 and v1.37.0 (CRI v1: works with any kubelet here)
epoch="1970-01-01T00:00:00Z"

log() { echo "kube-images: $*" >&2; }
die() { echo "kube-images: ERROR: $*" >&2; exit 1; }

check=0 rebuild=0 k8s=""
for a in "$@"; do
  case "$a" in
    --check) check=1 ;;
    --rebuild) rebuild=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    v[0-9]* | [0-9]*) [ -z "$k8s" ] || die "one Kubernetes version only (got $k8s and $a)"; k8s="v${a#v}" ;;
    *) die "unknown argument: $a (usage: scripts/kube-images.sh [--check] [--rebuild] [vX.Y.Z])" ;;
  esac
done
k8s="${k8s:-$default_k8s}"
[[ "$k8s" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "the Kubernetes version must be a release like v1.31.4, got '$k8s'"
minor="${BASH_REMATCH[1]}"

pause_src="$here/kube-images/pause"
pause_key="$(cat "$pause_src/main.go" "$pause_src/go.mod" | sha256sum | cut -c1-12)"
tencent_stub="$here/kube-images/tencentcloud-vpc-stub"
tencent_key="$(cat "$tencent_stub/go.mod" "$tencent_stub/v20170312/stub.go" | sha256sum | cut -c1-12)"
addons="$cache/kube-addons"
out="$cache/kube-images-$k8s"
# What a complete images directory must have been made with; also in its .complete.
images_key="recipe=$recipe addons=$addon_recipe go=$addon_go pause=$pause_key coredns=$coredns_version flannel=$flannel_version+$tencent_key cni=$cni_plugins_version crictl=$crictl_version"

complete_with() { [ -f "$1/.complete" ] && [ "$(cat "$1/.complete")" = "$2" ]; }

# ---------------------------------------------------------------------------------------------
# Fast path: nothing to do.
if [ "$rebuild" = 0 ] && complete_with "$out" "$images_key" && [ "$check" = 0 ]; then
  echo "$out"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Go
use_go() {
  command -v go > /dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
  command -v go > /dev/null 2>&1 || die "go not found (looked on PATH and in /usr/local/go/bin)"
  export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOTOOLCHAIN="$addon_go"
  local v
  v="$(go env GOVERSION 2>&1)" || die "cannot get the Go release $addon_go (from the module proxy as golang.org/toolchain): $v"
  [ "$v" = "$addon_go" ] || die "go reports $v, expected $addon_go"
}

json_field() { # json_field NAME < `go mod download -json` output (tab-indented, one field a line)
  sed -n 's/^\t"'"$1"'": "\(.*\)",\{0,1\}$/\1/p' | head -n 1
}

# Names the modules the proxy refused in go's output $1.
refused() {
  printf '%s\n' "$1" | sed -nE 's#.*[[:space:]:]([a-z0-9.-]+(/[^ @:]+)+@v[^ :]+): (reading|verifying) .*(403 Forbidden|404 Not Found|410 Gone).*#    \1 (\4)#p' | sort -u || true
}

# go_fail WHAT LOGFILE: the end of the log and what the proxy refused, then die.
go_fail() {
  tail -n 30 "$2" >&2
  local r
  r="$(refused "$(cat "$2")")"
  [ -z "$r" ] || die "$1: the module proxy refuses:
$r"
  die "$1 failed (log: $2)"
}

# ---------------------------------------------------------------------------------------------
# Add-ons: ensure_addon NAME-VERSION KEY BUILD_FUNCTION. The function builds into $1/bin (a
# temporary directory) with GOCACHE set, and may add lines to $1/BUILD-INFO.
ensure_addon() {
  local name="$1" key="$2" fn="$3" dir="$addons/$1"
  complete_with "$dir" "$key" && return 0
  mkdir -p "$addons"
  exec 8> "$addons/.lock"
  flock 8
  if complete_with "$dir" "$key"; then exec 8>&-; return 0; fi # built by another run meanwhile
  use_go
  local tmp="$addons/.$name.tmp.$$" start=$SECONDS
  rm -rf "$addons/.$name.tmp."* # leftovers of killed runs (we hold the lock)
  mkdir -p "$tmp/bin" "$tmp/work"
  export GOCACHE="$tmp/gocache"
  trap 'chmod -R u+w "'"$tmp"'" 2> /dev/null; rm -rf "'"$tmp"'"' EXIT
  log "building $name (Go $addon_go; GOCACHE $GOCACHE, deleted afterwards)"
  "$fn" "$tmp"
  {
    echo "addon=$name"
    echo "go=$(go env GOVERSION) -trimpath (CGO_ENABLED=0 unless said above)"
    echo "build_seconds=$((SECONDS - start))"
    (cd "$tmp/bin" && for f in *; do echo "bin/$f sha256=$(sha256sum < "$f" | cut -c1-64) size=$(stat -c %s "$f")"; done)
  } >> "$tmp/BUILD-INFO"
  chmod -R u+w "$tmp/gocache" 2> /dev/null || true
  rm -rf "$tmp/gocache" "$tmp/work"
  printf '%s' "$key" > "$tmp/.complete"
  rm -rf "$dir"
  mv -T "$tmp" "$dir" || die "cannot move $tmp to $dir"
  trap - EXIT
  unset GOCACHE
  exec 8>&-
  log "built $name in $((SECONDS - start)) s: $(du -sh "$dir/bin" | cut -f1) ($(ls "$dir/bin" | tr '\n' ' '))"
}

# go install PACKAGE@VERSION... into $1/bin with the given ldflags: modules without replace
# directives build from their own go.mod/go.sum.
go_install() {
  local tmp="$1" what="$2" ldflags="$3"; shift 3
  (cd "$tmp/work" && GOBIN="$tmp/bin" go install -trimpath -ldflags "$ldflags" "$@") > "$tmp/work/build.log" 2>&1 \
    || go_fail "go install of $what" "$tmp/work/build.log"
}

build_pause() {
  local tmp="$1"
  cp "$pause_src/main.go" "$pause_src/go.mod" "$tmp/work/"
  (cd "$tmp/work" && go build -trimpath -ldflags "-s -w -X main.version=$pause_key" -o "$tmp/bin/pause" .) > "$tmp/work/build.log" 2>&1 \
    || go_fail "go build of pause" "$tmp/work/build.log"
  echo "source=scripts/kube-images/pause (sha256 of main.go+go.mod: $pause_key...)" > "$tmp/BUILD-INFO"
}

build_etcd() { # $etcd_version (v3.5.X): etcd server + etcdctl through a wrapper module
  local tmp="$1" w="$1/work" v="$etcd_version" gv
  local client_v2="v2.305.${etcd_version#v3.5.}"
  local dl
  dl="$(cd "$w" && go mod download -json "go.etcd.io/etcd/server/v3@$v" 2>&1)" || true
  if printf '%s' "$dl" | grep -q '"Error"'; then die "the module proxy does not serve go.etcd.io/etcd/server/v3@$v: $(printf '%s\n' "$dl" | json_field Error)"; fi
  gv="$(awk '/^go [0-9]/ { print $2; exit }' "$(printf '%s\n' "$dl" | json_field GoMod)")"
  {
    echo "// Generated by sealant scripts/kube-images.sh: builds etcd $v and etcdctl."
    echo "module sealant.local/etcd-build"
    echo
    echo "go $gv"
    echo
    echo "require ("
    echo "	go.etcd.io/etcd/server/v3 $v"
    echo "	go.etcd.io/etcd/etcdctl/v3 $v"
    echo ")"
    echo
    echo "// etcd's own go.mod files replace these with ../ paths; pin them to the release."
    echo "replace ("
    for m in api/v3 client/pkg/v3 client/v3 pkg/v3 raft/v3 server/v3 etcdctl/v3 etcdutl/v3; do
      echo "	go.etcd.io/etcd/$m => go.etcd.io/etcd/$m $v"
    done
    echo "	go.etcd.io/etcd/client/v2 => go.etcd.io/etcd/client/v2 $client_v2"
    echo ")"
  } > "$w/go.mod"
  printf '%s\n' "//go:build tools" "" "package tools" "" 'import (' '	_ "go.etcd.io/etcd/etcdctl/v3"' '	_ "go.etcd.io/etcd/server/v3"' ')' > "$w/tools.go"
  (cd "$w" && go mod tidy) > "$w/tidy.log" 2>&1 || go_fail "go mod tidy for etcd $v" "$w/tidy.log"
  local gitsha
  gitsha="$(sed -n 's/.*"Hash":"\([0-9a-f]\{7\}\).*/\1/p' "$(printf '%s\n' "$dl" | json_field Info)" 2> /dev/null | head -n 1)"
  local ld="-s -w${gitsha:+ -X go.etcd.io/etcd/api/v3/version.GitSHA=$gitsha}"
  (cd "$w" && go build -trimpath -ldflags "$ld" -o "$tmp/bin/etcd" go.etcd.io/etcd/server/v3 \
    && go build -trimpath -ldflags "$ld" -o "$tmp/bin/etcdctl" go.etcd.io/etcd/etcdctl/v3) > "$w/build.log" 2>&1 \
    || go_fail "go build of etcd $v" "$w/build.log"
  cp "$w/go.mod" "$tmp/wrapper-go.mod"
  echo "source=go.etcd.io/etcd/server/v3@$v + go.etcd.io/etcd/etcdctl/v3@$v (wrapper module: wrapper-go.mod; client/v2 $client_v2)" > "$tmp/BUILD-INFO"
}

build_coredns() {
  local tmp="$1"
  go_install "$tmp" "coredns $coredns_version" "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$coredns_version" \
    "github.com/coredns/coredns@$coredns_version"
  echo "source=github.com/coredns/coredns@$coredns_version" > "$tmp/BUILD-INFO"
}

build_flannel() { # a wrapper module: flannel's tencent-vpc SDK module is not served (see the header)
  local tmp="$1" w="$1/work" dl gv
  dl="$(cd "$w" && go mod download -json "github.com/flannel-io/flannel@$flannel_version" 2>&1)" || true
  if printf '%s' "$dl" | grep -q '"Error"'; then die "the module proxy does not serve github.com/flannel-io/flannel@$flannel_version: $(printf '%s\n' "$dl" | json_field Error)"; fi
  gv="$(awk '/^go [0-9]/ { print $2; exit }' "$(printf '%s\n' "$dl" | json_field GoMod)")"
  cp -r "$tencent_stub" "$w/tencentcloud-vpc-stub"
  {
    echo "// Generated by sealant scripts/kube-images.sh: builds flanneld $flannel_version."
    echo "module sealant.local/flannel-build"
    echo
    echo "go $gv"
    echo
    echo "require github.com/flannel-io/flannel $flannel_version"
    echo
    echo "// Not served by the module proxy; used only by the tencent-vpc backend (every call fails)."
    echo "replace github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc => ./tencentcloud-vpc-stub"
  } > "$w/go.mod"
  printf '%s\n' "//go:build tools" "" "package tools" "" 'import _ "github.com/flannel-io/flannel"' > "$w/tools.go"
  (cd "$w" && go mod tidy) > "$w/tidy.log" 2>&1 || go_fail "go mod tidy for flannel $flannel_version" "$w/tidy.log"
  # On amd64 flannel's udp backend is C (cgo): build like upstream's Makefile (CGO_ENABLED=1 on
  # amd64, -extldflags -static), with netgo/osusergo so the static binary never loads glibc's NSS.
  command -v gcc > /dev/null 2>&1 || die "gcc not found: flanneld needs cgo on amd64; install the Debian packages gcc libc6-dev"
  (cd "$w" && CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo \
    -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$flannel_version -extldflags -static" \
    -o "$tmp/bin/flanneld" github.com/flannel-io/flannel) > "$w/build.log" 2>&1 \
    || go_fail "go build of flanneld $flannel_version" "$w/build.log"
  ! ldd "$tmp/bin/flanneld" > /dev/null 2>&1 || die "flanneld is not static: $(ldd "$tmp/bin/flanneld" 2>&1 | tr '\n' ' ')"
  cp "$w/go.mod" "$tmp/wrapper-go.mod"
  echo "source=github.com/flannel-io/flannel@$flannel_version (wrapper module: wrapper-go.mod; tencentcloud vpc SDK replaced by scripts/kube-images/tencentcloud-vpc-stub $tencent_key, so the tencent-vpc backend fails; static, CGO_ENABLED=1 for the udp backend's C proxy, gcc $(gcc -dumpfullversion 2> /dev/null))" > "$tmp/BUILD-INFO"
}

build_cni() {
  local tmp="$1" pkgs=() p
  for p in $cni_plugins; do
    case "$p" in
      bridge | loopback) pkgs+=("github.com/containernetworking/plugins/plugins/main/$p@$cni_plugins_version") ;;
      host-local) pkgs+=("github.com/containernetworking/plugins/plugins/ipam/$p@$cni_plugins_version") ;;
      portmap) pkgs+=("github.com/containernetworking/plugins/plugins/meta/$p@$cni_plugins_version") ;;
      *) die "unknown CNI plugin $p" ;;
    esac
  done
  go_install "$tmp" "CNI plugins $cni_plugins_version" \
    "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$cni_plugins_version" "${pkgs[@]}"
  echo "source=github.com/containernetworking/plugins@$cni_plugins_version ($cni_plugins)" > "$tmp/BUILD-INFO"
}

build_crictl() {
  local tmp="$1"
  go_install "$tmp" "crictl $crictl_version" "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$crictl_version" "sigs.k8s.io/cri-tools/cmd/crictl@$crictl_version"
  echo "source=sigs.k8s.io/cri-tools@$crictl_version (cmd/crictl)" > "$tmp/BUILD-INFO"
}

# ---------------------------------------------------------------------------------------------
# What kubeadm of $k8s expects: etcd and pause tags, from the k8s.io/kubernetes module source.
read_kubeadm_constants() {
  use_go
  local dl src c
  dl="$(cd / && go mod download -json "k8s.io/kubernetes@$k8s" 2>&1)" || true
  if printf '%s' "$dl" | grep -q '"Error"'; then die "the module proxy does not serve k8s.io/kubernetes@$k8s: $(printf '%s\n' "$dl" | json_field Error)"; fi
  src="$(printf '%s\n' "$dl" | json_field Dir)"
  c="$src/cmd/kubeadm/app/constants/constants.go"
  [ -f "$c" ] || die "no $c in the downloaded k8s.io/kubernetes@$k8s"
  etcd_tag="$(awk -v m="$minor" '
    /SupportedEtcdVersion = map\[uint8\]string\{/ { inmap = 1; next }
    inmap && /^\t*\}/ { exit }
    inmap { gsub(/[ \t",]/, ""); split($0, kv, ":"); if (kv[1] == m) { print kv[2]; exit } }' "$c")"
  [ -n "$etcd_tag" ] || die "$c: SupportedEtcdVersion has no entry for minor $minor"
  pause_tag="$(sed -n 's/^[[:space:]]*PauseVersion = "\([^"]*\)".*/\1/p' "$c" | head -n 1)"
  [ -n "$pause_tag" ] || die "$c: no PauseVersion"
  kubeadm_coredns="$(sed -n 's/^[[:space:]]*CoreDNSVersion = "\([^"]*\)".*/\1/p' "$c" | head -n 1)"
  [[ "$etcd_tag" =~ ^3\.5\.[0-9]+-[0-9]+$ ]] || die "kubeadm $k8s expects etcd $etcd_tag; this script builds etcd 3.5.x only"
  etcd_version="v${etcd_tag%-*}"
  log "kubeadm $k8s expects etcd $etcd_tag, pause $pause_tag (and CoreDNS $kubeadm_coredns, replaced by $coredns_version)"
}

# ---------------------------------------------------------------------------------------------
# Image building blocks. Root file systems are plain directories under $work; a layer is their
# tar (sorted, root-owned, mtime 0), gzip -n.

# copy_host ROOT PATH: PATH of this machine into ROOT at the same place. Symbolic links, the path's
# own and its directories' (Debian's /lib -> usr/lib), are recreated as links and followed.
copy_host() {
  local root="$1" p="$2" cur="" i n t target rest
  local -a comps
  IFS='/' read -r -a comps <<< "${p#/}"
  n=${#comps[@]}
  for ((i = 0; i < n; i++)); do
    [ -n "${comps[i]}" ] || continue
    cur="$cur/${comps[i]}"
    if [ -L "$cur" ]; then
      t="$(readlink "$cur")"
      if [ -L "$root$cur" ]; then
        [ "$(readlink "$root$cur")" = "$t" ] || die "$root$cur: a link to $(readlink "$root$cur"), here $t"
      else
        [ ! -e "$root$cur" ] || die "$root$cur exists, but $cur is a link to $t here"
        ln -s "$t" "$root$cur"
      fi
      case "$t" in /*) target="$t" ;; *) target="$(dirname "$cur")/$t" ;; esac
      target="$(realpath -m -s "$target")"
      rest="$(IFS=/; echo "${comps[*]:i+1}")"
      copy_host "$root" "$target${rest:+/$rest}"
      return
    elif ((i < n - 1)); then
      [ -d "$root$cur" ] || mkdir "$root$cur"
    elif [ -d "$cur" ]; then
      mkdir -p "$root$cur"
      cp -a --no-preserve=ownership "$cur/." "$root$cur/"
    elif [ -f "$cur" ]; then
      [ -e "$root$cur" ] || cp --preserve=mode "$cur" "$root$cur"
    else
      die "$cur: not found on this machine"
    fi
  done
}

# copy_elf ROOT FILE...: the files and every shared library `ldd` names for them.
copy_elf() {
  local root="$1" f lib
  shift
  for f in "$@"; do
    copy_host "$root" "$f"
    for lib in $(ldd "$f" 2> /dev/null | grep -o '/[^ ]*' || true); do
      copy_host "$root" "$lib"
    done
  done
}

# base_files ROOT [EXTRA PASSWD LINE]: /etc/passwd, /etc/group, /etc/hosts (localhost, for a
# runtime that does not provide one; the kubelet mounts its own), /etc/nsswitch.conf, /tmp.
base_files() {
  mkdir -p "$1/etc" "$1/tmp"
  chmod 1777 "$1/tmp"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$1/etc/hosts"
  printf 'hosts: files dns\n' > "$1/etc/nsswitch.conf"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n%s' "${2:+$2
}" > "$1/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$1/etc/group"
}

# make_layer KEY ROOT: $work/layers/KEY.tar.gz with KEY.diffid (reused within a run).
make_layer() {
  local key="$1" root="$2" l="$work/layers/$1"
  [ -f "$l.tar.gz" ] && return 0
  mkdir -p "$work/layers"
  tar --sort=name --format=gnu --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --no-acls --no-xattrs --no-selinux -C "$root" -cf "$l.tar" .
  sha256sum < "$l.tar" | cut -c1-64 > "$l.diffid"
  gzip -n -6 < "$l.tar" > "$l.tar.gz"
  rm -f "$l.tar"
}

# put_blob FILE LAYOUT: FILE becomes LAYOUT/blobs/sha256/DIGEST (sets blob_digest, blob_size), as
# a hard link to an identical blob of another image or images directory when there is one.
put_blob() {
  local f="$1" layout="$2" d s c dest
  d="$(sha256sum < "$f" | cut -c1-64)"
  s="$(stat -c %s "$f")"
  dest="$layout/blobs/sha256/$d"
  mkdir -p "$layout/blobs/sha256"
  if [ ! -e "$dest" ]; then
    for c in "$tmpout"/*/blobs/sha256/"$d" "$cache"/kube-images-v*/*/blobs/sha256/"$d"; do
      [ -f "$c" ] && ln "$c" "$dest" 2> /dev/null && break
    done
    [ -e "$dest" ] || ln "$f" "$dest" 2> /dev/null || cp "$f" "$dest"
  fi
  blob_digest="$d" blob_size="$s"
}

json_strings() { # json_strings WORD...: ["WORD",...] (words without quotes or backslashes)
  local out="" w
  for w in "$@"; do out+="${out:+,}\"$w\""; done
  echo "[$out]"
}

std_path="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# mkimage DIR NAME TAG CONFIG LAYER_KEY:DESCRIPTION...
#   DIR: the layout directory under $tmpout; NAME: full upstream reference without the tag;
#   CONFIG: the members of the image config's "config" object (JSON without braces).
mkimage() {
  local dir="$1" name="$2" tag="$3" conf="$4" layout="$tmpout/$1"
  shift 4
  local spec key desc ld ls diffids="" layers="" history="" cd cs md ms
  mkdir -p "$layout"
  for spec in "$@"; do
    key="${spec%%:*}" desc="${spec#*:}"
    put_blob "$work/layers/$key.tar.gz" "$layout"
    ld="$blob_digest" ls="$blob_size"
    diffids+="${diffids:+,}\"sha256:$(cat "$work/layers/$key.diffid")\""
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$ld\",\"size\":$ls}"
    history+="${history:+,}{\"created\":\"$epoch\",\"created_by\":\"sealant scripts/kube-images.sh: $desc\"}"
  done
  printf '{"created":"%s","architecture":"amd64","os":"linux","config":{%s},"rootfs":{"type":"layers","diff_ids":[%s]},"history":[%s]}' \
    "$epoch" "$conf" "$diffids" "$history" > "$work/config.json"
  put_blob "$work/config.json" "$layout"
  cd="$blob_digest" cs="$blob_size"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$cd" "$cs" "$layers" > "$work/manifest.json"
  put_blob "$work/manifest.json" "$layout"
  md="$blob_digest" ms="$blob_size"
  rm -f "$work/config.json" "$work/manifest.json"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s:%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$md" "$ms" "$name" "$tag" "$tag" > "$layout/index.json"
  local total
  total="$(find "$layout/blobs" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')"
  image_rows+=("{\"name\":\"$name:$tag\",\"layout\":\"$dir\",\"tag\":\"$tag\",\"digest\":\"sha256:$md\",\"size\":$total}")
  log "image $name:$tag sha256:$md ($(numfmt --to=iec "$total"))"
}

labels() { # labels VERSION DESCRIPTION: a "Labels" member
  printf '"Labels":{"org.opencontainers.image.version":"%s","org.opencontainers.image.description":"%s","io.sealant.kube-images.recipe":"%s"}' "$1" "$2" "$recipe"
}

# in_root ROOT COMMAND...: runs COMMAND chrooted into ROOT (as root; else in a user namespace).
in_root() {
  local root="$1"
  shift
  if [ "$(id -u)" = 0 ]; then
    chroot "$root" "$@"
  else
    unshare --map-root-user chroot "$root" "$@"
  fi
}

# check_run WHAT ROOT EXPECTED_REGEX COMMAND...: COMMAND must succeed in the rootfs and print EXPECTED.
check_run() {
  local what="$1" root="$2" want="$3" got
  shift 3
  got="$(in_root "$root" "$@" 2>&1)" || die "$what: \`$*\` fails in the image's root file system: $got"
  printf '%s\n' "$got" | grep -Eq "$want" || die "$what: \`$*\` printed '$got', expected /$want/"
  log "  check $what: $* -> $(printf '%s\n' "$got" | grep -E -m1 "$want")"
}

need_cmd() { command -v "$1" > /dev/null 2>&1 || die "$1 not found: install the Debian package $2"; }
deb_version() { dpkg-query -W -f '${Version}' "$1" 2> /dev/null || echo unknown; }

# ---------------------------------------------------------------------------------------------
build_images() {
  local kbin="$1" start=$SECONDS
  local c v
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    [ -x "$kbin/$c" ] || die "no $kbin/$c"
    v="$("$kbin/$c" --version 2>&1 | awk '{ print $2 }')"
    [ "$v" = "$k8s" ] || die "$kbin/$c reports version '$v', expected $k8s"
  done
  need_cmd xtables-nft-multi iptables
  need_cmd conntrack conntrack
  need_cmd haproxy haproxy
  need_cmd skopeo skopeo
  [ -x /bin/busybox ] && file_is_static /bin/busybox || die "/bin/busybox is missing or not static: install the Debian package busybox-static"

  tmpout="$cache/.kube-images-$k8s.tmp.$$"
  work="$cache/.kube-images-$k8s.work.$$"
  rm -rf "$cache/.kube-images-$k8s.tmp."* "$cache/.kube-images-$k8s.work."* # leftovers of killed runs (we hold the lock)
  mkdir -p "$tmpout" "$work"
  trap 'rm -rf "'"$tmpout"'" "'"$work"'"' EXIT
  image_rows=()
  local r

  # Control plane: one layer each.
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    r="$work/root-$c"
    base_files "$r"
    mkdir -p "$r/usr/local/bin"
    cp "$kbin/$c" "$r/usr/local/bin/$c"
    chmod 755 "$r/usr/local/bin/$c"
    check_run "$c" "$r" "^Kubernetes $k8s\$" "/usr/local/bin/$c" --version
    make_layer "$c" "$r"
    mkimage "$c" "registry.k8s.io/$c" "$k8s" \
      "\"Env\":[\"$std_path\"],\"Entrypoint\":[\"/usr/local/bin/$c\"],$(labels "$k8s" "$c $k8s built by sealant from the Go module proxy")" \
      "$c:/usr/local/bin/$c $k8s"
  done

  # The netfilter layer (kube-proxy and flannel): Debian's iptables with the nft backend.
  local xnft iptables_backend
  xnft="$(command -v xtables-nft-multi)"
  xnft="$(readlink -f "$xnft")"
  iptables_backend="$(basename "$(readlink -f "$(command -v iptables)")")"
  [ "$iptables_backend" = xtables-nft-multi ] \
    || log "WARNING: this machine's iptables is $iptables_backend; the images use xtables-nft-multi (Debian's default)"
  r="$work/root-netfilter"
  mkdir -p "$r"
  copy_elf "$r" "$xnft" "$(readlink -f "$(command -v conntrack)")"
  local xtdir mod
  xtdir="$(dirname "$(ldd "$xnft" | grep -o '/[^ ]*libxtables[^ ]*')")/xtables"
  [ -d "$xtdir" ] || die "no xtables modules directory $xtdir"
  copy_host "$r" "$xtdir"
  for mod in "$xtdir"/*.so; do
    [ -L "$mod" ] || copy_elf "$r" "$mod"
  done
  [ ! -f /etc/protocols ] || copy_host "$r" /etc/protocols
  [ ! -f /etc/ethertypes ] || copy_host "$r" /etc/ethertypes
  local sbin
  sbin="$(dirname "$xnft")"
  for c in iptables ip6tables; do
    for v in "" -save -restore; do
      ln -sf xtables-nft-multi "$r$sbin/$c$v"
      ln -sf xtables-nft-multi "$r$sbin/$c-nft$v"
    done
  done
  base_files "$r" # for in_root checks; the layer is merged under kube-proxy's/flannel's own files
  check_run "iptables (nft)" "$r" 'nf_tables' iptables --version
  check_run "iptables-nft" "$r" 'nf_tables' iptables-nft --version
  check_run "ip6tables-restore" "$r" 'nf_tables' ip6tables-restore --version
  check_run "xtables modules" "$r" 'comment' iptables -m comment --help
  check_run "conntrack" "$r" '^conntrack' conntrack --version
  rm -rf "$r/etc/passwd" "$r/etc/group" "$r/etc/hosts" "$r/etc/nsswitch.conf" "$r/tmp"
  make_layer netfilter "$r"
  local netfilter_desc="Debian iptables $(deb_version iptables) (xtables-nft-multi), conntrack $(deb_version conntrack), their libraries"

  # kube-proxy: netfilter layer + the binary.
  r="$work/root-kube-proxy"
  base_files "$r"
  mkdir -p "$r/usr/local/bin"
  cp "$kbin/kube-proxy" "$r/usr/local/bin/kube-proxy"
  chmod 755 "$r/usr/local/bin/kube-proxy"
  make_layer kube-proxy "$r"
  local chk="$work/check-kube-proxy"
  mkdir -p "$chk"
  cp -a "$work/root-netfilter/." "$r/." "$chk/"
  check_run kube-proxy "$chk" "^Kubernetes $k8s\$" kube-proxy --version
  check_run "kube-proxy's iptables-save" "$chk" 'nf_tables' iptables-save --version
  rm -rf "$chk"
  mkimage kube-proxy "registry.k8s.io/kube-proxy" "$k8s" \
    "\"Env\":[\"$std_path\"],\"Entrypoint\":[\"/usr/local/bin/kube-proxy\"],$(labels "$k8s" "kube-proxy $k8s built by sealant from the Go module proxy; $netfilter_desc")" \
    "netfilter:$netfilter_desc" "kube-proxy:/usr/local/bin/kube-proxy $k8s"

  # etcd
  r="$work/root-etcd"
  base_files "$r"
  mkdir -p "$r/usr/local/bin" "$r/var/lib/etcd"
  cp "$addons/etcd-$etcd_version/bin/etcd" "$addons/etcd-$etcd_version/bin/etcdctl" "$r/usr/local/bin/"
  check_run etcd "$r" "^etcd Version: ${etcd_version#v}\$" etcd --version
  check_run etcdctl "$r" "^etcdctl version: ${etcd_version#v}\$" etcdctl version
  make_layer "etcd-$etcd_version" "$r"
  mkimage etcd "registry.k8s.io/etcd" "$etcd_tag" \
    "\"Env\":[\"$std_path\"],\"Cmd\":[\"/usr/local/bin/etcd\"],$(labels "$etcd_tag" "etcd $etcd_version (etcd, etcdctl) built by sealant from the Go module proxy")" \
    "etcd-$etcd_version:/usr/local/bin/etcd, etcdctl $etcd_version"

  # pause (as upstream: entrypoint /pause, user 65535)
  r="$work/root-pause"
  mkdir -p "$r"
  cp "$addons/pause-$pause_key/bin/pause" "$r/pause"
  check_run pause "$r" '^pause \(sealant\)' /pause -v
  make_layer pause "$r"
  mkimage pause "registry.k8s.io/pause" "$pause_tag" \
    "\"User\":\"65535:65535\",\"Env\":[\"$std_path\"],\"Entrypoint\":[\"/pause\"],$(labels "$pause_tag" "sealant's pause (scripts/kube-images/pause), tagged as the pause version kubeadm $k8s expects")" \
    "pause:/pause (sealant $pause_key)"

  # coredns (entrypoint /coredns as upstream)
  r="$work/root-coredns"
  base_files "$r"
  cp "$addons/coredns-$coredns_version/bin/coredns" "$r/coredns"
  check_run coredns "$r" "^CoreDNS-${coredns_version#v}\$" /coredns -version
  make_layer coredns "$r"
  mkimage coredns "registry.k8s.io/coredns/coredns" "$coredns_version" \
    "\"Env\":[\"$std_path\"],\"Entrypoint\":[\"/coredns\"],\"ExposedPorts\":{\"53/tcp\":{},\"53/udp\":{}},$(labels "$coredns_version" "CoreDNS $coredns_version built by sealant from the Go module proxy")" \
    "coredns:/coredns $coredns_version"

  # busybox layer (the busybox image and flannel's sidecar shell)
  local bbv bbtag a
  bbv="$(deb_version busybox-static)"
  bbtag="$(/bin/busybox | head -n 1 | sed -n 's/^BusyBox v\([0-9]*\.[0-9]*\).*/\1/p')"
  [ -n "$bbtag" ] || die "cannot read busybox's version"
  r="$work/root-busybox"
  mkdir -p "$r/bin"
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"
  done
  make_layer busybox "$r"
  r="$work/root-busybox-image"
  base_files "$r"
  mkdir -p "$r/root" "$r/var" "$r/home"
  make_layer busybox-base "$r"
  chk="$work/check-busybox"
  mkdir -p "$chk"
  cp -a "$work/root-busybox/." "$r/." "$chk/"
  check_run busybox "$chk" '^ok$' /bin/sh -c 'echo ok'
  rm -rf "$chk"
  mkimage busybox "docker.io/library/busybox" "$bbtag" \
    "\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"sh\"],$(labels "$bbtag" "Debian busybox-static $bbv")" \
    "busybox-base:/etc/passwd, /etc/group, /etc/hosts, /etc/nsswitch.conf, /tmp" "busybox:Debian busybox-static $bbv"

  # flannel: netfilter + busybox + flanneld
  r="$work/root-flannel"
  base_files "$r"
  mkdir -p "$r/opt/bin" "$r/run/flannel" "$r/etc/kube-flannel"
  cp "$addons/flannel-$flannel_version/bin/flanneld" "$r/opt/bin/flanneld"
  make_layer flannel "$r"
  chk="$work/check-flannel"
  mkdir -p "$chk"
  cp -a "$work/root-netfilter/." "$work/root-busybox/." "$r/." "$chk/"
  check_run flanneld "$chk" "^$flannel_version\$" /opt/bin/flanneld --version
  check_run "flannel's iptables" "$chk" 'nf_tables' /bin/sh -c 'iptables --version'
  check_run "flannel's sh" "$chk" '^10\.244\.1\.1/24$' /bin/sh -c 'printf "FLANNEL_SUBNET=10.244.1.1/24\n" > /tmp/s.env && . /tmp/s.env && echo "$FLANNEL_SUBNET"'
  rm -rf "$chk"
  mkimage flannel "docker.io/flannel/flannel" "$flannel_version" \
    "\"Env\":[\"PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Entrypoint\":[\"/opt/bin/flanneld\"],$(labels "$flannel_version" "flanneld $flannel_version built by sealant from the Go module proxy; $netfilter_desc; Debian busybox-static $bbv")" \
    "netfilter:$netfilter_desc" "busybox:Debian busybox-static $bbv" "flannel:/opt/bin/flanneld $flannel_version"

  # haproxy: Debian's binary and libraries (as upstream: haproxy on PATH, config dir
  # /usr/local/etc/haproxy, user haproxy 99, StopSignal SIGUSR1 = soft stop)
  local hpv hptag
  hpv="$(deb_version haproxy)"
  hptag="$(haproxy -v | sed -n '1s/^HAProxy version \([0-9]*\.[0-9]*\).*/\1/p')"
  [ -n "$hptag" ] || die "cannot read haproxy's version"
  r="$work/root-haproxy"
  base_files "$r" "haproxy:x:99:99:haproxy:/var/lib/haproxy:/usr/sbin/nologin"
  printf 'haproxy:x:99:\n' >> "$r/etc/group"
  copy_elf "$r" "$(readlink -f "$(command -v haproxy)")"
  mkdir -p "$r/usr/local/etc/haproxy" "$r/var/lib/haproxy" "$r/run/haproxy"
  cat > "$r/tmp/check.cfg" << 'EOF'
global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend apiserver
  bind 127.0.0.1:6443
  default_backend masters
backend masters
  option httpchk GET /healthz
  http-check expect status 200
  server m1 10.0.0.11:6443 check check-ssl verify none
  server m2 10.0.0.12:6443 check check-ssl verify none
EOF
  check_run haproxy "$r" "^HAProxy version $hptag" haproxy -v
  check_run "haproxy -c" "$r" 'Configuration file is valid' haproxy -c -f /tmp/check.cfg
  rm -f "$r/tmp/check.cfg"
  make_layer haproxy "$r"
  mkimage haproxy "docker.io/library/haproxy" "$hptag" \
    "\"Env\":[\"$std_path\"],\"Cmd\":[\"haproxy\",\"-W\",\"-db\",\"-f\",\"/usr/local/etc/haproxy/haproxy.cfg\"],\"StopSignal\":\"SIGUSR1\",$(labels "$hptag" "Debian haproxy $hpv with its shared libraries")" \
    "haproxy:Debian haproxy $hpv"

  # Every layout must read back with skopeo, with the digest written.
  local row d t
  for row in "${image_rows[@]}"; do
    d="$(printf '%s' "$row" | sed -n 's/.*"layout":"\([^"]*\)".*/\1/p')"
    t="$(printf '%s' "$row" | sed -n 's/.*"tag":"\([^"]*\)".*/\1/p')"
    v="$(printf '%s' "$row" | sed -n 's/.*"digest":"\([^"]*\)".*/\1/p')"
    got="$(skopeo inspect --format '{{.Digest}} {{.Os}}/{{.Architecture}}' "oci:$tmpout/$d:$t" 2>&1)" || die "skopeo inspect oci:$d:$t failed: $got"
    [ "$got" = "$v linux/amd64" ] || die "skopeo inspect oci:$d:$t gives '$got', expected '$v linux/amd64'"
  done
  log "skopeo inspect: all ${#image_rows[@]} layouts read back with their digests"

  # images.json
  local rows addons_json
  rows="$(IFS=,; echo "${image_rows[*]}" | sed 's/},{/},\n    {/g')"
  addons_json="\"pause\":\"$addons/pause-$pause_key/bin\",\"etcd\":\"$addons/etcd-$etcd_version/bin\",\"coredns\":\"$addons/coredns-$coredns_version/bin\",\"flannel\":\"$addons/flannel-$flannel_version/bin\",\"cniPlugins\":\"$addons/cni-plugins-$cni_plugins_version/bin\",\"crictl\":\"$addons/crictl-$crictl_version/bin\""
  cat > "$tmpout/images.json" << EOF
{
  "kubernetesVersion": "$k8s",
  "platform": "linux/amd64",
  "imageRepository": "registry.k8s.io",
  "tags": {
    "kubernetes": "$k8s",
    "etcd": "$etcd_tag",
    "pause": "$pause_tag",
    "coredns": "$coredns_version",
    "flannel": "$flannel_version",
    "haproxy": "$hptag",
    "busybox": "$bbtag"
  },
  "kubeadmDefaultCoreDNS": "$kubeadm_coredns",
  "iptablesBackend": "nft",
  "images": [
    $rows
  ],
  "cniPlugins": {
    "version": "$cni_plugins_version",
    "dir": "$addons/cni-plugins-$cni_plugins_version/bin",
    "plugins": $(json_strings $cni_plugins)
  },
  "addons": {$addons_json},
  "debian": {"iptables": "$(deb_version iptables)", "conntrack": "$(deb_version conntrack)", "haproxy": "$hpv", "busybox-static": "$bbv"}
}
EOF
  {
    echo "kubernetes=$k8s (binaries: $kbin)"
    for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
      echo "  $c sha256=$(sha256sum < "$kbin/$c" | cut -c1-64)"
    done
    echo "$images_key"
    echo "etcd=$etcd_tag pause=$pause_tag (kubeadm $k8s constants.go); kubeadm's CoreDNS $kubeadm_coredns replaced by $coredns_version"
    echo "build_seconds=$((SECONDS - start))"
    echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } > "$tmpout/BUILD-INFO"
  printf '%s' "$images_key" > "$tmpout/.complete"
  rm -rf "$work"
  rm -rf "$out"
  mv -T "$tmpout" "$out" || die "cannot move $tmpout to $out"
  trap - EXIT
  log "images for $k8s built in $((SECONDS - start)) s into $out ($(du -sh "$out" | cut -f1); hard-linked blobs counted once)"
}

file_is_static() { ! ldd "$1" > /dev/null 2>&1; }

# ---------------------------------------------------------------------------------------------
# --check: push every image to a docker-registry on a free loopback port.
push_check() {
  need_cmd docker-registry docker-registry
  need_cmd curl curl
  local t port="" p i pid
  t="$(mktemp -d "${TMPDIR:-/tmp}/sealant-kube-images-check.XXXXXX")"
  for i in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<> "/dev/tcp/127.0.0.1/$p") 2> /dev/null; then port="$p"; break; fi
  done
  [ -n "$port" ] || die "no free loopback port found"
  cat > "$t/config.yml" << EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $t/registry
http:
  addr: 127.0.0.1:$port
EOF
  docker-registry serve "$t/config.yml" > "$t/registry.log" 2>&1 &
  pid=$!
  trap 'kill '"$pid"' 2> /dev/null; wait '"$pid"' 2> /dev/null; rm -rf "'"$t"'"' EXIT
  for i in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$port/v2/" > /dev/null 2>&1 && break
    kill -0 "$pid" 2> /dev/null || { cat "$t/registry.log" >&2; die "docker-registry exited"; }
    sleep 0.2
  done
  log "check: pushing every image to docker-registry on 127.0.0.1:$port"
  local name layout tag digest ref got s
  while read -r name layout tag digest; do
    ref="127.0.0.1:$port/${name#*/}"
    s=$SECONDS
    got="$(skopeo copy --quiet --dest-tls-verify=false "oci:$out/$layout:$tag" "docker://$ref" 2>&1)" || die "skopeo copy oci:$layout:$tag docker://$ref failed: $got"
    got="$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$ref" 2>&1)" || die "skopeo inspect docker://$ref failed: $got"
    [ "$got" = "$digest" ] || die "$ref: the registry reports $got, the layout has $digest"
    log "  pushed $name as $ref ($digest, $((SECONDS - s)) s)"
  done < <(sed -n 's/.*"name":"\([^"]*\)","layout":"\([^"]*\)","tag":"\([^"]*\)","digest":"\([^"]*\)".*/\1 \2 \3 \4/p' "$out/images.json")
  kill "$pid"
  wait "$pid" 2> /dev/null || true
  rm -rf "$t"
  trap - EXIT
  log "check passed: every image pushed with its digest unchanged; registry stopped"
}

# ---------------------------------------------------------------------------------------------
ensure_images() {
  if [ "$rebuild" = 0 ] && complete_with "$out" "$images_key"; then return 0; fi
  mkdir -p "$cache"
  exec 7> "$cache/.kube-images-$k8s.lock"
  flock 7
  if [ "$rebuild" = 0 ] && complete_with "$out" "$images_key"; then return 0; fi
  local start=$SECONDS kbin
  read_kubeadm_constants
  ensure_addon "pause-$pause_key" "recipe=$addon_recipe go=$addon_go" build_pause
  ensure_addon "etcd-$etcd_version" "recipe=$addon_recipe go=$addon_go" build_etcd
  ensure_addon "coredns-$coredns_version" "recipe=$addon_recipe go=$addon_go" build_coredns
  ensure_addon "flannel-$flannel_version" "recipe=$addon_recipe go=$addon_go stub=$tencent_key" build_flannel
  ensure_addon "cni-plugins-$cni_plugins_version" "recipe=$addon_recipe go=$addon_go" build_cni
  ensure_addon "crictl-$crictl_version" "recipe=$addon_recipe go=$addon_go" build_crictl
  if [ -n "${KUBE_BIN_DIR:-}" ]; then
    kbin="$KUBE_BIN_DIR"
    log "Kubernetes binaries from KUBE_BIN_DIR=$kbin"
  else
    [ -f "$here/kubernetes.sh" ] || die "scripts/kubernetes.sh not found (set KUBE_BIN_DIR to a directory with kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy $k8s)"
    log "Kubernetes binaries: bash scripts/kubernetes.sh $k8s"
    kbin="$(bash "$here/kubernetes.sh" "$k8s")" || die "scripts/kubernetes.sh $k8s failed"
    kbin="$(printf '%s\n' "$kbin" | tail -n 1)"
  fi
  [ ! -x "$kbin/bin/kube-apiserver" ] || kbin="$kbin/bin" # kubernetes.sh prints the release's directory
  [ -d "$kbin" ] || die "the Kubernetes binaries directory '$kbin' does not exist"
  build_images "$kbin"
  exec 7>&-
  log "done in $((SECONDS - start)) s"
}

ensure_images
[ "$check" = 0 ] || push_check
echo "$out"
