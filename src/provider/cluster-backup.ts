import * as pulumi from "@pulumi/pulumi";
import type { ClusterArgs } from "./cluster-args";

/* Serialised into the stack's state as a closure: it captures nothing but `require` (see cluster.ts). */
const backupProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    return require("sealant/provider/impl/cluster-backup").check(olds, news);
  },
  async diff(id, olds, news) {
    return require("sealant/provider/impl/cluster-backup").diff(id, olds, news);
  },
  async create(inputs) {
    return require("sealant/provider/impl/cluster-backup").create(inputs);
  },
  async update(id, olds, news) {
    return require("sealant/provider/impl/cluster-backup").update(id, olds, news);
  },
};

/** The cluster's arguments that can hold credentials: secret whole in a backup's or restore's state, as in the Cluster's. */
export const SECRET_CLUSTER_ARGS = ["ssh", "registry", "hosts"] as const;

/** `args` with SECRET_CLUSTER_ARGS made secret (a password given as a plain string too). */
export function withSecretClusterArgs<T extends ClusterArgs>(args: T): T {
  return {
    ...args,
    ssh: args.ssh === undefined ? undefined : pulumi.secret(args.ssh),
    registry: args.registry === undefined ? undefined : pulumi.secret(args.registry),
    hosts: pulumi.secret(args.hosts),
  };
}

export interface ClusterBackupArgs extends ClusterArgs {
  /** The local directory the archive is written into (made when missing). */
  to: pulumi.Input<string>;
  /** Any value; a new one takes a new backup (a date, a release, the cluster's image). */
  trigger?: pulumi.Input<string>;
  /**
   * Also push the archive to this OCI registry reference (`registry/repository:tag`) as an
   * artifact whose one layer is the archive; `artifact` is then its pinned reference. Keep the
   * repository private: the archive holds the cluster's keys.
   */
  push?: pulumi.Input<string>;
}

/**
 * A backup of a Kubernetes cluster (the same arguments as its `Cluster`, plus `to`): created, it
 * takes one (`sealant backup`: etcd snapshot, pki, kubeadm configuration, verified archive);
 * a new `trigger` or `to` takes a new one. Deleting it keeps the archive. Restore with
 * a `ClusterRestore` (`from: backup.archive`) or `sealant restore --from <archive>` (the archive
 * carries the cluster's spec: no Clusterfile needed). The archive holds the cluster's keys.
 */
export class ClusterBackup extends pulumi.dynamic.Resource {
  /** The archive's path (mode 0600). */
  declare readonly archive: pulumi.Output<string>;
  /** The archive's digest, `sha256:...`. */
  declare readonly sha256: pulumi.Output<string>;
  declare readonly size: pulumi.Output<number>;
  /** The master the etcd snapshot was taken on. */
  declare readonly source: pulumi.Output<string>;
  declare readonly snapshotRevision: pulumi.Output<number>;
  declare readonly snapshotKeys: pulumi.Output<number>;
  /** The etcd snapshot's digest, `sha256:...`. */
  declare readonly snapshotSha256: pulumi.Output<string>;
  /** What the backup did. */
  declare readonly backupPlan: pulumi.Output<string[]>;
  /** With `push`: `registry/repository@sha256:...`, which a ClusterRestore takes as `from: "oci://" + artifact`; else "". */
  declare readonly artifact: pulumi.Output<string>;

  constructor(name: string, args: ClusterBackupArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      backupProvider,
      name,
      {
        ...withSecretClusterArgs(args),
        archive: undefined,
        sha256: undefined,
        size: undefined,
        source: undefined,
        snapshotRevision: undefined,
        snapshotKeys: undefined,
        snapshotSha256: undefined,
        backupPlan: undefined,
        artifact: undefined,
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: [...SECRET_CLUSTER_ARGS] }),
      "sealant",
      "ClusterBackup",
    );
  }
}
