#!/usr/bin/env bash
# Builds sealant's Kubernetes base cluster image for any Kubernetes release the Go module proxy
# serves, in one command, from source:
#
#   bash scripts/kube-base-image.sh [vX.Y.Z] [-t REF]     default v1.31.4, REF sealant/kubernetes:vX.Y.Z
#
# 1. scripts/kubernetes.sh   kubeadm, kubelet, kubectl and the control plane's binaries (cached)
# 2. scripts/kube-images.sh  every container image the cluster runs, as OCI layouts under their
#                            upstream names (control plane, etcd, pause, CoreDNS, kube-proxy,
#                            flannel, haproxy; cached)
# 3. a build context staged from images/kubernetes plus those binaries, containerd/runc/ctr and
#    docker-registry from this machine's Debian packages, and the CNI plugins
# 4. a loopback docker-registry serving the images, named as upstream, as the build's mirror of
#    registry.k8s.io and docker.io (SEALANT_REGISTRY_MIRRORS): the build caches them into the
#    image's registry/ exactly as it would from the real registries
# 5. `sealant build` of images/kubernetes/Kubefile into the local store.
# Reproducible: the same release and the same Debian package versions give the same digest.
# Prints the image reference on stdout; progress on stderr.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${SEALANT_CACHE:-$HOME/.cache/sealant}"
log() { echo "kube-base-image: $*" >&2; }
die() { echo "kube-base-image: ERROR: $*" >&2; exit 1; }

version="v1.31.4"
ref=""
while [ $# -gt 0 ]; do
  case "$1" in
    -t) ref="${2:?-t needs an image reference}"; shift 2 ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    v*) version="$1"; shift ;;
    *) die "unknown argument '$1' (usage: scripts/kube-base-image.sh [vX.Y.Z] [-t REF])" ;;
  esac
done
[[ "$version" =~ ^v1\.[0-9]+\.[0-9]+$ ]] || die "the Kubernetes version must look like v1.31.4, got '$version'"
ref="${ref:-sealant/kubernetes:$version}"
source "$root/scripts/env.sh"
[ -f "$root/dist/cli/main.js" ] || (cd "$root" && npm run --silent build)
sealant() { node "$root/dist/cli/main.js" "$@"; }

kube_dir="$(bash "$root/scripts/kubernetes.sh" "$version")"
images_dir="$(bash "$root/scripts/kube-images.sh" "$version")"
[ -f "$images_dir/images.json" ] || die "scripts/kube-images.sh gave no images.json in $images_dir"

work="$(mktemp -d "${TMPDIR:-/tmp}/sealant-kube-base.XXXXXX")"
registry_pid=""
cleanup() {
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2> /dev/null || true; wait "$registry_pid" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# ---- the build context ----
ctx="$work/context"
mkdir -p "$ctx"
cp -a "$root/images/kubernetes/." "$ctx/"
mkdir -p "$ctx/bin" "$ctx/cri" "$ctx/cni"
for b in kubeadm kubelet kubectl; do install -m 0755 "$kube_dir/bin/$b" "$ctx/bin/$b"; done
command -v docker-registry > /dev/null || die "docker-registry is not installed (apt-get install docker-registry; scripts/setup.sh does)"
install -m 0755 "$(command -v docker-registry)" "$ctx/bin/docker-registry"
for b in containerd containerd-shim-runc-v2 ctr runc; do
  p="$(command -v "$b" || true)"
  [ -n "$p" ] || die "$b is not installed (apt-get install containerd runc; scripts/setup.sh does)"
  install -m 0755 "$p" "$ctx/cri/$b"
done
# The image list, the tags the scripts need, and the CNI plugins, from kube-images.sh's manifest.
node - "$images_dir/images.json" "$ctx" << 'JS'
const fs = require("fs");
const [file, ctx] = process.argv.slice(2);
const m = JSON.parse(fs.readFileSync(file, "utf8"));
const names = m.images.map((i) => i.name);
fs.writeFileSync(`${ctx}/imageList`, names.join("\n") + "\n");
const find = (re) => {
  const n = names.find((x) => re.test(x));
  if (!n) throw new Error(`images.json has no image matching ${re}`);
  return n;
};
const env = {
  PAUSE_IMAGE: find(/^registry\.k8s\.io\/pause:/),
  FLANNEL_IMAGE: find(/\/flannel:/),
  API_LB_IMAGE: find(/\/haproxy:/),
  COREDNS_IMAGE: find(/\/coredns:/),
};
fs.writeFileSync(`${ctx}/etc/kube-images.env`, Object.entries(env).map(([k, v]) => `${k}=${v}`).join("\n") + "\n");
const kubeadm = `${ctx}/etc/kubeadm.yml`;
fs.writeFileSync(kubeadm, fs.readFileSync(kubeadm, "utf8").replace("@COREDNS_TAG@", env.COREDNS_IMAGE.split(":").pop()));
const cni = m.cniPlugins ?? { plugins: [] };
for (const p of cni.plugins) fs.copyFileSync(require("path").resolve(require("path").dirname(file), cni.dir, p), `${ctx}/cni/${p}`);
if (!m.addons?.crictl) throw new Error("images.json names no crictl (addons.crictl)");
fs.copyFileSync(`${m.addons.crictl}/crictl`, `${ctx}/bin/crictl`);
fs.chmodSync(`${ctx}/bin/crictl`, 0o755);
fs.writeFileSync(`${ctx}/.build-args`, `API_LB_IMAGE=${env.API_LB_IMAGE}\n`);
JS
[ "$(ls "$ctx/cni" | wc -l)" -gt 0 ] || die "no CNI plugins in $images_dir/images.json (cniPlugins)"

# ---- the images, served as their upstream registries would ----
port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
mkdir -p "$work/registry"
cat > "$work/registry.yml" << CFG
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $work/registry } }
http: { addr: 127.0.0.1:$port }
CFG
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 < /dev/null &
registry_pid=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/v2/" > /dev/null 2>&1 && break; sleep 0.05; done
curl -fsS "http://127.0.0.1:$port/v2/" > /dev/null || { cat "$work/registry.log" >&2; die "the build's loopback registry did not start"; }
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' > "$work/policy.json"
node -e 'for (const i of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).images) console.log(`${i.name} ${require("path").resolve(process.argv[2], i.layout)}:${i.tag}`)' "$images_dir/images.json" "$images_dir" |
  while read -r name layout; do
    path="${name#*/}" # registry.k8s.io/pause:3.10 -> pause:3.10 (one registry serves both source domains)
    log "serving $name"
    skopeo --policy "$work/policy.json" copy -q --dest-tls-verify=false "oci:$layout" "docker://127.0.0.1:$port/$path" >&2 ||
      die "skopeo could not push $layout as $name"
  done

log "building $ref (Kubernetes $version)"
SEALANT_REGISTRY_MIRRORS="registry.k8s.io=127.0.0.1:$port,docker.io=127.0.0.1:$port" \
  sealant build -t "$ref" --build-arg "KUBE_VERSION=$version" --build-arg "$(cat "$ctx/.build-args")" "$ctx" >&2
rm -f "$ctx/.build-args"
echo "$ref"
