/**
 * The `ClusterBackup` dynamic provider's implementation (no Pulumi import; ../cluster-backup.ts
 * only `require`s it). Creating the resource takes a backup; a changed `to` or `trigger` replaces
 * it, which takes a new one. Deleting it leaves the archive where it is: backups outlive the
 * program that made them.
 */
import { backupCluster, type BackupResult } from "../../engine/cluster/backup";
import { pushBackup } from "../../engine/cluster/backup/oci";
import { formatProblem, validateClusterSpec, type ClusterSpec } from "../../engine/cluster/spec";
import { Session } from "../../engine/session";
import { specInputOf, type ClusterInputs } from "./cluster-inputs";
import { containsUnknown } from "./unknown";

export interface ClusterBackupInputs extends ClusterInputs {
  /** The local directory the archive is written into. */
  to: string;
  /** Any value; a new one takes a new backup (e.g. a date, or the image the cluster runs). */
  trigger?: string;
  /** Also push the archive there (`registry/repository:tag`) as an OCI artifact. */
  push?: string;
}

export interface ClusterBackupOutputs {
  archive: string;
  sha256: string;
  size: number;
  source: string;
  snapshotRevision: number;
  snapshotKeys: number;
  snapshotSha256: string;
  backupPlan: string[];
  /** The pushed artifact, pinned (`registry/repository@sha256:...`); "" without `push`. */
  artifact: string;
}

const REPLACE_ON = ["to", "trigger", "name", "push"] as const;

function specOf(inputs: ClusterBackupInputs): { spec?: ClusterSpec; failures: { property: string; reason: string }[] } {
  const { to: _t, trigger: _g, push: _p, ...cluster } = inputs;
  const r = validateClusterSpec(specInputOf(cluster as ClusterInputs), { source: "ClusterBackup inputs" });
  return r.spec ? { spec: r.spec, failures: [] } : { failures: r.problems.map((p) => ({ property: "", reason: formatProblem(p) })) };
}

export async function check(_olds: ClusterBackupInputs | undefined, news: ClusterBackupInputs) {
  if (containsUnknown(news)) return { inputs: news };
  if (typeof news.to !== "string" || news.to === "")
    return { inputs: news, failures: [{ property: "to", reason: "ClusterBackup inputs: to: the directory the archive is written into is missing" }] };
  const { failures } = specOf(news);
  return failures.length > 0 ? { inputs: news, failures } : { inputs: news };
}

export async function diff(_id: string, olds: ClusterBackupInputs, news: ClusterBackupInputs) {
  const replaces = REPLACE_ON.filter((k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null));
  return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
}

export async function create(inputs: ClusterBackupInputs): Promise<{ id: string; outs: ClusterBackupInputs & ClusterBackupOutputs }> {
  const { spec, failures } = specOf(inputs);
  if (!spec) throw new Error(failures.map((f) => f.reason).join("\n"));
  const session = await Session.open();
  let r: BackupResult;
  let artifact = "";
  try {
    r = await backupCluster({ session, spec, to: inputs.to, command: "pulumi up (ClusterBackup)" });
    if (inputs.push) artifact = (await pushBackup(session, r.archive!, inputs.push)).reference;
  } finally {
    session.close();
  }
  const outs: ClusterBackupOutputs = {
    archive: r.archive!,
    sha256: `sha256:${r.sha256!}`,
    size: r.size!,
    source: r.source!,
    snapshotRevision: r.snapshot!.revision,
    snapshotKeys: r.snapshot!.totalKey,
    snapshotSha256: `sha256:${r.snapshot!.sha256}`,
    backupPlan: inputs.push ? [...r.plan, `push the archive to ${inputs.push} (an OCI artifact)`] : r.plan,
    artifact,
  };
  return { id: outs.sha256, outs: { ...inputs, ...outs } };
}

/** The spec may change (hosts join, keys rotate) without a new backup: only the state follows. */
export async function update(_id: string, olds: ClusterBackupInputs & ClusterBackupOutputs, news: ClusterBackupInputs) {
  const { archive, sha256, size, source, snapshotRevision, snapshotKeys, snapshotSha256, backupPlan, artifact } = olds;
  return { outs: { ...news, archive, sha256, size, source, snapshotRevision, snapshotKeys, snapshotSha256, backupPlan, artifact: artifact ?? "" } };
}
