/**
 * The `ClusterRestore` dynamic provider's implementation (no Pulumi import; ../cluster-restore.ts
 * only `require`s it). Creating the resource restores the cluster from `from`; a changed `from`
 * or `trigger` replaces it, which restores again. `check` plans without SSH: it reads the archive
 * on this machine when it is there (in place on the backup's hosts, or onto new ones). Deleting
 * the resource changes nothing on the cluster: a restore cannot be undone by forgetting it.
 */
import { BackupArchiveError, backupOutline, hostIps, restoreCluster, restoreOutline, type RestoreResult } from "../../engine/cluster/backup";
import { formatProblem, validateClusterSpec, type ClusterSpec } from "../../engine/cluster/spec";
import { OCI_SCHEME, pullBackupToHome } from "../../engine/cluster/backup/oci";
import { Session } from "../../engine/session";
import { specInputOf, type ClusterInputs } from "./cluster-inputs";
import { containsUnknown, isUnknown } from "./unknown";

export interface ClusterRestoreInputs extends ClusterInputs {
  /** The archive `sealant backup` (or a ClusterBackup) wrote, or `oci://REF` for one pushed. */
  from: string;
  /** Any value; a new one restores again. */
  trigger?: string;
}

export interface ClusterRestoreOutputs {
  mode: string;
  archiveSha256: string;
  etcdRevision: number;
  backupCreatedAt: string;
  restoredHosts: string[];
  restorePlan: string[];
}

const REPLACE_ON = ["from", "trigger", "name"] as const;

function specOf(inputs: ClusterRestoreInputs): { spec?: ClusterSpec; failures: { property: string; reason: string }[] } {
  const { from: _f, trigger: _g, ...cluster } = inputs;
  const r = validateClusterSpec(specInputOf(cluster as ClusterInputs), { source: "ClusterRestore inputs" });
  return r.spec ? { spec: r.spec, failures: [] } : { failures: r.problems.map((p) => ({ property: "", reason: formatProblem(p) })) };
}

/** The plan `pulumi preview` shows: from the inputs and, when it is already there, the archive (read on this machine, no SSH). */
async function planOf(spec: ClusterSpec, from: string): Promise<string> {
  if (isUnknown(from))
    return `restore cluster ${spec.name} onto ${hostIps(spec).join(", ")} from an archive known after apply: in place when these hosts run the backup's cluster, created there first otherwise`;
  if (from.startsWith(OCI_SCHEME))
    return `restore cluster ${spec.name} onto ${hostIps(spec).join(", ")} from ${from} (pulled, its digest checked, and read when the restore runs: in place when these hosts run the backup's cluster, created there first otherwise)`;
  try {
    return restoreOutline(spec, await backupOutline(from));
  } catch (err) {
    if (!(err instanceof BackupArchiveError) || !/no such file/.test(err.message)) throw err;
    return `restore cluster ${spec.name} onto ${hostIps(spec).join(", ")} from ${from} (not there yet: read and verified when the restore runs)`;
  }
}

export async function check(_olds: ClusterRestoreInputs | undefined, news: ClusterRestoreInputs) {
  if (typeof news.from !== "string" || news.from === "")
    return { inputs: news, failures: [{ property: "from", reason: "ClusterRestore inputs: from: the archive to restore from is missing" }] };
  const { from: _f, trigger: _t, plan: _p, ...cluster } = news;
  if (containsUnknown(cluster)) return { inputs: { ...news, plan: "(known after apply: some inputs are not known yet)" } };
  const { spec, failures } = specOf(news);
  if (!spec) return { inputs: news, failures };
  try {
    return { inputs: { ...news, plan: await planOf(spec, news.from) } };
  } catch (err) {
    return { inputs: news, failures: [{ property: "from", reason: `ClusterRestore inputs: from: ${(err as Error).message}` }] };
  }
}

export async function diff(_id: string, olds: ClusterRestoreInputs, news: ClusterRestoreInputs) {
  const replaces = REPLACE_ON.filter((k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null));
  return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
}

export async function create(inputs: ClusterRestoreInputs): Promise<{ id: string; outs: ClusterRestoreInputs & ClusterRestoreOutputs }> {
  const { spec, failures } = specOf(inputs);
  if (!spec) throw new Error(failures.map((f) => f.reason).join("\n"));
  const session = await Session.open();
  let r: RestoreResult;
  try {
    const from = inputs.from.startsWith(OCI_SCHEME) ? await pullBackupToHome(session, inputs.from) : inputs.from;
    r = await restoreCluster({ session, spec, from, command: "pulumi up (ClusterRestore)" });
  } finally {
    session.close();
  }
  const outs: ClusterRestoreOutputs = {
    mode: r.mode,
    archiveSha256: `sha256:${r.sha256}`,
    etcdRevision: r.backup.etcd.revision,
    backupCreatedAt: r.backup.createdAt,
    restoredHosts: r.hosts,
    restorePlan: r.plan,
  };
  return { id: `${spec.name}@${outs.archiveSha256}`, outs: { ...inputs, ...outs } };
}

/** The spec may change (hosts join, keys rotate) without restoring again: only the state follows. */
export async function update(_id: string, olds: ClusterRestoreInputs & ClusterRestoreOutputs, news: ClusterRestoreInputs) {
  const { mode, archiveSha256, etcdRevision, backupCreatedAt, restoredHosts, restorePlan } = olds;
  return { outs: { ...news, mode, archiveSha256, etcdRevision, backupCreatedAt, restoredHosts, restorePlan } };
}
