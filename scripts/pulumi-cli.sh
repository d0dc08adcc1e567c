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
# a newer nodejs SDK runs on an older engine). The Go language host module
# (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3) is tried at the pseudo-version
# of the pkg tag's commit; when the proxy refuses it (it does here), a small stand-in language host
# written in Node is installed instead: it implements the LanguageRuntime gRPC service with the
# SDK's own generated stubs and runs programs through the SDK's own `@pulumi/pulumi/cmd/run`, which
# is what the Go host does.
#
# After this, `source scripts/env.sh` puts $SEALANT_CACHE/pulumi-current/bin (pulumi, the language
# host and pulumi-resource-pulumi-nodejs, the dynamic-provider launcher) and, after it,
# node_modules/@pulumi/pulumi (the SDK's own copy of that launcher) on PATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/env.sh
source "$root/scripts/env.sh"
cache="${SEALANT_CACHE:-$HOME/.cache/sealant}"
fallback="v3.259.0" # newest pkg/v3 whose module zip this project's module proxy serves (checked 2026-11)

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
  && [ -x "$cache/pulumi-$1/bin/pulumi-resource-pulumi-nodejs" ]; }

point_current() { # atomically repoint $cache/pulumi-current at pulumi-$1
  ln -sfn "pulumi-$1" "$cache/.pulumi-current.$$"
  mv -T "$cache/.pulumi-current.$$" "$cache/pulumi-current"
}

# Writes the Node stand-in for pulumi-language-nodejs into directory $1.
write_node_langhost() {
  local bin="$1"
  cat > "$bin/pulumi-language-nodejs.js" << 'EOF'
// Stand-in for Pulumi's Go `pulumi-language-nodejs`, installed by sealant's scripts/pulumi-cli.sh
// because the Go module proxy reachable here does not serve that module. It implements the
// LanguageRuntime gRPC service with the @pulumi/pulumi SDK's own generated stubs and runs the
// program through the SDK's own `cmd/run` entry point, passing what the Go host passes.
// Not implemented (answers UNIMPLEMENTED): About, GetProgramDependencies, InstallDependencies,
// RunPlugin, codegen (GenerateProject/Program/Package), Pack, Link, Template, RuntimeOptionsPrompts.
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const path = require("path");

const positional = process.argv.slice(2).filter((a) => !a.startsWith("-"));
let engineAddress = positional.length > 0 ? positional[positional.length - 1] : "";

function sdkDirFrom(dir) {
  return path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [dir] }));
}
let sdkDir;
try {
  sdkDir = sdkDirFrom(process.cwd());
} catch (err) {
  console.error(`pulumi-language-nodejs: cannot find @pulumi/pulumi from ${process.cwd()}: run npm install`);
  process.exit(1);
}
const grpc = require(require.resolve("@grpc/grpc-js", { paths: [sdkDir] }));
const langpb = require(path.join(sdkDir, "proto", "language_pb.js"));
const langrpc = require(path.join(sdkDir, "proto", "language_grpc_pb.js"));
const pluginpb = require(path.join(sdkDir, "proto", "plugin_pb.js"));
const emptypb = require(require.resolve("google-protobuf/google/protobuf/empty_pb.js", { paths: [sdkDir] }));
const version = require(path.join(sdkDir, "package.json")).version;

function unary(fn) {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then(
        (res) => callback(null, res),
        (err) => callback({ code: grpc.status.UNKNOWN, details: String((err && err.stack) || err) }),
      );
  };
}

// Resource plugins named by packages under the nearest node_modules (package.json "pulumi.resource").
function requiredPackages(programDir) {
  let dir = path.resolve(programDir);
  while (!fs.existsSync(path.join(dir, "node_modules")) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  const nm = path.join(dir, "node_modules");
  const pkgDirs = [];
  let entries = [];
  try {
    entries = fs.readdirSync(nm);
  } catch {
    return [];
  }
  for (const e of entries) {
    if (e.startsWith(".")) continue;
    if (e.startsWith("@")) {
      try {
        for (const s of fs.readdirSync(path.join(nm, e))) pkgDirs.push(path.join(nm, e, s));
      } catch {}
    } else pkgDirs.push(path.join(nm, e));
  }
  const deps = [];
  for (const d of pkgDirs) {
    let pj;
    try {
      pj = JSON.parse(fs.readFileSync(path.join(d, "package.json"), "utf8"));
    } catch {
      continue;
    }
    const p = pj.pulumi;
    if (!p || !p.resource) continue;
    const name = p.name || String(pj.name).replace(/^@pulumi\//, "").replace(/^@/, "");
    let v = p.version || pj.version || "";
    if (v && !v.startsWith("v")) v = "v" + v;
    const dep = new pluginpb.PackageDependency();
    dep.setKind("resource");
    dep.setName(name);
    dep.setVersion(v);
    if (p.server) dep.setServer(p.server);
    deps.push(dep);
  }
  return deps;
}

function run(req) {
  const info = req.getInfo();
  const opts = info && info.getOptions() ? info.getOptions().toJavaScript() : {};
  const programDir = (info && info.getProgramDirectory()) || req.getPwd() || process.cwd();
  const sdk = sdkDirFrom(programDir);
  const args = [];
  if (opts.nodeargs) args.push(...String(opts.nodeargs).split(/\s+/).filter(Boolean));
  args.push(path.join(sdk, "cmd", "run"));
  const add = (k, v) => {
    if (v !== undefined && v !== null && v !== "") args.push(`--${k}=${v}`);
  };
  add("monitor", req.getMonitorAddress());
  add("engine", engineAddress);
  add("organization", req.getOrganization());
  add("project", req.getProject());
  add("root-directory", info ? info.getRootDirectory() : "");
  add("stack", req.getStack());
  add("pwd", req.getPwd());
  if (req.getDryrun()) args.push("--dry-run");
  add("parallel", String(req.getParallel()));
  const entry = (info && info.getEntryPoint()) || req.getProgram();
  args.push(!entry || entry === "." ? "." : path.resolve(programDir, entry));
  args.push(...req.getArgsList());

  const config = {};
  req.getConfigMap().forEach((v, k) => {
    config[k] = v;
  });
  const env = { ...process.env };
  env.PULUMI_CONFIG = JSON.stringify(config);
  env.PULUMI_CONFIG_SECRET_KEYS = JSON.stringify(req.getConfigsecretkeysList());
  const ts = opts.typescript === undefined ? true : opts.typescript !== false && opts.typescript !== "false";
  env.PULUMI_NODEJS_TYPESCRIPT = String(ts);
  if (opts.tsconfig) env.PULUMI_NODEJS_TSCONFIG_PATH = String(opts.tsconfig);

  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: req.getPwd() || programDir,
      env,
      stdio: ["ignore", "inherit", "inherit"],
    });
    const res = new langpb.RunResponse();
    child.on("error", (err) => {
      res.setError(`Problem executing program (could not run language executor): ${err.message}`);
      resolve(res);
    });
    child.on("close", (code, signal) => {
      if (code === 32) res.setBail(true); // the program already reported a user-actionable error
      else if (code !== 0) res.setError(signal ? `Program exited due to signal ${signal}` : `Program exited with non-zero exit code: ${code}`);
      resolve(res);
    });
  });
}

const server = new grpc.Server({ "grpc.max_receive_message_length": 400 * 1024 * 1024 });
server.addService(langrpc.LanguageRuntimeService, {
  handshake: unary((req) => {
    if (req.getEngineAddress()) engineAddress = req.getEngineAddress();
    return new langpb.LanguageHandshakeResponse();
  }),
  getPluginInfo: unary(() => {
    const info = new pluginpb.PluginInfo();
    info.setVersion(version);
    return info;
  }),
  getRequiredPackages: unary((req) => {
    const info = req.getInfo();
    const res = new langpb.GetRequiredPackagesResponse();
    res.setPackagesList(requiredPackages((info && info.getProgramDirectory()) || process.cwd()));
    return res;
  }),
  run: unary(run),
  cancel: unary(() => new emptypb.Empty()),
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(`pulumi-language-nodejs: could not start the gRPC server: ${err.message}`);
    process.exit(1);
  }
  process.stdout.write(`${port}\n`);
});
EOF
  cat > "$bin/pulumi-language-nodejs" << 'EOF'
#!/bin/sh
# Stand-in nodejs language host (see pulumi-language-nodejs.js beside this file).
exec node "$(dirname "$0")/pulumi-language-nodejs.js" "$@"
EOF
  chmod 755 "$bin/pulumi-language-nodejs"
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

# Builds pulumi at version $1 into $cache/pulumi-$1. Returns 3 when the proxy does not serve pkg/v3@$1.
build() {
  local v="$1" start end
  start=$(date +%s)
  if ! command -v go > /dev/null 2>&1; then export PATH="/usr/local/go/bin:$PATH"; fi
  command -v go > /dev/null 2>&1 || die "go not found (looked on PATH and in /usr/local/go/bin)"
  export GOWORK=off GOFLAGS="${GOFLAGS:--buildvcs=false}"
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
      log "the Go language host is not available ($(printf '%s' "$ldl" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).Error.split("\n")[0])}catch{console.log(s)}})')); a Node stand-in will be installed"
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
    write_node_langhost "$out/bin"
  fi
  write_dynamic_provider "$out/bin"
  local got
  got="$("$out/bin/pulumi" version 2>&1)" || die "the built pulumi does not run: $got"
  [ "$got" = "$v" ] || die "the built pulumi reports version '$got', expected '$v'"
  end=$(date +%s)
  {
    echo "pulumi=$v"
    echo "language_host=$([ "$langhost_go" = 1 ] && echo "go $langhost_mod@$pseudo" || echo "node stand-in (scripts/pulumi-cli.sh)")"
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
