#!/usr/bin/env bash
# Builds the real Pulumi CLI (`pulumi`) from the Go module proxy and caches it, with a nodejs
# language host, under $SEALANT_CACHE/pulumi-vX.Y.Z/bin (default ~/.cache/sealant). Idempotent:
# when a complete build is cached this does no network or Go work at all.
#
#   bash scripts/pulumi-cli.sh           build if missing (first build: several minutes on 2 cores)
#   bash scripts/pulumi-cli.sh --check   build if missing, then a smoke test: a real `pulumi up` and
#                                        `destroy` of one dynamic resource on a file:// backend
#
# Version: the one of the installed @pulumi/pulumi npm package (override: PULUMI_CLI_VERSION=3.X.Y).
# The module proxy this project reaches does not serve every version of
# github.com/pulumi/pulumi/pkg/v3 (it answers 403 "not available"); then the newest version known
# to be served here, $fallback below, is built instead (the engine protocol is backward compatible:
# a newer nodejs SDK runs on an older engine).
#
# The nodejs language host is Pulumi's Go `pulumi-language-nodejs`. Since v3.69 it is its own
# untagged module (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3), tried at the
# pseudo-version of the pkg tag's commit; the proxy here refuses every version of it (403), so the
# newest language host the proxy does serve is built instead: the one inside
# github.com/pulumi/pulumi/sdk/v3 up to $langhost_fallback (same gRPC LanguageRuntime protocol; it runs the
# program with the installed @pulumi/pulumi's own `cmd/run`, so the SDK version is the npm one).
#
# After this, `source scripts/env.sh` puts $SEALANT_CACHE/pulumi-current/bin (pulumi, the language
# host and pulumi-resource-pulumi-nodejs, the dynamic-provider launcher) and, after it,
# node_modules/@pulumi/pulumi (the SDK's own copy of that launcher) on PATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/env.sh
source "$root/scripts/env.sh"
cache="${SEALANT_CACHE:-$HOME/.cache/sealant}"
fallback="v3.259.0"          # newest pkg/v3 whose module zip this project's module proxy serves (checked 2026-11)
langhost_fallback="v3.68.0"  # newest sdk/v3 that still contains nodejs/cmd/pulumi-language-nodejs

log() { echo "pulumi-cli: $*" >&2; }
die() { echo "pulumi-cli: ERROR: $*" >&2; exit 1; }

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument: $1 (usage: scripts/pulumi-cli.sh [--check])" ;;
esac

sdk_json="$root/node_modules/@pulumi/pulumi/package.json"
[ -f "$sdk_json" ] || die "$sdk_json not found: run scripts/setup.sh (npm ci) first"
sdk_version="$(node -p "require('$sdk_json').version")"
want="v${PULUMI_CLI_VERSION:-$sdk_version}"
want="v${want#v}"

complete() { [ -f "$cache/pulumi-$1/.complete" ] && [ -x "$cache/pulumi-$1/bin/pulumi" ] && [ -x "$cache/pulumi-$1/bin/pulumi-language-nodejs" ] \
  && grep -q '^language_host=go ' "$cache/pulumi-$1/BUILD-INFO" \
  && [ -x "$cache/pulumi-$1/bin/pulumi-resource-pulumi-nodejs" ]; }

point_current() { # atomically repoint $cache/pulumi-current at pulumi-$1
  ln -sfn "pulumi-$1" "$cache/.pulumi-current.$$"
  mv -T "$cache/.pulumi-current.$$" "$cache/pulumi-current"
}

# Writes the dynamic-provider plugin launcher into directory $1. Pulumi's release archives ship this
# script next to `pulumi`; the engine prefers it there and warns ("using ... from $PATH") when it is
# found only on PATH (e.g. in node_modules/@pulumi/pulumi). Like the SDK's copy, it runs the
# @pulumi/pulumi that resolves from the plugin's working directory (the Pulumi project).
write_dynamic_provider() {
  cat > "$1/pulumi-resource-pulumi-nodejs" << 'EOF'
#!/bin/sh
script=$(node -e "console.log(require.resolve('@pulumi/pulumi/cmd/dynamic-provider'))") || exit 1
exec node "$script" "$@"
EOF
  chmod 755 "$1/pulumi-resource-pulumi-nodejs"
}

use_go() {
  if ! command -v go > /dev/null 2>&1; then export PATH="/usr/local/go/bin:$PATH"; fi
  command -v go > /dev/null 2>&1 || die "go not found (looked on PATH and in /usr/local/go/bin)"
  export GOWORK=off GOFLAGS="${GOFLAGS:--buildvcs=false}"
}

# A cached build from before the Go language host was built here (it had a stand-in written in
# Node): only the language host is built and swapped in, not the whole CLI again.
replace_langhost() {
  local dir="$cache/pulumi-$1"
  [ -f "$dir/.complete" ] && [ -x "$dir/bin/pulumi" ] || return 1
  use_go
  rm -rf "$dir/bin.langhost"
  mkdir -p "$dir/bin.langhost"
  build_sdk_langhost "$dir/bin.langhost"
  mv -f "$dir/bin.langhost/pulumi-language-nodejs" "$dir/bin/pulumi-language-nodejs"
  rm -rf "$dir/bin.langhost" "$dir/bin/pulumi-language-nodejs.js"
  sed -i "s|^language_host=.*|language_host=go github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs@$langhost_fallback|" "$dir/BUILD-INFO"
}

# Builds Pulumi's Go nodejs language host from github.com/pulumi/pulumi/sdk/v3@$langhost_fallback (the
# newest sdk/v3 that contains it; later versions moved it into a module this proxy refuses) into
# directory $1. Its own wrapper module: the CLI's needs sdk/v3 at the CLI's version.
build_sdk_langhost() {
  local bin="$1" work="$cache/pulumi-build/langhost-$langhost_fallback"
  local pkg="github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
  mkdir -p "$work"
  printf '%s\n' "// Generated by sealant scripts/pulumi-cli.sh: builds pulumi-language-nodejs $langhost_fallback." \
    "module sealant.local/pulumi-langhost" "" "go 1.20" "" "require github.com/pulumi/pulumi/sdk/v3 $langhost_fallback" > "$work/go.mod"
  printf '%s\n' "//go:build tools" "" "package tools" "" "import _ \"$pkg\"" > "$work/tools.go"
  rm -f "$work/go.sum"
  log "building pulumi-language-nodejs from $pkg@$langhost_fallback (~30 s)"
  (cd "$work" && go mod tidy && CGO_ENABLED=0 go build -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$langhost_fallback" -o "$bin/pulumi-language-nodejs" "$pkg") \
    || die "go build of $pkg@$langhost_fallback failed (see the error above)"
}

# Builds pulumi at version $1 into $cache/pulumi-$1. Returns 3 when the proxy does not serve pkg/v3@$1.
build() {
  local v="$1" start end
  start=$(date +%s)
  use_go
  local work="$cache/pulumi-build/$v"
  mkdir -p "$work"
  local modcache
  modcache="$(go env GOMODCACHE)"

  log "checking github.com/pulumi/pulumi/pkg/v3@$v on the module proxy"
  local dl
  dl="$(cd "$work" && go mod download -json "github.com/pulumi/pulumi/pkg/v3@$v" 2>&1)" || true
  if printf '%s' "$dl" | grep -q '"Error"'; then
    log "pkg/v3@$v is not available: $(printf '%s' "$dl" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).Error)}catch{console.log(s)}})')"
    rmdir "$work" 2> /dev/null || true
    return 3
  fi
  local info_file mod_file
  info_file="$(printf '%s' "$dl" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).Info))')"
  mod_file="$(printf '%s' "$dl" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).GoMod))')"
  [ -f "$mod_file" ] || die "go mod download gave no go.mod for pkg/v3@$v: $dl"
  # pseudo-version of the pkg tag's commit, for the (untagged) language host module
  local pseudo
  pseudo="$(node -e '
    const i = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    if (!i.Origin || !i.Origin.Hash) process.exit(0);
    const t = new Date(i.Time).toISOString().replace(/[-:T]/g, "").slice(0, 14);
    console.log(`v3.0.0-${t}-${i.Origin.Hash.slice(0, 12)}`);' "$info_file")"

  local replaces
  replaces="$(awk '
    /^replace[ \t]*\(/ { blk = 1; next }
    blk && /^[ \t]*\)/ { blk = 0; next }
    {
      l = $0
      if (!blk) { if (l !~ /^replace[ \t]/) next; sub(/^replace[ \t]+/, "", l) }
      sub(/^[ \t]+/, "", l); if (l == "" || l ~ /^\/\//) next
      n = split(l, parts, "=>"); if (n < 2) next
      rhs = parts[2]; sub(/^[ \t]+/, "", rhs)
      if (rhs ~ /^(\.|\/)/) next   # local replacements (../sdk) are dropped
      print "replace " l
    }' "$mod_file")"
  local go_line
  go_line="$(awk '/^go [0-9]/ { print; exit }' "$mod_file")"

  local langhost_mod="github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3"
  local langhost_go=0
  if [ -n "$pseudo" ]; then
    log "checking $langhost_mod@$pseudo"
    local ldl
    ldl="$(cd "$work" && go mod download -json "$langhost_mod@$pseudo" 2>&1)" || true
    if printf '%s' "$ldl" | grep -q '"Error"'; then
      log "the Go language host is not available ($(printf '%s' "$ldl" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).Error.split("\n")[0])}catch{console.log(s)}})')); building the one in github.com/pulumi/pulumi/sdk/v3@$langhost_fallback instead"
    else
      langhost_go=1
    fi
  fi

  {
    echo "// Generated by sealant scripts/pulumi-cli.sh: builds the Pulumi CLI $v."
    echo "module sealant.local/pulumi-build"
    echo
    echo "$go_line"
    echo
    echo "require ("
    echo "	github.com/pulumi/pulumi/pkg/v3 $v"
    echo "	github.com/pulumi/pulumi/sdk/v3 $v"
    [ "$langhost_go" = 1 ] && echo "	$langhost_mod $pseudo"
    echo ")"
    echo
    printf '%s\n' "$replaces"
  } > "$work/go.mod"
  rm -f "$work/go.sum"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    echo "	_ \"github.com/pulumi/pulumi/pkg/v3/cmd/pulumi\""
    [ "$langhost_go" = 1 ] && echo "	_ \"$langhost_mod\""
    echo ")"
  } > "$work/tools.go"

  log "resolving modules (go mod tidy; downloads ~1 GB into $modcache the first time)"
  (cd "$work" && go mod tidy) || die "go mod tidy failed in $work (see the error above)"

  local out="$cache/.pulumi-$v.tmp.$$"
  rm -rf "$cache/.pulumi-$v.tmp."* # leftovers of killed builds (we hold the lock)
  mkdir -p "$out/bin"
  trap 'rm -rf "'"$out"'"' EXIT
  local ldflags="-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$v"
  # A private build cache, removed afterwards: the ~1.6 GB of objects are useless once linked.
  export GOCACHE="$cache/pulumi-build/gocache"
  log "building pulumi $v (go build; ~4 min on 2 cores)"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -tags osusergo,grpcnotrace -ldflags "$ldflags" \
    -o "$out/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) || die "go build of pulumi $v failed (see the error above)"
  if [ "$langhost_go" = 1 ]; then
    log "building pulumi-language-nodejs ($langhost_mod@$pseudo)"
    (cd "$work" && CGO_ENABLED=0 go build -trimpath -tags osusergo,grpcnotrace -ldflags "$ldflags" \
      -o "$out/bin/pulumi-language-nodejs" "$langhost_mod") || die "go build of pulumi-language-nodejs failed (see the error above)"
  else
    build_sdk_langhost "$out/bin"
  fi
  write_dynamic_provider "$out/bin"
  local got
  got="$("$out/bin/pulumi" version 2>&1)" || die "the built pulumi does not run: $got"
  [ "$got" = "$v" ] || die "the built pulumi reports version '$got', expected '$v'"
  end=$(date +%s)
  {
    echo "pulumi=$v"
    echo "language_host=go $([ "$langhost_go" = 1 ] && echo "$langhost_mod@$pseudo" || echo "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs@$langhost_fallback")"
    echo "npm_sdk=@pulumi/pulumi@$sdk_version"
    echo "go=$(go env GOVERSION)"
    echo "build_seconds=$((end - start))"
    echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } > "$out/BUILD-INFO"
  touch "$out/.complete"
  rm -rf "$cache/pulumi-$v" # an incomplete leftover (no .complete) from an older layout
  mv -T "$out" "$cache/pulumi-$v" || die "cannot move $out to $cache/pulumi-$v"
  trap - EXIT
  rm -rf "$GOCACHE"
  log "built pulumi $v in $((end - start)) s into $cache/pulumi-$v/bin"
}

ensure() {
  local v
  for v in "$want" "$fallback"; do
    if complete "$v"; then
      [ "$v" = "$want" ] || log "using cached pulumi $v (no build of $want, the npm SDK's version: the module proxy did not serve it)"
      point_current "$v"
      echo "$v"
      return
    fi
  done
  mkdir -p "$cache/pulumi-build"
  exec 9> "$cache/pulumi-build/.lock"
  flock 9
  for v in "$want" "$fallback"; do # another run may have built it while we waited
    if complete "$v"; then point_current "$v"; echo "$v"; return; fi
  done
  for v in "$want" "$fallback"; do
    if replace_langhost "$v" >&2; then point_current "$v"; echo "$v"; return; fi
  done
  local rc=0
  build "$want" >&2 || rc=$? # stdout carries only the version to the caller
  if [ "$rc" = 3 ] && [ "$want" != "$fallback" ]; then
    log "falling back to pulumi $fallback (newest pkg/v3 version known to be served here)"
    rc=0
    build "$fallback" >&2 || rc=$?
    [ "$rc" = 0 ] || die "cannot build pulumi $fallback either"
    v="$fallback"
  elif [ "$rc" != 0 ]; then
    die "cannot build pulumi $want"
  else
    v="$want"
  fi
  point_current "$v"
  echo "$v"
}

version="$(ensure)"
bin="$cache/pulumi-$version/bin"
export PATH="$bin:$root/node_modules/@pulumi/pulumi:$PATH"
got="$(pulumi version)"
[ "$got" = "$version" ] || die "pulumi version printed '$got', expected '$version'"
log "pulumi $version ready in $bin (language host: $(sed -n 's/^language_host=//p' "$cache/pulumi-$version/BUILD-INFO"))"

[ "$check" = 1 ] || exit 0

# ---- smoke test: one dynamic resource through the real engine, on a file:// backend ----
tmp="$(mktemp -d "${TMPDIR:-/tmp}/sealant-pulumi-check.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
proj="$tmp/proj"
mkdir -p "$proj" "$tmp/state" "$tmp/home"
ln -s "$root/node_modules" "$proj/node_modules"
cat > "$proj/Pulumi.yaml" << 'EOF'
name: sealant-smoke
runtime:
  name: nodejs
  options:
    typescript: false
main: index.js
EOF
echo '{ "name": "sealant-smoke", "version": "0.0.0", "main": "index.js" }' > "$proj/package.json"
cat > "$proj/index.js" << 'EOF'
"use strict";
const pulumi = require("@pulumi/pulumi");
const provider = {
  async create(inputs) {
    return { id: `smoke-${inputs.name}`, outs: { name: inputs.name, greeting: `hello ${inputs.name}` } };
  },
};
class Smoke extends pulumi.dynamic.Resource {
  constructor(name, args, opts) {
    super(provider, name, { greeting: undefined, ...args }, opts);
  }
}
const r = new Smoke("smoke", { name: "sealant" });
exports.greeting = r.greeting;
exports.resourceId = r.id;
EOF
export PULUMI_BACKEND_URL="file://$tmp/state" PULUMI_CONFIG_PASSPHRASE=test PULUMI_SKIP_UPDATE_CHECK=true \
  PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true PULUMI_HOME="$tmp/home"
step() {
  local out
  log "check: pulumi $*"
  if ! out="$(cd "$proj" && pulumi "$@" --non-interactive 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "smoke test step failed: pulumi $*"
  fi
  printf '%s\n' "$out"
}
s=$(date +%s)
step stack init dev > /dev/null
step up --yes --skip-preview > "$tmp/up.log"
greeting="$(step stack output greeting)"
[ "$greeting" = "hello sealant" ] || { cat "$tmp/up.log" >&2; die "stack output greeting is '$greeting', expected 'hello sealant'"; }
rid="$(step stack output resourceId)"
[ "$rid" = "smoke-sealant" ] || die "stack output resourceId is '$rid', expected 'smoke-sealant'"
step destroy --yes > "$tmp/destroy.log"
grep -q "dynamic:Resource smoke deleted" "$tmp/destroy.log" || { cat "$tmp/destroy.log" >&2; die "destroy did not delete the resource"; }
step stack rm dev --yes > /dev/null
log "check passed: pulumi $version up/output/destroy of one dynamic resource in $(($(date +%s) - s)) s (node $(node --version))"
