#!/usr/bin/env bash
# Builds the real Kubernetes binaries of one release from the Go module proxy and caches them:
# kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy, all
# static (CGO_ENABLED=0), for sandbox clusters, upgrades between versions, and the tests that check
# sealant's kubeadm configuration. Idempotent: when a complete build is cached this does no network
# or Go work at all.
#
#   bash scripts/kubernetes.sh [vX.Y.Z]          build if missing (first build: ~5 min on 2 idle cores,
#                                                ~10 min on busy ones); prints the release's directory
#                                                on stdout, logs on stderr
#                                                (KUBE_DIR="$(bash scripts/kubernetes.sh v1.30.14)")
#   bash scripts/kubernetes.sh --check [vX.Y.Z]  build if missing, then run every binary's
#                                                `--version` (kubeadm/kubectl: `version`) and check it
#                                                reports exactly vX.Y.Z, built static with the toolchain
#                                                named in BUILD-INFO
#   --keep-gocache                               keep the private Go build cache after a successful build
#                                                (default: delete it, it is 2-3 GB per version; a rebuild
#                                                with it warm takes ~30 s instead of minutes)
#
# Version: the argument, else $KUBE_VERSION, else $default_version below.
#
# Cache, under ${SEALANT_CACHE:-~/.cache/sealant}:
#   kubernetes-vX.Y.Z/bin/{kubeadm,kubelet,...}  the binaries (~500 MB per version), with
#   kubernetes-vX.Y.Z/BUILD-INFO                 module commit, toolchain, staging modules, any
#                                                substitutes, seconds, sizes, and
#   kubernetes-vX.Y.Z/.complete                  written last: the directory appears by an atomic rename
#   kubernetes-build/vX.Y.Z/                     the wrapper module (go.mod, go.sum, tools.go, tidy.log)
#   kubernetes-build/gocache-vX.Y.Z/             private GOCACHE, deleted after a successful build
# Module sources (~600 MB the first time) and Go toolchains stay in the machine's GOMODCACHE
# (`go env GOMODCACHE`), shared with every other Go build. One build runs at a time (a flock on
# kubernetes-build/.lock): two at once on 2 cores would only both be slow.
#
# Why a wrapper module: release binaries are not downloadable here (dl.k8s.io and github.com are
# unreachable), and `go install k8s.io/kubernetes/cmd/kubelet@v1.X.Y` is refused because
# k8s.io/kubernetes's go.mod requires its staging modules (k8s.io/api, apimachinery, client-go,
# kubelet, kube-proxy, ...) at v0.0.0 and `replace`s them with ./staging/src/k8s.io/*. So a small
# module of our own requires k8s.io/kubernetes@v1.X.Y and replaces every staging module (the list is
# read from the downloaded go.mod, not hard-coded) with its published v0.X.Y tag, cut from the same
# commit; the release's other replace and godebug lines are copied, so the dependency graph is the
# release's own (checked after `go mod tidy`: a drift is logged and written to BUILD-INFO).
#
# Why substitutes: the module proxy this project reaches does not serve every version of every
# module (it answers 403 "This module version is not available"). Each staging module is probed at
# v0.X.Y first (`go list -m MOD@VER`); a refused one is replaced by the newest served
# v0.X.(Y-1 ... 0), each probed (the proxy's version lists are incomplete). k8s.io/sample-apiserver,
# sample-cli-plugin and sample-controller are refused at v0.31.4 and v0.30.14 (checked 2026-12:
# v1.31.4 gets them at v0.31.3/v0.31.1/v0.31.3, v1.30.14 at v0.30.8/v0.30.3/v0.30.5; v1.29.15 needs
# no substitute). That is only allowed for modules none of the seven binaries compiles (checked
# with `go list -deps` before building), so each binary is exactly the release's code; the
# substitutes only give the module graph the go.mod files it may ask for. A release that cannot
# be built that way fails with one error naming the refused modules (known to work here: v1.31.4,
# v1.30.14, v1.29.15; v1.31.5 lacks cri-client, csi-translation-lib, dynamic-resource-allocation,
# endpointslice, kube-scheduler at v0.31.5).
# The proxy's .info names the release's commit for v1.31.4 and v1.29.15 but not for v1.30.14, whose
# binaries therefore report an empty gitCommit.
#
# Why this toolchain: Kubernetes' own build (hack/lib/golang.sh, version.sh) uses the Go release in
# the module's .go-version (go1.22.9 for v1.31.4, go1.23.10 for v1.30.14, go1.23.6 for v1.29.15),
# which the go command fetches from the module proxy as golang.org/toolchain (GOTOOLCHAIN=goX.Y.Z).
# The machine's newer Go compiles Kubernetes too but changes behaviour: e.g. Go 1.26's net/url rejects
# "https://[10.96.0.1]:1234/", which kubeadm's HTTPProxyCIDR preflight check builds for IPv4 ranges.
# KUBE_GO=1.X.Y picks another release, KUBE_GO=local the machine's Go (so does a toolchain the proxy
# does not serve, with a warning). Flags as upstream: CGO_ENABLED=0, -trimpath, -ldflags "-s -w" and
# the version stamped into k8s.io/component-base/version and k8s.io/client-go/pkg/version (kubeadm
# compares it with kubernetesVersion). All seven are built by one `go build -o DIR/ pkg...`, so the
# packages they share are compiled once.
set -euo pipefail
cache="${SEALANT_CACHE:-$HOME/.cache/sealant}"
default_version="v1.31.4" # newest v1.31.x whose compiled staging modules this project's module proxy all serves
binaries=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)

log() { echo "kubernetes: $*" >&2; }
die() { echo "kubernetes: ERROR: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo pipefail$/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

check=0
keep_gocache=0
version_arg=""
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    --keep-gocache) keep_gocache=1 ;;
    --clean-gocache) keep_gocache=0 ;; # the default, accepted for scripts that want to say so
    -h | --help) usage; exit 0 ;;
    v[0-9]* | [0-9]*)
      [ -z "$version_arg" ] || die "more than one version given: $version_arg $arg"
      version_arg="$arg" ;;
    *) die "unknown argument: $arg (usage: scripts/kubernetes.sh [--check] [--keep-gocache] [vX.Y.Z])" ;;
  esac
done

want="${version_arg:-${KUBE_VERSION:-$default_version}}"
want="v${want#v}"
[[ "$want" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "the version must be a release like v1.31.4, got '$want'"
minor="${BASH_REMATCH[1]}"
patch="${BASH_REMATCH[2]}"
staging_version="v0.$minor.$patch" # k8s.io/kubernetes v1.X.Y <-> its staging modules v0.X.Y
dir="$cache/kubernetes-$want"
build_root="$cache/kubernetes-build"

complete() {
  [ -f "$dir/.complete" ] && [ -f "$dir/BUILD-INFO" ] || return 1
  local b
  for b in "${binaries[@]}"; do [ -x "$dir/bin/$b" ] || return 1; done
}

use_go() {
  if ! command -v go > /dev/null 2>&1; then export PATH="/usr/local/go/bin:$PATH"; fi
  command -v go > /dev/null 2>&1 || die "go not found (looked on PATH and in /usr/local/go/bin)"
  export GOWORK=off GOFLAGS="${GOFLAGS:--buildvcs=false}"
}

# Sets GOTOOLCHAIN to the Go release Kubernetes built $want with (see the header).
use_upstream_go() {
  local src="$1" gv out
  if [ "${KUBE_GO:-}" = local ]; then export GOTOOLCHAIN=local; return; fi
  gv="${KUBE_GO:-$(cat "$src/.go-version" 2> /dev/null || true)}"
  gv="${gv#go}"
  gv="${gv%%[[:space:]]*}"
  if [ -z "$gv" ]; then
    log "k8s.io/kubernetes@$want has no .go-version: building with the machine's $(GOTOOLCHAIN=local go env GOVERSION)"
    export GOTOOLCHAIN=local
    return
  fi
  log "using Go $gv, the toolchain Kubernetes built $want with (first use: downloads it, ~70 MB)"
  if out="$(GOTOOLCHAIN="go$gv" go version 2>&1)"; then
    export GOTOOLCHAIN="go$gv"
  else
    log "WARNING: cannot get the go$gv toolchain ($(printf '%s' "$out" | tail -n 1)); building with the machine's $(GOTOOLCHAIN=local go env GOVERSION), whose behaviour may differ from the released binaries"
    export GOTOOLCHAIN=local
  fi
}

json_field() { # json_field NAME < `go mod download -json` output (tab-indented, one field a line)
  sed -n 's/^\t"'"$1"'": "\(.*\)",\{0,1\}$/\1/p' | sed -n 1p # reads all its input: no SIGPIPE upstream
}

# Names the modules the proxy refused in go's output $1, as a hint for the die message.
refused_in_output() {
  printf '%s\n' "$1" | sed -nE 's#.*[[:space:]:]([a-z0-9.-]+(/[^ @:]+)+@v[^ :]+): (reading|verifying) .*(403 Forbidden|404 Not Found|410 Gone).*#    \1 (\4)#p' | sort -u || true
}

# probe MOD@VER... : prints "MOD@VER served|refused|error:<message>" per argument, in one go command
# (a refusal is the proxy's 403/404/410; anything else, e.g. a network failure, is not a refusal).
probe() {
  GOTOOLCHAIN=local go list -m -e -f '{{.Path}}@{{.Version}} {{if .Error}}{{printf "%q" .Error.Err}}{{else}}served{{end}}' "$@" 2>&1 < /dev/null |
    awk '{ mv = $1; $1 = ""; sub(/^ /, "")
           if ($0 == "served") print mv, "served"
           else if ($0 ~ /(403 Forbidden|404 Not Found|410 Gone|unknown revision|invalid version)/) print mv, "refused"
           else print mv, "error:" $0 }'
}

# Module requirements of a go.mod: "path version" per line (single lines and blocks).
go_mod_requires() {
  awk '
    /^require[ \t]*\(/ { blk = 1; next }
    blk && /^[ \t]*\)/ { blk = 0; next }
    {
      l = $0; sub(/[ \t]*\/\/.*$/, "", l)
      if (!blk) { if (l !~ /^require[ \t]/) next; sub(/^require[ \t]+/, "", l) }
      sub(/^[ \t]+/, "", l); n = split(l, f, /[ \t]+/)
      if (n >= 2) print f[1], f[2]
    }' "$1"
}

build() {
  local v="$want" start
  start=$(date +%s)
  use_go
  local work="$build_root/$v"
  rm -rf "$work" # regenerated from scratch: an old go.mod there would steer the first go commands
  mkdir -p "$work"

  log "checking k8s.io/kubernetes@$v on the module proxy"
  local dl
  dl="$(cd "$work" && GOTOOLCHAIN=local go mod download -json "k8s.io/kubernetes@$v" 2>&1)" || true
  if grep -q '"Error"' <<< "$dl"; then
    die "the module proxy does not serve k8s.io/kubernetes@$v: $(printf '%s\n' "$dl" | json_field Error | sed 's/\\n\\t*/ /g') (known to work here: $default_version, v1.30.14, v1.29.15)"
  fi
  local mod_file info_file commit
  mod_file="$(printf '%s\n' "$dl" | json_field GoMod)"
  info_file="$(printf '%s\n' "$dl" | json_field Info)"
  [ -f "$mod_file" ] || die "go mod download gave no go.mod for k8s.io/kubernetes@$v: $dl"
  # The proxy's .info names the tag's commit only for some versions (v1.31.4, v1.29.15: yes; v1.30.14: no).
  commit="$(sed -n 's/.*"Hash":"\([0-9a-f]\{40\}\)".*/\1/p;T;q' "$info_file" 2> /dev/null || true)"
  [ -n "$commit" ] || log "the module proxy does not name k8s.io/kubernetes@$v's commit: the binaries report an empty gitCommit"

  # The staging modules: required at v0.0.0 and/or replaced by ./staging/src/... in k8s.io/kubernetes's
  # go.mod. Any other (non-local) replace line, and any godebug line, is kept as is.
  local staging_mods other_replaces go_line godebug_lines
  staging_mods="$( (go_mod_requires "$mod_file" | awk '$2 == "v0.0.0" { print $1 }'
    awk '
      /^replace[ \t]*\(/ { blk = 1; next }
      blk && /^[ \t]*\)/ { blk = 0; next }
      {
        l = $0; sub(/[ \t]*\/\/.*$/, "", l)
        if (!blk) { if (l !~ /^replace[ \t]/) next; sub(/^replace[ \t]+/, "", l) }
        sub(/^[ \t]+/, "", l); split(l, f, /[ \t]+/)
        if (l ~ /=>[ \t]*\.\/staging\//) print f[1]
      }' "$mod_file") | LC_ALL=C sort -u)"
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
      if (rhs ~ /^(\.|\/)/) next   # local replacements (./staging/src/...) are pinned below
      print "replace " l
    }' "$mod_file")"
  godebug_lines="$(awk '
    /^godebug[ \t]*\(/ { blk = 1; print; next }
    blk { print; if ($0 ~ /^[ \t]*\)/) blk = 0; next }
    /^godebug[ \t]/ { print }' "$mod_file")"
  go_line="$(awk '/^go [0-9]/ { print; exit }' "$mod_file")"

  # Probe every staging module at v0.X.Y in one go command; find a substitute for each refused one.
  local n_staging probes m status substitutes="" unbuildable="" p candidates found
  n_staging="$(printf '%s\n' "$staging_mods" | wc -l)"
  log "probing the $n_staging staging modules at $staging_version on the module proxy"
  # shellcheck disable=SC2046 # one argument per module
  probes="$(cd "$work" && probe $(printf '%s\n' "$staging_mods" | sed "s|\$|@$staging_version|"))"
  [ -n "$probes" ] || die "go list -m printed nothing for the staging modules"
  while read -r m status; do
    case "$status" in
      served) ;;
      refused)
        m="${m%@*}"
        candidates=()
        for ((p = patch - 1; p >= 0; p--)); do candidates+=("$m@v0.$minor.$p"); done
        found=""
        if [ "${#candidates[@]}" -gt 0 ]; then
          found="$(cd "$work" && probe "${candidates[@]}" | awk '$2 == "served" && !found { print $1; found = 1 }')"
        fi
        if [ -n "$found" ]; then
          substitutes+="$m ${found#*@}"$'\n'
          log "the module proxy refuses $m@$staging_version: using ${found#*@}, the newest served v0.$minor.x below it (allowed only if no binary compiles it)"
        else
          unbuildable+="    $m@$staging_version (no v0.$minor.x below it is served either)"$'\n'
        fi
        ;;
      *) die "cannot probe $m on the module proxy: ${status#error:}" ;;
    esac
  done <<< "$probes"
  [ -z "$unbuildable" ] || die "the module proxy refuses staging modules of Kubernetes $v:
${unbuildable%$'\n'}
  use a version whose modules are all served (known to work here: $default_version, v1.30.14, v1.29.15)"
  substitutes="${substitutes%$'\n'}"

  use_upstream_go "$(printf '%s\n' "$dl" | json_field Dir)"

  local pkgs=() b
  for b in "${binaries[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  {
    echo "// Generated by sealant scripts/kubernetes.sh: builds the Kubernetes $v binaries."
    echo "module sealant.local/kubernetes-build"
    echo
    echo "$go_line"
    [ -z "$godebug_lines" ] || { echo; printf '%s\n' "$godebug_lines"; }
    echo
    echo "require k8s.io/kubernetes $v"
    echo
    echo "replace ("
    while read -r m; do
      p="$(printf '%s\n' "$substitutes" | awk -v m="$m" '$1 == m { print $2 }')"
      printf '\t%s => %s %s\n' "$m" "$m" "${p:-$staging_version}"
    done <<< "$staging_mods"
    echo ")"
    [ -z "$other_replaces" ] || { echo; printf '%s\n' "$other_replaces"; }
  } > "$work/go.mod"
  {
    printf '%s\n' "//go:build tools" "" "// The packages scripts/kubernetes.sh builds, so that go mod tidy resolves their modules." "package tools" ""
    for b in "${pkgs[@]}"; do echo "import _ \"$b\""; done
  } > "$work/tools.go"

  # A private build cache, per version: removed after a successful build (2-3 GB of objects that
  # are useless once the binaries are linked); a killed build's cache speeds up the next attempt.
  export GOCACHE="$build_root/gocache-$v"
  export CGO_ENABLED=0
  local tidy_start tidy_seconds
  tidy_start=$(date +%s)
  log "resolving modules (go mod tidy; downloads ~600 MB into $(go env GOMODCACHE) the first time)"
  if ! (cd "$work" && go mod tidy) > "$work/tidy.log" 2>&1; then
    cat "$work/tidy.log" >&2
    local r
    r="$(refused_in_output "$(cat "$work/tidy.log")")"
    [ -z "$r" ] || die "the module proxy refuses modules Kubernetes $v needs:
$r
  use a version whose modules are all served (known to work here: $default_version, v1.30.14, v1.29.15)"
    die "go mod tidy failed in $work (see the error above)"
  fi
  tidy_seconds=$(($(date +%s) - tidy_start))

  # A substitute must not end up in a binary: it would not be the release's code.
  if [ -n "$substitutes" ]; then
    local compiled in_binaries=""
    compiled="$(cd "$work" && go list -deps -f '{{with .Module}}{{.Path}}{{end}}' "${pkgs[@]}" | LC_ALL=C sort -u)" \
      || die "go list -deps of the binaries failed in $work (see the error above)"
    while read -r m p; do
      if grep -qxF "$m" <<< "$compiled"; then in_binaries+="    $m@$staging_version (served: $p)"$'\n'; fi
    done <<< "$substitutes"
    [ -z "$in_binaries" ] || die "the module proxy refuses staging modules the Kubernetes $v binaries compile:
${in_binaries%$'\n'}
  use a version whose modules are all served (known to work here: $default_version, v1.30.14, v1.29.15)"
    log "no binary compiles the substituted modules (go list -deps)"
  fi

  # The graph should be the release's own: every module k8s.io/kubernetes requires at the version it
  # names (a substitute's go.mod could in principle raise one).
  local drift
  drift="$(LC_ALL=C join \
    <(go_mod_requires "$mod_file" | awk '$2 != "v0.0.0"' | LC_ALL=C sort -k1,1) \
    <(cd "$work" && go list -m -f '{{if .Version}}{{.Path}} {{.Version}}{{end}}' all | LC_ALL=C sort -k1,1) |
    awk '$2 != $3 { printf "%s %s -> %s; ", $1, $2, $3 }')"
  if [ -n "$drift" ]; then
    log "WARNING: the resolved module graph differs from k8s.io/kubernetes@$v's go.mod: ${drift%; }"
  fi

  local out="$cache/.kubernetes-$v.tmp.$$"
  rm -rf "$cache/.kubernetes-$v.tmp."* # leftovers of killed builds (we hold the lock)
  mkdir -p "$out/bin"
  trap 'rm -rf "'"$out"'"' EXIT
  local build_date ldflags pkg_path build_start build_seconds
  # The release's own time (the module proxy's record of its tag), not the build's: the same
  # release gives the same binaries, so base images built from them get the same digests.
  build_date="$(sed -n 's/.*"Time":"\([0-9T:-]*\)[^"]*Z".*/\1Z/p' "$info_file" 2> /dev/null | head -n 1)"
  [ -n "$build_date" ] || build_date="1970-01-01T00:00:00Z"
  ldflags="-s -w"
  for pkg_path in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg_path.gitVersion=$v -X $pkg_path.gitMajor=1 -X $pkg_path.gitMinor=$minor -X $pkg_path.gitTreeState=clean -X $pkg_path.buildDate=$build_date"
    [ -z "$commit" ] || ldflags+=" -X $pkg_path.gitCommit=$commit"
  done
  build_start=$(date +%s)
  log "building ${binaries[*]} $v with $(go env GOVERSION) (one go build; ~4-7 min on 2 cores)"
  (cd "$work" && go build -trimpath -ldflags "$ldflags" -o "$out/bin/" "${pkgs[@]}") \
    || die "go build of Kubernetes $v failed (see the error above)"
  build_seconds=$(($(date +%s) - build_start))
  verify_versions "$out/bin" || die "the built binaries do not report $v (see above)"

  local total_seconds=$(($(date +%s) - start))
  {
    echo "kubernetes=$v"
    echo "module=k8s.io/kubernetes@$v${commit:+ (commit $commit)}"
    echo "go=$(go env GOVERSION)"
    echo "binaries=${binaries[*]}"
    echo "flags=CGO_ENABLED=0 -trimpath -ldflags '-s -w -X ...version=$v'"
    echo "staging=$staging_version ($(printf '%s\n' "$staging_mods" | tr '\n' ' ' | sed 's/ $//'))"
    if [ -n "$substitutes" ]; then
      echo "substitutes=$(printf '%s\n' "$substitutes" | awk -v want="$staging_version" '{ printf "%s%s@%s (refused at %s)", (NR > 1 ? ", " : ""), $1, $2, want }') - compiled into no binary"
    else
      echo "substitutes=none"
    fi
    echo "module_graph_drift=${drift:-none}"
    echo "tidy_seconds=$tidy_seconds"
    echo "build_seconds=$build_seconds"
    echo "total_seconds=$total_seconds"
    echo "build_date=$build_date"
    echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "size=$(du -sh "$out/bin" | cut -f1)"
    for b in "${binaries[@]}"; do echo "size.$b=$(du -h "$out/bin/$b" | cut -f1)"; done
  } > "$out/BUILD-INFO"
  touch "$out/.complete"
  rm -rf "$dir" # an incomplete leftover (no .complete)
  mv -T "$out" "$dir" || die "cannot move $out to $dir"
  trap - EXIT
  if [ "$keep_gocache" = 1 ]; then
    log "keeping the Go build cache $GOCACHE ($(du -sh "$GOCACHE" | cut -f1)) as asked"
  else
    log "deleting the Go build cache $GOCACHE ($(du -sh "$GOCACHE" | cut -f1))"
    rm -rf "$GOCACHE"
  fi
  log "built Kubernetes $v in $total_seconds s (tidy $tidy_seconds s, go build $build_seconds s) into $dir/bin ($(du -sh "$dir/bin" | cut -f1))"
}

# The version a binary reports: kubeadm and kubectl have a `version` command, the rest `--version`
# ("Kubernetes v1.X.Y").
reported_version() { # reported_version BIN_DIR NAME
  case "$2" in
    kubeadm) "$1/kubeadm" version -o short ;;
    kubectl) "$1/kubectl" version --client -o json | sed -n 's/^ *"gitVersion": "\(.*\)",\{0,1\}$/\1/p' | sed -n 1p ;;
    *) "$1/$2" --version | sed -n 's/^Kubernetes //p' ;;
  esac
}

verify_versions() { # verify_versions BIN_DIR: every binary reports exactly $want
  local bin_dir="$1" b got bad=0
  for b in "${binaries[@]}"; do
    got="$(reported_version "$bin_dir" "$b" 2>&1)" || got="(failed: $got)"
    if [ "$got" = "$want" ]; then
      log "  $b: $got"
    else
      log "  $b: reports '$got', expected '$want'"
      bad=1
    fi
  done
  return "$bad"
}

ensure() {
  if complete; then return; fi
  mkdir -p "$build_root"
  exec 9> "$build_root/.lock"
  if ! flock -n 9; then
    log "waiting for another build to finish (lock $build_root/.lock)"
    flock 9
  fi
  if complete; then return; fi # another run built it while we waited
  build >&2
}

ensure
echo "$dir"

[ "$check" = 1 ] || exit 0

# ---- check: the exact version, and a static (CGO_ENABLED=0) build by the toolchain in BUILD-INFO ----
s=$(date +%s)
log "check: every binary reports $want"
verify_versions "$dir/bin" || die "check failed: not every binary in $dir/bin reports $want"
use_go
expected_go="$(sed -n 's/^go=//p' "$dir/BUILD-INFO")"
for b in "${binaries[@]}"; do
  info="$(GOTOOLCHAIN=local go version -m "$dir/bin/$b")" || die "check failed: go version -m $dir/bin/$b: $info"
  built_with="${info%%$'\n'*}"
  built_with="${built_with##*: }"
  [ "$built_with" = "$expected_go" ] || die "check failed: $b was built with '$built_with', BUILD-INFO says '$expected_go'"
  grep -qxF "$(printf '\tbuild\tCGO_ENABLED=0')" <<< "$info" || die "check failed: $b was not built with CGO_ENABLED=0"
done
log "check passed: ${binaries[*]} report $want, static, built with $expected_go ($(($(date +%s) - s)) s)"
