/**
 * Shell run on masters for backups and restores. etcd's own tools come from the etcd image the
 * master's static pod runs (kubeadm's stacked etcd), mounted read-only from containerd: no
 * etcdctl on the host is needed, and the tools work while etcd itself is stopped.
 */
import { shellQuote } from "../../ssh/shell";

export const ETCD_MANIFEST = "/etc/kubernetes/manifests/etcd.yaml";
/** Where a restore keeps the control plane's static pod manifests while it is stopped. */
export const MANIFEST_STASH = "/etc/kubernetes/.sealant-restore-manifests";
const CONTROL_PLANE = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"] as const;
const ETCD_CERTS = "--cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/server.crt --key /etc/kubernetes/pki/etcd/server.key";

/** Defines `etcd_tools MANIFEST`: sets $etcdctl and $etcdutl (etcdctl's own restore where the image has no etcdutl); unmounted on exit. */
const ETCD_TOOLS = `etcd_tools() {
  image=$(awk '$1 == "image:" { print $2; exit }' "$1")
  [ -n "$image" ] || { echo "$1 names no etcd image" >&2; return 1; }
  tools=$(mktemp -d /run/.sealant-etcd-tools.XXXXXX)
  trap 'ctr -n k8s.io images unmount --rm "$tools" > /dev/null 2>&1 || true; rmdir "$tools" 2> /dev/null || true' EXIT
  if ! ctr -n k8s.io images mount "$image" "$tools" > /dev/null 2>&1; then
    echo "cannot mount the etcd image $image from containerd (ctr -n k8s.io images mount) to run etcdctl" >&2; return 1
  fi
  etcdctl="$tools/usr/local/bin/etcdctl"
  etcdutl="$tools/usr/local/bin/etcdutl"
  [ -x "$etcdutl" ] || etcdutl="$etcdctl"
  [ -x "$etcdctl" ] || { echo "the etcd image $image has no /usr/local/bin/etcdctl" >&2; return 1; }
}
`;

/**
 * On the master chosen for the backup: etcd's health, a snapshot, its status, the pki and the
 * kubeadm configuration, all under `work` (mode 0700). Prints the snapshot's status (one JSON
 * line), then `sha256 size path` for every file.
 */
export function prepareBackup(work: string, initConfig: string): string {
  const w = shellQuote(work);
  return `set -eu
umask 077
export KUBECONFIG=/etc/kubernetes/admin.conf
${ETCD_TOOLS}
[ -f ${ETCD_MANIFEST} ] || { echo "no etcd static pod here (${ETCD_MANIFEST}): sealant backs up kubeadm's stacked etcd" >&2; exit 1; }
etcd_tools ${ETCD_MANIFEST}
rm -rf ${w} ${shellQuote(`${work}.meta`)}
mkdir -p ${w}/etcd ${w}/kubeadm
if ! "$etcdctl" --endpoints https://127.0.0.1:2379 ${ETCD_CERTS} --command-timeout=10s endpoint health > /dev/null 2>&1; then
  echo "etcd on this master is not healthy" >&2; exit 1
fi
"$etcdctl" --endpoints https://127.0.0.1:2379 ${ETCD_CERTS} snapshot save ${w}/etcd/snapshot.db > /dev/null 2> ${w}/.save.log || { cat ${w}/.save.log >&2; exit 1; }
rm -f ${w}/.save.log
status=$("$etcdutl" snapshot status ${w}/etcd/snapshot.db -w json 2> /dev/null)
cp -a /etc/kubernetes/pki ${w}/pki
kubectl -n kube-system get configmap kubeadm-config -o jsonpath='{.data.ClusterConfiguration}' > ${w}/kubeadm/cluster-configuration.yaml
if [ -f ${shellQuote(initConfig)} ]; then cp ${shellQuote(initConfig)} ${w}/kubeadm/init.yaml; fi
echo "$status" | tr -d '\\n'; echo
cd ${w} && find . -type f | sed 's|^\\./||' | LC_ALL=C sort | while read -r f; do
  printf '%s %s %s\\n' "$(sha256sum < "$f" | cut -d' ' -f1)" "$(stat -c %s "$f")" "$f"
done
`;
}

/** The archive from `work` and the manifest uploaded beside it, gzip'd on stdout, manifest first. */
export function streamBackup(work: string): string {
  return `set -eu
tar -czf - -C ${shellQuote(`${work}.meta`)} manifest.json cluster.json -C ${shellQuote(work)} etcd pki kubeadm`;
}

export function removeWork(work: string): string {
  return `rm -rf ${shellQuote(work)} ${shellQuote(`${work}.meta`)}`;
}

/**
 * Stops the control plane on a master: its static pod manifests moved aside (a restore that died
 * half way finds the rest there), until none of its containers runs. Prints the etcd member's
 * name and peer URL.
 */
export function stopControlPlane(): string {
  const stash = shellQuote(MANIFEST_STASH);
  return `set -eu
mkdir -p ${stash}
for f in ${CONTROL_PLANE.join(" ")}; do
  if [ -f /etc/kubernetes/manifests/$f.yaml ]; then mv -f /etc/kubernetes/manifests/$f.yaml ${stash}/; fi
done
[ -f ${stash}/etcd.yaml ] || { echo "no etcd static pod here (${ETCD_MANIFEST}): sealant restores kubeadm's stacked etcd" >&2; exit 1; }
for i in $(seq 1 90); do
  [ -z "$(crictl ps -q --name '^(${CONTROL_PLANE.join("|")})$' 2> /dev/null)" ] && break
  [ "$i" -lt 90 ] || { echo "the control plane's containers did not stop within 180 s" >&2; exit 1; }
  sleep 2
done
name=$(sed -n 's/.*--name=//p' ${stash}/etcd.yaml | head -n 1)
url=$(sed -n 's/.*--initial-advertise-peer-urls=//p' ${stash}/etcd.yaml | head -n 1)
[ -n "$name" ] && [ -n "$url" ] || { echo "${MANIFEST_STASH}/etcd.yaml names no etcd member (--name, --initial-advertise-peer-urls)" >&2; exit 1; }
echo "$name $url"
`;
}

/**
 * etcd's data made from the snapshot on a stopped master: restored into a fresh directory beside
 * the live one, then swapped in; the data it replaces is kept as `.sealant-previous-member`.
 */
export function restoreMember(snapshot: string, member: { name: string; url: string }, initialCluster: string, token: string): string {
  const stash = shellQuote(MANIFEST_STASH);
  return `set -eu
umask 077
${ETCD_TOOLS}
etcd_tools ${stash}/etcd.yaml
data=$(sed -n 's/.*--data-dir=//p' ${stash}/etcd.yaml | head -n 1)
data=\${data:-/var/lib/etcd}
mkdir -p "$data"
rm -rf "$data/.sealant-restore"
if ! "$etcdutl" snapshot restore ${shellQuote(snapshot)} --name ${shellQuote(member.name)} --initial-cluster ${shellQuote(initialCluster)} \\
    --initial-cluster-token ${shellQuote(token)} --initial-advertise-peer-urls ${shellQuote(member.url)} --data-dir "$data/.sealant-restore" > "$data/.sealant-restore.log" 2>&1; then
  tail -n 5 "$data/.sealant-restore.log" >&2; exit 1
fi
rm -f "$data/.sealant-restore.log"
rm -rf "$data/.sealant-previous-member"
if [ -d "$data/member" ]; then mv "$data/member" "$data/.sealant-previous-member"; fi
mv "$data/.sealant-restore/member" "$data/member"
rm -rf "$data/.sealant-restore"
`;
}

/** The control plane's manifests back (the kubelet starts them), the uploaded snapshot gone. */
export function startControlPlane(uploadDir: string): string {
  const stash = shellQuote(MANIFEST_STASH);
  return `set -eu
for f in ${stash}/*.yaml; do [ -f "$f" ] && mv -f "$f" /etc/kubernetes/manifests/; done
rmdir ${stash} 2> /dev/null || true
rm -rf ${shellQuote(uploadDir)}
`;
}

/** On the first master: Nodes whose address no host of the spec has are deleted (the hosts a backup came from, on new hosts). */
export function forgetOtherNodes(ips: string[]): string {
  return `for i in $(seq 1 60); do kubectl get --raw /readyz > /dev/null 2>&1 && break; sleep 2; done
kubectl get nodes -o wide --no-headers | awk '{ print $1, $6 }' | while read -r n ip; do
  case " ${ips.join(" ")} " in *" $ip "*) ;; *) kubectl delete node "$n" > /dev/null; echo "$n" ;; esac
done
`;
}

/**
 * On the first master of a cluster restored onto new hosts: the restored kube-system/kubeadm-config
 * (and kubelet-config) are the old hosts'; the new cluster's own, which its create just wrote, go
 * back (later joins and upgrades read them).
 */
export function uploadOwnConfig(initConfig: string): string {
  return `export KUBECONFIG=/etc/kubernetes/admin.conf
kubeadm init phase upload-config all --config ${shellQuote(initConfig)} > /dev/null`;
}
