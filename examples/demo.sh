#!/usr/bin/env bash
# The main job: a real Kubernetes cluster as Pulumi resources. The Pulumi program at the repo root
# (Pulumi.yaml; the program is examples/pulumi-kubernetes/index.ts, TypeScript) run with the real
# Pulumi CLI onto three Kubernetes-capable sandbox hosts (each its own network namespace at
# 10.231.S.(10+N), reached from here through a veth):
#   1. sealant's Kubernetes base image (scripts/kube-base-image.sh: kubeadm, kubelet, containerd,
#      etcd, flannel, CoreDNS, ... built from source) and an application image FROM it (the hello
#      app: a busybox httpd Deployment + Service), pinned by digest;
#   2. `pulumi up`: 1 master + 1 worker; the stack's kubeconfig output drives the real kubectl;
#   3. `pulumi config set --path 'workers[1]' ...` + `pulumi preview --diff` names the host that
#      joins; `pulumi up` joins it;
#   4. with DEMO_UPGRADE=1 (~5 minutes more) the cluster starts on Kubernetes v1.30.14 and a new
#      image (`pulumi config set image` to the same app FROM the v1.31.4 base image) is a rolling
#      upgrade, one node at a time, each drained first;
#   5. `pulumi destroy` resets every host; the sandbox goes down.
# The etcd example (hooks runtime): bash examples/pulumi-etcd/demo.sh.
#
# Everything stays under the work dir (default .demo/kubernetes/, removed after a successful run):
# the stack's state (a local file backend), PULUMI_HOME, SEALANT_HOME (image store, sandbox
# hosts), the kubeconfig. Secrets in the stack's config (the SSH key) are encrypted with a fixed
# passphrase, "sealant-demo": it is public, it guards nothing real. The stack's settings file,
# Pulumi.demo.yaml at the repo root (ignored by git), is the demo's: it is removed when the demo
# ends and before it starts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/env.sh"
work="${DEMO_WORK:-$root/.demo/kubernetes}"
stack=demo
sandbox=demo-k8s
new=v1.31.4
old=v1.30.14
first="$new"
[ "${DEMO_UPGRADE:-0}" = 1 ] && first="$old"
start=$(date +%s)

export SEALANT_HOME="$work/home"
export PULUMI_BACKEND_URL="file://$work/state" PULUMI_HOME="$work/pulumi-home"
export PULUMI_CONFIG_PASSPHRASE="sealant-demo" # the demo's fixed, public passphrase
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true

sealant() { node "$root/dist/cli/main.js" "$@"; }
pulumi() { command pulumi --non-interactive --cwd "$root" "$@"; }
shown() { echo "\$ pulumi $*"; pulumi "$@"; } # a pulumi command, printed first
# `pulumi up`/`destroy`, printed first; without progress dots, and the stack's log lines (the
# engine's phases, each as it starts) shown as they come with the seconds since the command began
# instead of once more under Diagnostics at the end (other diagnostics, errors among them, stay).
changes() {
  echo "\$ pulumi $*"
  pulumi "$@" --suppress-progress 2>&1 | live_awk '
    function now() { srand(); return srand() }
    BEGIN { t0 = now() }
    /^@ / { next }
    /^The resources in the stack have been deleted/ || /^If you want to remove the stack/ { next }
    (/pulumi:pulumi:Stack [^ (]+ [a-z]+ \([0-9.]+s\) +[^ ]/ || /pulumi:pulumi:Stack [^ (]+ [a-z]+ +[^ (]/) && !/ [0-9]+ messages?$/ {
      line = $0
      sub(/^.*pulumi:pulumi:Stack [^ (]+ [a-z]+ +(\([0-9.]+s\) +)?/, "", line)
      printf "    %4ds  %s\n", now() - t0, line; fflush(); next
    }
    /pulumi:pulumi:Stack [^ (]/ { next }
    /^Diagnostics:$/ { indiag = 1; next }
    indiag && /^  pulumi:pulumi:Stack / { skip = 1; next }
    skip && /^    / { next }
    skip && /^$/ { skip = 0; next }
    indiag && /^  [^ ]/ && !hdr { print "Diagnostics:"; hdr = 1 }
    indiag && /^[^ ]/ { indiag = 0 }
    { print; fflush() }'
}
# awk reading its input line by line (mawk, Debian's awk, reads blocks unless told).
live_awk() { if awk -W version 2>&1 | grep -q mawk; then awk -W interactive "$@"; else awk "$@"; fi; }
json() { node -e 'let t="";process.stdin.on("data",d=>t+=d).on("end",()=>{const v=JSON.parse(t);console.log(eval(process.argv[1]))})' "$1"; }
kubectl() { "$kube_bin/kubectl" --kubeconfig "$work/admin.conf" --request-timeout=20s "$@"; }
shown_kubectl() { echo "\$ kubectl $*"; kubectl "$@"; }
# The stack's outputs but the kubeconfig, one line per value (`pulumi stack output` prints JSON).
outputs() {
  pulumi stack output --json | json 'Object.entries(v).map(([k, x]) => k.padEnd(12) + (k === "nodes"
    ? x.map((n) => `${n.hostname}  ${n.ip}  ${n.roles.join(",")}`).join("\n" + " ".repeat(12))
    : Array.isArray(x) ? x.join("\n" + " ".repeat(12)) : x)).join("\n")'
}
# Waits until `kubectl get ARGS...` (a jsonpath over a list) prints at least `n` values, all "True".
wait_for() {
  local what="$1" n="$2" i got
  shift 2
  for i in $(seq 1 90); do
    got="$(kubectl get "$@" 2> /dev/null | tr ' ' '\n' | grep . || true)"
    if [ "$(echo "$got" | grep -c .)" -ge "$n" ] && ! echo "$got" | grep -qvi '^true$'; then return 0; fi
    sleep 2
  done
  echo "demo: $what not ready within 3 minutes" >&2
  return 1
}
hello_ready() { wait_for "the hello pods" 2 pods -n hello -l app=hello -o 'jsonpath={.items[*].status.containerStatuses[0].ready}'; }
nodes_ready() { wait_for "$1 nodes" "$1" nodes -o 'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}'; }
# The hello Service answering through the API server's proxy (the master routes to the pods).
hello_says() { echo "\$ kubectl get --raw /api/v1/namespaces/hello/services/hello:80/proxy/"; kubectl get --raw /api/v1/namespaces/hello/services/hello:80/proxy/; }
# Runs a shell command on every sandbox host over SSH (the host keys verified).
on_hosts() {
  local i ip
  for i in $(seq 0 $(($(json 'v.hosts.length' < "$work/sandbox.json") - 1))); do
    ip="$(json "v.hosts[$i].ip" < "$work/sandbox.json")"
    echo "$ip: $(ssh "${ssh_opts[@]}" "root@$ip" "$1")"
  done
}
phase() { echo; echo "== $* ($(($(date +%s) - start)) s)"; }

finished=""
cleanup() {
  # After a failure the stack is simply dropped: its hosts go down with the sandbox, and its
  # state and logs stay in $work for a look (the next run starts afresh). After a success nothing
  # stays (the image store alone is ~0.5 GB).
  sealant sandbox down --name "$sandbox" > /dev/null 2>&1 || true
  rm -f "$root/Pulumi.$stack.yaml"
  if [ -n "$finished" ]; then rm -rf "$work"; rmdir "$root/.demo" 2> /dev/null || true; fi
}
trap cleanup EXIT
cleanup
command pulumi version > /dev/null || { echo "demo: pulumi not found (run scripts/setup.sh)" >&2; exit 1; }
rm -rf "$work"; mkdir -p "$work/state" "$work/pulumi-home" "$work/home"
kube_bin="$(bash "$root/scripts/kubernetes.sh" "$new")/bin"

versions="$first"
[ "$first" = "$new" ] || versions="$first $new"
image_of() { echo "example/hello:$1@$(sealant inspect "example/hello:$1" --json | json 'v.digest')"; }
for v in $versions; do
  phase "sealant's Kubernetes base image $v, built from source: bash scripts/kube-base-image.sh $v"
  if ! bash "$root/scripts/kube-base-image.sh" "$v" > "$work/kube-base-image-$v.log" 2>&1; then
    tail -n 20 "$work/kube-base-image-$v.log" >&2; exit 1
  fi
  grep -E '^(built|kube-base-image: building)' "$work/kube-base-image-$v.log"
done
echo; echo "== the hello app FROM it (test/fixtures/k8s-app):"
sed 's/^/    /' "$root/test/fixtures/k8s-app/Kubefile" | grep -v '^    #'
for v in $versions; do
  echo "\$ sealant build -t example/hello:$v --build-arg BASE=sealant/kubernetes:$v test/fixtures/k8s-app"
  sealant build -q -t "example/hello:$v" --build-arg "BASE=sealant/kubernetes:$v" "$root/test/fixtures/k8s-app"
  image_of "$v"
done

phase "three Kubernetes-capable sandbox hosts"
sealant sandbox up 3 --kubernetes --name "$sandbox" --json > "$work/sandbox.json"
sealant sandbox ls
ip_of() { json "v.hosts[$1].ip" < "$work/sandbox.json"; }
ssh_field() { json "v.ssh.$1" < "$work/sandbox.json"; }
ssh_opts=(-i "$(ssh_field pk)" -o UserKnownHostsFile="$(ssh_field knownHosts)" -o StrictHostKeyChecking=yes -o BatchMode=yes -o LogLevel=ERROR)
master="$(ip_of 0)" worker1="$(ip_of 1)" worker2="$(ip_of 2)"

echo; echo "== the Pulumi project at the repo root: Pulumi.yaml runs examples/pulumi-kubernetes/index.ts"
sed -n '/^name:/,/^main:/p' "$root/Pulumi.yaml"
sed -n '/^const cluster = new KubernetesCluster/,/^});/p' "$root/examples/pulumi-kubernetes/index.ts"
phase "stack \"$stack\": state in ${work/#$root\//}/state, the SSH key a secret (demo passphrase \"$PULUMI_CONFIG_PASSPHRASE\")"
shown stack init "$stack"
shown config set image "$(image_of "$first")"
shown config set --path 'masters[0]' "$master"
shown config set --path 'workers[0]' "$worker1"
shown config set knownHosts "$(ssh_field knownHosts)"
echo "\$ pulumi config set --secret sshPrivateKey -- \"\$(cat $(ssh_field pk))\""
pulumi config set --secret sshPrivateKey -- "$(cat "$(ssh_field pk)")"
shown config

phase "pulumi up: Kubernetes $first on 1 master + 1 worker"
changes up --yes --skip-preview --suppress-outputs
echo; echo "== stack outputs (pulumi stack output; kubeconfig is a secret)"
outputs
echo; echo "\$ pulumi stack output --show-secrets kubeconfig > ${work/#$root\//}/admin.conf"
pulumi stack output --show-secrets kubeconfig > "$work/admin.conf"
chmod 600 "$work/admin.conf"
echo "\$ alias kubectl='kubectl --kubeconfig ${work/#$root\//}/admin.conf'   # the real kubectl $new, on this machine"
nodes_ready 2
shown_kubectl get nodes -o wide
hello_ready
shown_kubectl get pods -n hello -o wide
hello_says

phase "a second worker: pulumi preview --diff names the host that joins"
shown config set --path 'workers[1]' "$worker2"
shown preview --diff | grep -v '^ *\[urn='
phase "pulumi up: join it"
changes up --yes --skip-preview --suppress-outputs
shown stack output lastPlan
nodes_ready 3
shown_kubectl get nodes -o wide
shown_kubectl get pods -A -o wide

if [ "$first" != "$new" ]; then
  phase "a new image: Kubernetes $new (the same app FROM the $new base image): a rolling upgrade"
  shown config set image "$(image_of "$new")"
  shown preview --diff | grep -E 'plan|upgrade' | grep -v '^ *\[urn=' || true
  changes up --yes --skip-preview --suppress-outputs
  shown stack output lastPlan
  nodes_ready 3
  shown_kubectl get nodes -o wide
  hello_ready
  shown_kubectl get pods -n hello -o wide
  hello_says
fi

phase "pulumi destroy: every host is reset"
changes destroy --yes --skip-preview
on_hosts 'echo "$(ps -eo comm= | grep -cE "^(kubelet|containerd|containerd-shim|etcd|kube-.*|flanneld|coredns|haproxy|pause)$" || true) Kubernetes processes, $(grep -c " /var/lib/kubelet/" /proc/self/mounts || true) mounts under /var/lib/kubelet, $(ip -o link show | grep -cE " (cni0|flannel[^:]*|veth[^:@]*)[:@]" || true) pod network interfaces"'
shown stack rm --yes
finished=1
echo; echo "== done in $(($(date +%s) - start)) s (the sandbox hosts go down now, ${work/#$root\//} is removed)"
