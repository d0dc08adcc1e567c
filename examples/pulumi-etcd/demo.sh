#!/usr/bin/env bash
# The etcd example: the Pulumi project examples/pulumi-etcd (its own Pulumi.yaml) run with the real
# Pulumi CLI onto sandbox hosts (sshd in namespaces on 127.0.10.N): `pulumi up` builds the etcd
# cluster image and creates a 3-member etcd cluster, `pulumi config set hosts 5` + `pulumi preview
# --diff` shows the plan (which hosts join), `pulumi up` scales it to 5, `pulumi config set
# heartbeat 150` + `pulumi up` rebuilds the image and upgrades the members one at a time, `pulumi
# destroy` resets every host. etcd itself is the judge. The same cluster through the sealant CLI
# instead: examples/cli-demo.sh. The main demo (scripts/demo.sh) runs a Kubernetes cluster.
#
#   bash examples/pulumi-etcd/demo.sh        (after scripts/setup.sh; needs root for the sandbox)
#
# Everything stays under the work dir (default .demo/etcd/): the stack's state (a local file
# backend), PULUMI_HOME, SEALANT_HOME (image store, sandbox hosts). Secrets in the stack's config
# (the SSH key) are encrypted with a fixed passphrase, "sealant-demo": it is public, it guards
# nothing real. The stack's settings file, examples/pulumi-etcd/Pulumi.demo.yaml, is the demo's: it
# is removed when the demo ends and before it starts.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
project="$root/examples/pulumi-etcd"
source "$root/scripts/env.sh"
work="${DEMO_WORK:-$root/.demo/etcd}"
stack=demo
start=$(date +%s)

export SEALANT_HOME="$work/home"
export PULUMI_BACKEND_URL="file://$work/state" PULUMI_HOME="$work/pulumi-home"
export PULUMI_CONFIG_PASSPHRASE="sealant-demo" # the demo's fixed, public passphrase
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true

sealant() { node "$root/dist/cli/main.js" "$@"; }
pulumi() { command pulumi --non-interactive --cwd "$project" "$@"; }
shown() { echo "\$ pulumi $*"; pulumi "$@"; } # a pulumi command, printed first
# `pulumi up`/`destroy`, printed first; without progress dots and the stack's log lines as they
# come (the same lines are under Diagnostics at the end, with any error).
changes() {
  echo "\$ pulumi $*"
  pulumi "$@" --suppress-progress 2>&1 | grep --line-buffered -v -e '^@ ' -e 'pulumi:pulumi:Stack [^ (]' \
    -e '^The resources in the stack have been deleted' -e '^If you want to remove the stack'
}
json() { node -e 'let t="";process.stdin.on("data",d=>t+=d).on("end",()=>{const v=JSON.parse(t);console.log(eval(process.argv[1]))})' "$1"; }
endpoints() { pulumi stack output endpoints --json | json 'v.join(",")'; }
members() { ETCDCTL_API=3 etcdctl --endpoints "$(endpoints)" member list -w table; }
# The stack's outputs, one line per value (`pulumi stack output` prints them as JSON).
outputs() {
  pulumi stack output --json | json 'Object.entries(v).map(([k, x]) => k.padEnd(11) + (k === "nodes"
    ? x.map((n) => `${n.hostname}  ${n.ip}  ${n.roles.join(",")}${n.member ? "  etcd member" : ""}`).join("\n" + " ".repeat(11))
    : Array.isArray(x) ? x.join("\n" + " ".repeat(11)) : x)).join("\n")'
}
# Runs a shell command on every sandbox host over SSH (the host keys verified).
on_hosts() {
  local i ip
  for i in $(seq 0 $(($(json 'v.hosts.length' < "$work/sandbox.json") - 1))); do
    ip="$(json "v.hosts[$i].ip" < "$work/sandbox.json")"
    echo "$ip: $(ssh "${ssh_opts[@]}" "root@$ip" "$1")"
  done
}

cleanup() {
  # After a failure the stack is simply dropped: its hosts go down with the sandbox, and its
  # state stays in $work for a look (the next run starts afresh).
  sealant sandbox down --name demo > /dev/null 2>&1 || true
  rm -f "$project/Pulumi.$stack.yaml"
}
trap cleanup EXIT
cleanup
command pulumi version > /dev/null || { echo "demo: pulumi not found (run scripts/setup.sh)" >&2; exit 1; }
rm -rf "$work"; mkdir -p "$work/state" "$work/pulumi-home"

echo "== five sandbox hosts"
sealant sandbox up 5 --name demo --json > "$work/sandbox.json"
sealant sandbox ls
first="$(json 'v.hosts[0].ip' < "$work/sandbox.json")"
ssh_field() { json "v.ssh.$1" < "$work/sandbox.json"; }
ssh_opts=(-i "$(ssh_field pk)" -o UserKnownHostsFile="$(ssh_field knownHosts)" -o StrictHostKeyChecking=yes -o BatchMode=yes -o LogLevel=ERROR)

echo; echo "== the Pulumi project examples/pulumi-etcd: Pulumi.yaml runs index.ts (TypeScript)"
sed -n '/^name:/,/^main:/p' "$project/Pulumi.yaml"
echo; echo "== stack \"$stack\": state in ${work/#$root\//}/state, the SSH key a secret (demo passphrase \"$PULUMI_CONFIG_PASSPHRASE\")"
shown stack init "$stack"
shown config set firstHost "$first"
shown config set knownHosts "$(ssh_field knownHosts)"
echo "\$ pulumi config set --secret sshPrivateKey -- \"\$(cat $(ssh_field pk))\""
pulumi config set --secret sshPrivateKey -- "$(cat "$(ssh_field pk)")"
shown config

echo; echo "== pulumi up: build the etcd cluster image, create a 3-member etcd cluster"
changes up --yes --skip-preview --suppress-outputs
echo; echo "== stack outputs (pulumi stack output, one line per value)"
outputs
echo; echo "== etcd's own view"
ETCDCTL_API=3 etcdctl --endpoints "$(endpoints)" endpoint health
members

echo; echo "== scale to 5: the plan names exactly the two new hosts"
shown config set hosts 5
shown preview --diff | grep -v '^ *\[urn='
echo; echo "== pulumi up: join them"
changes up --yes --skip-preview --suppress-outputs
shown stack output lastPlan
members

echo; echo "== a new heartbeat interval: a new image (a build argument), then a rolling upgrade"
shown config set heartbeat 150
changes up --yes --skip-preview --suppress-outputs
shown stack output lastPlan
on_hosts 'tr "\0" "\n" < /proc/$(cat /var/lib/sealant/etcd-demo/run/etcd.pid)/environ | grep HEARTBEAT'
ETCDCTL_API=3 etcdctl --endpoints "$(endpoints)" endpoint health

echo; echo "== pulumi destroy: every member leaves, every host is reset"
changes destroy --yes --skip-preview
on_hosts 'echo "$(ls -A /var/lib/sealant 2> /dev/null | wc -l) files in /var/lib/sealant, $(pgrep -x etcd > /dev/null && echo "etcd running" || echo "no etcd")"'
shown stack rm --yes
echo; echo "== done in $(($(date +%s) - start)) s (the sandbox hosts go down now)"
