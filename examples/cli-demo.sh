#!/usr/bin/env bash
# The sealant CLI demo (after scripts/setup.sh): build cluster images, then run one onto sandbox
# hosts (sshd in namespaces on 127.0.10.N) with `sealant apply` — create a 3-member etcd cluster,
# scale it to 5, remove a host, upgrade it rolling, reset it — with etcd itself as the judge at
# every step. The main job (scripts/demo.sh, examples/demo.sh) does it with Pulumi instead.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/env.sh"
work="${DEMO_WORK:-$root/.demo}"
export SEALANT_HOME="$work/home"
sealant() { node "$root/dist/cli/main.js" "$@"; }
members() { ETCDCTL_API=3 etcdctl --endpoints "http://$1:2379" member list -w table; }
cleanup() {
  sealant sandbox down --name demo > /dev/null 2>&1 || true
  "$root/examples/upstream.sh" down "$work/upstream" || true
}
trap cleanup EXIT
sealant sandbox down --name demo > /dev/null 2>&1 || true
rm -rf "$work"; mkdir -p "$work"

echo "== an application cluster image: manifests, a chart and every container image they pull"
SEALANT_REGISTRY_MIRRORS="$("$root/examples/upstream.sh" up "$work/upstream" | tail -1)"
export SEALANT_REGISTRY_MIRRORS   # loopback stand-ins for docker.io and quay.io
sealant build -q -t example/app:1.0 "$root/examples/app"
sealant inspect example/app:1.0 | head -20

echo; echo "== the etcd cluster image (hooks runtime: examples/etcd/hooks)"
sealant build -q -t example/etcd:1 "$root/examples/etcd"
sealant images

echo; echo "== five sandbox hosts"
sealant sandbox up 5 --name demo --json > "$work/sandbox.json"
sealant sandbox ls
ip() { node -e 'const s=require(process.argv[1]);console.log(s.hosts[+process.argv[2]].ip)' "$work/sandbox.json" "$1"; }
ssh_field() { node -e 'const s=require(process.argv[1]);console.log(s.ssh[process.argv[2]])' "$work/sandbox.json" "$1"; }
h=(); for i in 0 1 2 3 4; do h+=("$(ip $i)"); done

pinned() { echo "$1@$(sealant inspect "$1" --json | node -e 'let t="";process.stdin.on("data",d=>t+=d).on("end",()=>console.log(JSON.parse(t).digest))')"; }
clusterfile() { # clusterfile IMAGE IP...
  local image="$1"; shift
  cat <<YAML
apiVersion: sealant.io/v1
kind: Cluster
metadata: {name: demo}
spec:
  image: $image
  hosts:
    - ips: [$(IFS=,; echo "$*")]
      roles: [master]
  ssh:
    privateKeyPath: $(ssh_field pk)
    knownHosts: $(ssh_field knownHosts)
YAML
}

v1="$(pinned example/etcd:1)"
clusterfile "$v1" "${h[@]:0:3}" > "$work/Clusterfile"
echo; echo "== sealant plan (nothing changes yet)"
sealant plan -f "$work/Clusterfile"
echo; echo "== sealant apply: a 3-member etcd cluster"
sealant apply -f "$work/Clusterfile"
members "${h[0]}"
sealant check -f "$work/Clusterfile"
echo; echo "== apply again: nothing to do, nothing sent"
sealant apply -f "$work/Clusterfile"

clusterfile "$v1" "${h[@]}" > "$work/Clusterfile"
echo; echo "== scale to 5: the plan names exactly the two new hosts"
sealant plan -f "$work/Clusterfile"
sealant apply -q -f "$work/Clusterfile"
members "${h[0]}"

echo; echo "== remove ${h[3]}"
sealant delete -y -q -f "$work/Clusterfile" --nodes "${h[3]}"
clusterfile "$v1" "${h[0]}" "${h[1]}" "${h[2]}" "${h[4]}" > "$work/Clusterfile"
members "${h[0]}"

echo; echo "== a new image version: a rolling upgrade, one member at a time"
mkdir -p "$work/etcd-v2"; cp -r "$root/examples/etcd/." "$work/etcd-v2/"
echo "ETCD_HEARTBEAT_INTERVAL=150" >> "$work/etcd-v2/etc/etcd.env"
sealant build -q -t example/etcd:2 "$work/etcd-v2"
clusterfile "$(pinned example/etcd:2)" "${h[0]}" "${h[1]}" "${h[2]}" "${h[4]}" > "$work/Clusterfile"
sealant plan -f "$work/Clusterfile"
sealant apply -q -f "$work/Clusterfile"
sealant exec -f "$work/Clusterfile" -- 'cat /proc/$(cat /var/lib/sealant/demo/run/etcd.pid)/environ | tr "\0" "\n" | grep HEARTBEAT'

echo; echo "== sealant reset: nothing of the cluster left on any host"
sealant reset -y -f "$work/Clusterfile"
sealant exec -f "$work/Clusterfile" -- 'ls -A /var/lib/sealant; pgrep -x etcd || echo "no etcd"'
echo; echo "== done"
