#!/usr/bin/env bash
# Builds the real Kubernetes provider plugin for Pulumi (`pulumi-resource-kubernetes`) from the Go
# module proxy and caches it under $SEALANT_CACHE/pulumi-kubernetes-vX.Y.Z/bin (default
# ~/.cache/sealant). Idempotent: with a complete build cached this does no network or Go work.
#
#   bash scripts/pulumi-kubernetes.sh    build if missing (first build: minutes on 2 cores),
#                                        then print the bin directory holding the plugin
#
# Version: the plugin version the installed @pulumi/kubernetes npm package asks for (its
# package.json "pulumi": {"version"}); the engine runs the program's resources with a plugin of
# exactly that version. Override: PULUMI_KUBERNETES_VERSION=4.X.Y.
#
# The provider lives in github.com/pulumi/pulumi-kubernetes/provider/v4, a module without tags of
# its own (the repository's tags are v4.X.Y, not provider/v4.X.Y), so it is fetched at the
# pseudo-version of a release tag's commit. The module proxy this project reaches serves only some
# of them: $served below lists the ones known to be served here. The module's go.mod replaces its
# Go SDK with ../sdk, a path outside the module zip: the replacement is dropped and the SDK version
# it requires is used instead. The plugin embeds its schema, generated at build time by the
# module's own generate.go (the generated file is not in the zip), so the build runs on a copy.
#
# Tests put the printed bin directory first on PATH: the engine then uses this plugin instead of
# downloading one (an "ambient" plugin), and `pulumi plugin install resource kubernetes X.Y.Z
# --file <bin>/pulumi-resource-kubernetes` installs it into a PULUMI_HOME the same way.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/env.sh
source "$root/scripts/env.sh"
cache="${SEALANT_CACHE:-$HOME/.cache/sealant}"
module="github.com/pulumi/pulumi-kubernetes/provider/v4"
main_pkg="cmd/pulumi-resource-kubernetes"

# Release -> pseudo-version of its tag's commit, for the versions this module proxy serves (checked
# 2026-12: the tags v4.26.0 to v4.32.0 are refused with 403 "This module version is not available").
declare -A served=(
  [4.25.0]="v4.0.0-20260115033456-f47bc2d6f199"
)

log() { echo "pulumi-kubernetes: $*" >&2; }
die() { echo "pulumi-kubernetes: ERROR: $*" >&2; exit 1; }

case "${1:-}" in
  "") ;;
  -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument: $1 (usage: scripts/pulumi-kubernetes.sh)" ;;
esac

sdk_json="$root/node_modules/@pulumi/kubernetes/package.json"
if [ -n "${PULUMI_KUBERNETES_VERSION:-}" ]; then
  version="${PULUMI_KUBERNETES_VERSION#v}"
else
  [ -f "$sdk_json" ] || die "$sdk_json not found: run scripts/setup.sh (npm ci) first"
  version="$(node -p "require('$sdk_json').pulumi.version")"
fi
dir="$cache/pulumi-kubernetes-v$version"
complete() { [ -f "$dir/.complete" ] && [ -x "$dir/bin/pulumi-resource-kubernetes" ]; }

if complete; then
  echo "$dir/bin"
  exit 0
fi
pseudo="${served[$version]:-}"
[ -n "$pseudo" ] || die "no pseudo-version of $module is known for release $version; the module proxy here serves: ${!served[*]} (set PULUMI_KUBERNETES_VERSION or install a matching @pulumi/kubernetes)"

mkdir -p "$cache/pulumi-kubernetes-build"
exec 9> "$cache/pulumi-kubernetes-build/.lock"
flock 9
if complete; then # built by another run while this one waited for the lock
  echo "$dir/bin"
  exit 0
fi

if ! command -v go > /dev/null 2>&1; then export PATH="/usr/local/go/bin:$PATH"; fi
command -v go > /dev/null 2>&1 || die "go not found (looked on PATH and in /usr/local/go/bin)"
export GOWORK=off GOFLAGS="-buildvcs=false -mod=mod"
start=$(date +%s)
work="$cache/pulumi-kubernetes-build/v$version"
rm -rf "$work"
mkdir -p "$work"
# A private build cache, removed afterwards: its objects are useless once the plugin is linked.
export GOCACHE="$work/gocache"
out="$cache/.pulumi-kubernetes-v$version.tmp.$$"
rm -rf "$cache/.pulumi-kubernetes-v$version.tmp."* # leftovers of killed builds (we hold the lock)
trap 'rm -rf "$out" "$work"' EXIT

log "fetching $module@$pseudo (release $version) from the module proxy"
dl="$(cd "$work" && go mod download -json "$module@$pseudo" 2>&1)" || true
src_dir="$(printf '%s' "$dl" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);console.log(j.Error?"":j.Dir)}catch{console.log("")}})')"
[ -n "$src_dir" ] && [ -d "$src_dir" ] || die "the module proxy did not serve $module@$pseudo: $dl"

# The module cache is read-only; generate.go writes next to its schema, so build in a copy.
cp -r "$src_dir" "$work/src"
chmod -R u+w "$work/src"
sdk_mod="github.com/pulumi/pulumi-kubernetes/sdk/v4"
(cd "$work/src" && go mod edit -dropreplace="$sdk_mod")

log "generating the embedded schema (the module's generate.go; downloads its modules the first time)"
(cd "$work/src/$main_pkg" && VERSION="$version" go run generate.go) || die "go run generate.go failed (see the error above)"

mkdir -p "$out/bin"
log "building pulumi-resource-kubernetes $version (go build; several minutes on 2 cores)"
(cd "$work/src" && CGO_ENABLED=0 go build -trimpath -tags osusergo \
  -ldflags "-X $module/pkg/version.Version=$version" -o "$out/bin/pulumi-resource-kubernetes" "./$main_pkg") \
  || die "go build of $module/$main_pkg failed (see the error above)"

# A provider plugin announces the port of its gRPC server on stdout and then serves until killed:
# a port number here shows the binary starts (not only that it linked).
"$out/bin/pulumi-resource-kubernetes" > "$work/plugin-port" 2> "$work/plugin-start.log" &
plugin_pid=$!
port=""
for _ in $(seq 1 100); do
  port="$(head -n 1 "$work/plugin-port")"
  [ -n "$port" ] || ! kill -0 "$plugin_pid" 2> /dev/null && break
  sleep 0.2
done
kill "$plugin_pid" 2> /dev/null || true
wait "$plugin_pid" 2> /dev/null || true
[[ "$port" =~ ^[0-9]+$ ]] || die "the built plugin did not announce a port (got '$port'): $(head -c 2000 "$work/plugin-start.log")"

end=$(date +%s)
{
  echo "plugin=pulumi-resource-kubernetes $version"
  echo "module=$module@$pseudo"
  echo "npm_sdk=@pulumi/kubernetes@$(node -p "require('$sdk_json').version" 2> /dev/null || echo none)"
  echo "go=$(go env GOVERSION)"
  echo "build_seconds=$((end - start))"
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$out/BUILD-INFO"
touch "$out/.complete"
rm -rf "$dir" # an incomplete leftover
mv -T "$out" "$dir" || die "cannot move $out to $dir"
log "built pulumi-resource-kubernetes $version in $((end - start)) s into $dir/bin ($(du -sh "$dir" | cut -f1))"
echo "$dir/bin"
