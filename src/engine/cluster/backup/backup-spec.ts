/**
 * The cluster spec a backup carries (cluster.json, the spec as the backup was given it): what a
 * restore given no Clusterfile restores onto (its hosts, SSH settings, image), and the plan a
 * restore shows before it can connect (Pulumi's preview opens no SSH connection).
 */
import { access } from "node:fs/promises";
import { dirname } from "node:path";
import { resolveKeyFiles, validateClusterSpec, ClusterSpecError, type ClusterSpec } from "../spec";
import { formatPath } from "../spec/errors";
import { BackupArchiveError, readBackup, SPEC_FILE, type BackupManifest } from "./format";

export interface BackupSpec {
  spec: ClusterSpec;
  manifest: BackupManifest;
  /** The archive's sha256. */
  sha256: string;
}

interface SshBlock {
  privateKey?: string;
  privateKeyPath?: string;
  knownHosts?: string;
  bastion?: SshBlock;
}

function sshBlocks(raw: { ssh?: SshBlock; hosts?: { ssh?: SshBlock }[] }): { block: SshBlock; path: PropertyKey[] }[] {
  const out: { block: SshBlock; path: PropertyKey[] }[] = [];
  const add = (block: SshBlock | undefined, path: PropertyKey[]) => {
    if (block === undefined || block === null) return;
    out.push({ block, path });
    if (block.bastion) out.push({ block: block.bastion, path: [...path, "bastion"] });
  };
  add(raw.ssh, ["ssh"]);
  (raw.hosts ?? []).forEach((h, i) => add(h?.ssh, ["hosts", i, "ssh"]));
  return out;
}

/**
 * The spec from the archive at `path`, verified with the archive. A key the spec names by path is
 * read from that path now (the user's key file, wherever it is kept, not the copy the backup took
 * when it was given a Clusterfile), so a key moved or deleted since is one clear error naming the
 * field and the file; a key given inline (a Pulumi program's secret) is used as the backup holds it.
 * A known_hosts file named must exist too.
 */
export async function specOfBackup(path: string): Promise<BackupSpec> {
  const read = await readBackup(path, { keep: (p) => p === SPEC_FILE });
  const text = read.kept.get(SPEC_FILE);
  if (!text) throw new BackupArchiveError(`backup ${path}: no ${SPEC_FILE} (the cluster's spec): restore it with -f Clusterfile`);
  const source = `the cluster spec in backup ${path} (${SPEC_FILE})`;
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text.toString("utf8")) as Record<string, unknown>;
  } catch {
    throw new BackupArchiveError(`backup ${path}: ${SPEC_FILE} is not JSON`);
  }
  const blocks = sshBlocks(raw as { ssh?: SshBlock; hosts?: { ssh?: SshBlock }[] });
  for (const { block } of blocks) if (block.privateKeyPath !== undefined) delete block.privateKey;
  const valid = validateClusterSpec(raw, { source });
  const hint = "put the file back, or restore with -f Clusterfile naming the hosts and their SSH settings";
  if (!valid.spec) throw new ClusterSpecError(valid.problems, source);
  const missing: { source: string; path: string; message: string }[] = [];
  await Promise.all(
    sshBlocks(valid.spec as { ssh?: SshBlock; hosts?: { ssh?: SshBlock }[] }).map(async ({ block, path: at }) => {
      if (block.knownHosts === undefined) return;
      await access(block.knownHosts).catch(() =>
        missing.push({ source, path: formatPath([...at, "knownHosts"]), message: `cannot read the known_hosts file "${block.knownHosts}": ${hint}` }),
      );
    }),
  );
  let spec: ClusterSpec;
  try {
    spec = await resolveKeyFiles(valid.spec, { baseDir: dirname(path), locate: (p) => ({ source, path: formatPath(p) }) });
  } catch (err) {
    if (!(err instanceof ClusterSpecError)) throw err;
    missing.push(...err.problems.map((p) => ({ ...p, message: `${p.message}: ${hint}` })));
    spec = valid.spec;
  }
  if (missing.length > 0) throw new ClusterSpecError(missing, source);
  return { spec, manifest: read.manifest, sha256: read.sha256 };
}

/** The IPs of a spec's hosts, in the spec's order. */
export function hostIps(spec: { hosts: readonly { ips: readonly string[] }[] }): string[] {
  return spec.hosts.flatMap((g) => g.ips);
}

/**
 * What a restore of `backup` onto `spec`'s hosts will do, said without connecting: in place when
 * the backup was taken on these hosts (the first master then runs the backup's cluster; the
 * restore checks its CA before it changes anything), onto new hosts otherwise.
 */
export function restoreOutline(
  spec: { name: string; hosts: readonly { ips: readonly string[] }[] },
  backup: { manifest: BackupManifest; hosts?: string[] },
): string {
  const hosts = hostIps(spec);
  const m = backup.manifest;
  const taken = `the backup of cluster ${m.cluster} taken ${m.createdAt} on ${m.source} (etcd revision ${m.etcd.revision}, ${m.etcd.totalKey} keys)`;
  const same =
    backup.hosts && backup.hosts.length > 0 ? backup.hosts.length === hosts.length && backup.hosts.every((h) => hosts.includes(h)) : hosts.includes(m.source);
  return same
    ? `restore cluster ${spec.name} in place on ${hosts.join(", ")} from ${taken}: etcd replaced by the snapshot on every master, every kubelet restarted`
    : `restore cluster ${spec.name} onto new hosts ${hosts.join(", ")} from ${taken}: the backup's CAs put on the first master, the cluster created there, then etcd restored from the snapshot`;
}

/** The manifest and the hosts of the spec an archive carries, for a plan (nothing of the spec is checked or resolved). */
export async function backupOutline(path: string): Promise<{ manifest: BackupManifest; hosts: string[] }> {
  const read = await readBackup(path, { keep: (p) => p === SPEC_FILE });
  let hosts: string[] = [];
  try {
    const raw = JSON.parse(read.kept.get(SPEC_FILE)?.toString("utf8") ?? "{}") as { hosts?: { ips?: unknown }[] };
    hosts = (raw.hosts ?? []).flatMap((g) => (Array.isArray(g?.ips) ? g.ips.filter((ip): ip is string => typeof ip === "string") : []));
  } catch {
    // No readable spec: the outline then goes by the master the snapshot was taken on.
  }
  return { manifest: read.manifest, hosts };
}
