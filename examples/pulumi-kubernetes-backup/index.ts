// Day two of a Kubernetes cluster in one program: the cluster, a workload on it through its own
// `k8s.Provider`, a backup (etcd snapshot, certificates, kubeadm configuration; its digests are
// outputs), and a restore that runs when an archive is named. `pulumi preview` shows the restore's
// plan (in place on the backup's own hosts, or onto new ones) without connecting to a host.
//
//   pulumi config set image example/hello:v1.31.4@sha256:...
//   pulumi config set --path 'masters[0]' 10.231.1.11
//   pulumi config set --path 'workers[0]' 10.231.1.12
//   pulumi config set knownHosts /path/to/known_hosts
//   pulumi config set --secret sshPrivateKey -- "$(cat key)"
//   pulumi config set backupDir /var/backups/k8s
//   pulumi up                                            # cluster, workload, backup
//   pulumi config set backupTrigger "$(date -u +%F)"     # a new backup on the next up
//   pulumi config set restoreFrom "$(pulumi stack output archive)" && pulumi up   # restore
//
// Without Pulumi, the same archive restores with `sealant restore --from ARCHIVE`: it carries the
// cluster's spec (hosts, SSH settings), so no Clusterfile is needed.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { KubernetesCluster } from "sealant";

const config = new pulumi.Config();
const clusterName = config.get("clusterName") ?? `k8s-${pulumi.getStack()}`;
const image = config.require("image");
const masters = config.requireObject<string[]>("masters");
const workers = config.getObject<string[]>("workers") ?? [];
const ssh = { user: config.get("sshUser") ?? "root", privateKey: config.requireSecret("sshPrivateKey"), knownHosts: config.require("knownHosts") };

const cluster = new KubernetesCluster("kubernetes", { clusterName, image, masters, workers, ssh });
const provider = cluster.provider;

const ns = new k8s.core.v1.Namespace("web", { metadata: { name: "web" } }, { provider });
const greeting = new k8s.core.v1.ConfigMap("greeting", { metadata: { namespace: ns.metadata.name }, data: { message: "hello from sealant" } }, { provider });

// Taken once the workload is there; a new backupTrigger takes another. A ClusterBackup with the
// cluster's own arguments (new ClusterBackup(name, { ...clusterArgs, to }) is the same, by hand).
const backup = cluster.backup("backup", { to: config.require("backupDir"), trigger: config.get("backupTrigger") }, { dependsOn: [greeting] });

// Restores when created, and again when restoreFrom changes; deleting it changes nothing on the cluster.
const restoreFrom = config.get("restoreFrom") ?? "";
const restore = restoreFrom === "" ? undefined : cluster.restore("restore", { from: restoreFrom }, { dependsOn: [backup] });

/** The backup's archive (mode 0600: it holds the cluster's keys) and its digest. */
export const archive = backup.archive;
export const archiveSha256 = backup.sha256;
export const etcdRevision = backup.snapshotRevision;
/** What the last restore did: in-place or new-hosts, and the etcd revision it brought back. */
export const restoreMode = restore?.mode;
export const restoredRevision = restore?.etcdRevision;
export const kubeconfig = cluster.kubernetes.kubeconfig;
