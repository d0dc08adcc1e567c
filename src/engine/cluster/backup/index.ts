/**
 * Backup and restore of a Kubernetes cluster (kubeadm, stacked etcd): `backupCluster` writes one
 * verified archive (format.ts), `restoreCluster` brings the cluster back from it on the same or
 * new hosts. Actions like apply and reset: they open the cluster and take its lock.
 */
export { backupCluster, type BackupOptions, type BackupResult } from "./backup";
export { restoreCluster, type RestoreMode, type RestoreOptions, type RestoreResult } from "./restore";
export { specOfBackup, backupOutline, restoreOutline, hostIps, type BackupSpec } from "./backup-spec";
export { archiveName, BACKUP_FORMAT, BackupArchiveError, readBackup, type BackupManifest, type SnapshotStatus } from "./format";
