import * as pulumi from "@pulumi/pulumi";
import type { ClusterArgs } from "./cluster-args";
import { SECRET_CLUSTER_ARGS, withSecretClusterArgs } from "./cluster-backup";

/* Serialised into the stack's state as a closure: it captures nothing but `require` (see cluster.ts). */
const restoreProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    return require("sealant/provider/impl/cluster-restore").check(olds, news);
  },
  async diff(id, olds, news) {
    return require("sealant/provider/impl/cluster-restore").diff(id, olds, news);
  },
  async create(inputs) {
    return require("sealant/provider/impl/cluster-restore").create(inputs);
  },
  async update(id, olds, news) {
    return require("sealant/provider/impl/cluster-restore").update(id, olds, news);
  },
};

export interface ClusterRestoreArgs extends ClusterArgs {
  /** The archive to restore from (a `ClusterBackup`'s `archive`, or a path `sealant backup` printed), or `oci://REF` for one pushed (a `ClusterBackup`'s `artifact`). */
  from: pulumi.Input<string>;
  /** Any value; a new one restores again from the same archive. */
  trigger?: pulumi.Input<string>;
}

/**
 * A restore of a Kubernetes cluster from a backup archive (the same arguments as its `Cluster`,
 * plus `from`): created, it restores (`sealant restore`: in place when the hosts run the backup's
 * cluster, onto new hosts otherwise); a new `from` or `trigger` restores again. The preview shows
 * `plan` (in place or onto which hosts) without connecting to a host. Deleting it changes nothing
 * on the cluster.
 */
export class ClusterRestore extends pulumi.dynamic.Resource {
  /** What preview said the restore would do (computed without SSH). */
  declare readonly plan: pulumi.Output<string>;
  /** `in-place` or `new-hosts`: what the restore found and did. */
  declare readonly mode: pulumi.Output<string>;
  /** The archive restored from, its digest `sha256:...`. */
  declare readonly archiveSha256: pulumi.Output<string>;
  /** The etcd revision the cluster was restored to (the snapshot's). */
  declare readonly etcdRevision: pulumi.Output<number>;
  /** When the backup was taken (ISO 8601). */
  declare readonly backupCreatedAt: pulumi.Output<string>;
  /** The hosts restored onto. */
  declare readonly restoredHosts: pulumi.Output<string[]>;
  /** What the restore did. */
  declare readonly restorePlan: pulumi.Output<string[]>;

  constructor(name: string, args: ClusterRestoreArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      restoreProvider,
      name,
      {
        ...withSecretClusterArgs(args),
        plan: undefined,
        mode: undefined,
        archiveSha256: undefined,
        etcdRevision: undefined,
        backupCreatedAt: undefined,
        restoredHosts: undefined,
        restorePlan: undefined,
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: [...SECRET_CLUSTER_ARGS] }),
      "sealant",
      "ClusterRestore",
    );
  }
}
