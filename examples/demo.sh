#!/usr/bin/env bash
# The main job, for now: build the example cluster image with every container image it
# needs inside, inspect it, then serve its registry/ tree with a stock docker-registry and
# pull an image back with skopeo — proof that a cluster can run from the image alone.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${DEMO_WORK:-$root/.demo}"
export SEALANT_HOME="$work/home"
sealant() { node "$root/dist/cli/main.js" "$@"; }
cleanup() { "$root/examples/upstream.sh" down "$work/upstream" || true; [ -f "$work/serve.pid" ] && kill "$(cat "$work/serve.pid")" 2>/dev/null || true; }
trap cleanup EXIT
rm -rf "$work"; mkdir -p "$work"

echo "== upstream registries (stand-ins for docker.io and quay.io on loopback)"
SEALANT_REGISTRY_MIRRORS="$("$root/examples/upstream.sh" up "$work/upstream" | tail -1)"
export SEALANT_REGISTRY_MIRRORS

echo "== sealant build"
sealant build -t example/app:1.0 "$root/examples/app"
echo "== sealant build again (everything cached)"
sealant build -t example/app:1.0 "$root/examples/app"
echo "== sealant images"
sealant images
echo "== sealant inspect"
sealant inspect example/app:1.0

echo "== serving the image's registry/ with a stock docker-registry"
mkdir -p "$work/rootfs"
# The store is an OCI layout: skopeo reads it as is; umoci unpacks the rootfs a host would get.
skopeo --policy "$work/upstream/policy.json" copy -q "oci:$SEALANT_HOME/images:docker.io/example/app:1.0" "oci:$work/layout:app"
umoci raw unpack --image "$work/layout:app" "$work/rootfs/app" > /dev/null
ls "$work/rootfs/app"
port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
printf 'version: 0.1\nlog: { level: error, accesslog: { disabled: true } }\nstorage: { filesystem: { rootdirectory: %s }, maintenance: { readonly: { enabled: true } } }\nhttp: { addr: 127.0.0.1:%s }\n' "$work/rootfs/app/registry" "$port" > "$work/serve.yml"
setsid docker-registry serve "$work/serve.yml" > "$work/serve.log" 2>&1 < /dev/null & echo $! > "$work/serve.pid"
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/v2/" > /dev/null 2>&1 && break; sleep 0.05; done
curl -fsS "http://127.0.0.1:$port/v2/_catalog"; echo
skopeo --policy "$work/upstream/policy.json" inspect --tls-verify=false "docker://127.0.0.1:$port/docker.io/library/nginx:1.25" | head -5
echo "== done: the cluster image carries its own registry"
