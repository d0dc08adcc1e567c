#!/usr/bin/env bash
# A local stand-in for the public registries the example's images come from: one stock
# docker-registry per source registry (docker.io, quay.io) on loopback, seeded with small
# real OCI images made by umoci and pushed by skopeo. Builds then use them as mirrors
# (SEALANT_REGISTRY_MIRRORS), so image names in manifests stay exactly as users write them.
#
#   examples/upstream.sh up STATE_DIR     start + seed; prints the SEALANT_REGISTRY_MIRRORS value
#   examples/upstream.sh down STATE_DIR   stop
set -euo pipefail

cmd="${1:?usage: upstream.sh up|down STATE_DIR}"
state="${2:?usage: upstream.sh up|down STATE_DIR}"
mkdir -p "$state"
state="$(cd "$state" && pwd)"

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

start_registry() { # name port
  local name="$1" port="$2" dir="$state/$1"
  mkdir -p "$dir/storage"
  cat > "$dir/config.yml" <<CFG
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage:
  filesystem: { rootdirectory: $dir/storage }
  delete: { enabled: true }
http: { addr: 127.0.0.1:$port }
CFG
  setsid docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/v2/" > /dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "upstream registry $name did not start; log:" >&2; cat "$dir/log" >&2; return 1
}

seed() { # port repo:tag  -- an image with a distinct small file so every image differs
  local port="$1" ref="$2" layout="$state/layouts/${2//[\/:]/_}"
  rm -rf "$layout"; mkdir -p "$layout.src"
  printf '%s\n' "$ref" > "$layout.src/IMAGE"
  head -c 65536 /dev/urandom > "$layout.src/payload.bin"
  umoci init --layout "$layout" > /dev/null
  umoci new --image "$layout:seed" > /dev/null
  umoci insert --image "$layout:seed" "$layout.src" /opt/image > /dev/null
  skopeo --policy "$state/policy.json" copy -q --dest-tls-verify=false "oci:$layout:seed" "docker://127.0.0.1:$port/$ref"
}

case "$cmd" in
  up)
    echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$state/policy.json"
    docker_port="${UPSTREAM_DOCKER_PORT:-$(free_port)}"
    quay_port="${UPSTREAM_QUAY_PORT:-$(free_port)}"
    start_registry docker.io "$docker_port"
    start_registry quay.io "$quay_port"
    for ref in library/nginx:1.25 library/busybox:1.36 library/redis:7.2; do seed "$docker_port" "$ref"; done
    seed "$quay_port" prometheus/node-exporter:v1.7.0
    echo "docker.io=127.0.0.1:$docker_port,quay.io=127.0.0.1:$quay_port" | tee "$state/mirrors"
    ;;
  down)
    for pidfile in "$state"/*/pid; do
      [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2> /dev/null || true
      rm -f "$pidfile"
    done
    ;;
  *) echo "usage: upstream.sh up|down STATE_DIR" >&2; exit 2 ;;
esac
