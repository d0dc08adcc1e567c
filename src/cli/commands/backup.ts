import { backupCluster, hostIps, restoreCluster, specOfBackup, type RestoreResult } from "../../engine/cluster/backup";
import { OCI_SCHEME, pullBackupToHome, pushBackup } from "../../engine/cluster/backup/oci";
import { Progress } from "../progress";
import { parse } from "../args";
import { UsageError } from "../errors";
import { printJson } from "../format";
import { ClusterPrinter, seconds } from "../cluster-output";
import type { Command } from "./command";
import {
  CLUSTERFILE_HELP,
  SESSION_HELP,
  OUTPUT_HELP,
  withVerbose,
  withCluster,
  withDeadline,
  confirm,
  clusterOptions,
  noPositionals,
  openSession,
  type CommonValues,
} from "./cluster-common";

/* backup and restore of a Kubernetes cluster's etcd, certificates and kubeadm configuration. */
const backupUsage = `Usage: sealant backup [-f Clusterfile] --to DIR [--push REF] [--dry-run] [--json] [OPTIONS]

Back the cluster up: a consistent etcd snapshot from a healthy master (checked with etcdctl
snapshot status), the master's /etc/kubernetes/pki, the kubeadm configuration and the cluster
spec, as one archive DIR/<cluster>-<time>.sealant-backup.tar.gz whose manifest records every
file's sha256; it is read back and verified before it gets its name. The archive holds the
cluster's private keys: it is written with mode 0600; keep it secret. With --push it is also
pushed to an OCI registry as an artifact whose one layer is the archive (its digest the
archive's sha256): keep that repository private too.

${CLUSTERFILE_HELP}
      --to DIR                 the directory the archive is written into (made when missing)
      --push REF               also push it to registry/repository:tag (sealant login for
                               credentials); restore with --from oci://REF
      --dry-run                print the plan and change nothing
      --json                   print {plan, archive, sha256, size, source, snapshot, pushed} as JSON
${SESSION_HELP}
${OUTPUT_HELP}`;

export const backup: Command = {
  usage: backupUsage,
  async run(args, signal) {
    const flags = {
      ...withVerbose,
      to: { type: "string" },
      push: { type: "string" },
      "dry-run": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    } as const;
    const { values, positionals } = parse(args, flags, backupUsage);
    noPositionals(positionals, "backup", backupUsage);
    const to = values.to;
    if (!to) throw new UsageError(`backup needs --to DIR: where the archive is written\n\n${backupUsage}`);
    await withCluster(values, async ({ spec, session, events, progress }) => {
      const started = Date.now();
      const push = values.push;
      const pushLine = push === undefined ? [] : [`push the archive to ${push.replace(OCI_SCHEME, "")} (an OCI artifact)`];
      const taken = await withDeadline(signal, spec, "the backup", (s) =>
        backupCluster({
          ...clusterOptions(session, spec, events, s, "sealant backup"),
          to,
          dryRun: values["dry-run"],
          onPlan: (plan) => progress.line(`backup of cluster ${spec.name}:\n${[...plan, ...pushLine].map((l) => `  ${l}`).join("\n")}`),
        }),
      );
      const r = { ...taken, plan: [...taken.plan, ...pushLine] };
      const pushed = push !== undefined && !r.dryRun ? await pushBackup(session, r.archive!, push, signal) : undefined;
      if (values.json) return printJson({ ...r, ...(pushed ? { pushed } : {}) });
      if (r.dryRun) return void process.stdout.write(`backup of cluster ${spec.name} (dry run, nothing done):\n${r.plan.map((l) => `  ${l}`).join("\n")}\n`);
      process.stdout.write(
        `backed up cluster ${spec.name} in ${seconds(Date.now() - started)}: ${r.archive}\n` +
          `  sha256:${r.sha256} (${r.size} bytes, mode 0600: it holds the cluster's private keys)\n` +
          `  etcd snapshot from ${r.source}: revision ${r.snapshot!.revision}, ${r.snapshot!.totalKey} keys, sha256:${r.snapshot!.sha256}\n` +
          (pushed ? `  pushed: ${pushed.reference} (restore with --from oci://${pushed.reference})\n` : ""),
      );
    });
  },
};

const restoreUsage = `Usage: sealant restore --from ARCHIVE [-f Clusterfile] [--dry-run] [--json] [OPTIONS]

Bring the cluster back from an archive of sealant backup (verified against its manifest first).
Without -f the cluster is the one the archive's spec names (its hosts, SSH settings and image):
a key or known_hosts file it names by path must still be there. With -f, the hosts of that
Clusterfile. On hosts that run the cluster (its CA the backup's): the control plane is stopped
on every master, etcd restored from the snapshot into a fresh data directory on each, the
control plane started, every kubelet restarted. On new hosts (the first master has no control
plane): the backup's CAs and service-account keys go onto the first master, the cluster is
created as sealant apply creates it, then etcd is restored the same way. Nodes no host of the
spec has are deleted. The plan is shown first; the spec's secrets never are.

      --from ARCHIVE           the archive sealant backup wrote, or oci://REF for one it
                               pushed (pulled into $SEALANT_HOME/backups first, its digest
                               checked)
  -f, --file FILE              restore onto the hosts of this Clusterfile instead of the
                               archive's own spec
      --dry-run                print the plan and change nothing
      --json                   print {mode, spec, hosts, plan, sha256, backup} as JSON
  -y, --yes                    do not ask for confirmation on a terminal
${SESSION_HELP}
${OUTPUT_HELP}`;

type ClusterRun = Parameters<typeof withCluster>[1];

/** Like withCluster, with the spec the archive carries instead of a Clusterfile. */
async function withBackupSpec(values: Omit<CommonValues, "file"> & { json: boolean }, from: string, fn: ClusterRun): Promise<void> {
  const progress = new Progress(values.quiet || values.json);
  const { spec } = await specOfBackup(from);
  const session = await openSession({ ...values, file: from }); // the session reads the registry options only
  try {
    await fn({ spec, session, progress, events: new ClusterPrinter(progress, values.verbose === true, hostIps(spec)) });
  } finally {
    session.close();
  }
}

export const restore: Command = {
  usage: restoreUsage,
  async run(args, signal) {
    const flags = {
      ...withVerbose,
      file: { type: "string", short: "f" },
      from: { type: "string" },
      "dry-run": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      yes: { type: "boolean", short: "y", default: false },
    } as const;
    const { values, positionals } = parse(args, flags, restoreUsage);
    noPositionals(positionals, "restore", restoreUsage);
    const from = values.from;
    if (!from) throw new UsageError(`restore needs --from ARCHIVE: the archive sealant backup wrote\n\n${restoreUsage}`);
    const archive = from.startsWith(OCI_SCHEME) ? await pulled(values, from, signal) : from;
    const specFrom = values.file === undefined ? "backup" : "clusterfile";
    const run: ClusterRun = async ({ spec, session, events, progress }) => {
      const started = Date.now();
      const options = { ...clusterOptions(session, spec, events, signal, "sealant restore"), from: archive };
      const preview = await restoreCluster({ ...options, dryRun: true });
      const onto = specFrom === "backup" ? "the hosts of the backup's own spec" : `the hosts of ${values.file}`;
      const shown = `restore of cluster ${spec.name} (${preview.mode}) onto ${onto}:\n${preview.plan.map((l) => `  ${l}`).join("\n")}\n`;
      const json = (r: RestoreResult) =>
        printJson({ mode: r.mode, spec: specFrom, hosts: r.hosts, plan: r.plan, dryRun: r.dryRun, sha256: r.sha256, backup: r.backup });
      if (values["dry-run"]) return values.json ? json(preview) : void process.stdout.write(shown);
      progress.line(shown.trimEnd());
      if (!(await confirm(`Restore cluster ${spec.name}? Everything its etcd holds now is replaced by the backup's.`, values.yes)))
        throw new Error("not confirmed: nothing changed");
      const r = await withDeadline(signal, spec, "the restore", (s) => restoreCluster({ ...options, signal: s }));
      if (values.json) return json(r);
      process.stdout.write(
        `restored cluster ${spec.name} (${r.mode}) on ${r.hosts.join(", ")} in ${seconds(Date.now() - started)} from the backup of ${r.backup.createdAt} (etcd revision ${r.backup.etcd.revision})\n`,
      );
    };
    if (values.file !== undefined) await withCluster({ ...values, file: values.file }, run);
    else await withBackupSpec(values, archive, run);
  },
};

/** A pushed backup pulled into $SEALANT_HOME/backups, said on stderr. */
async function pulled(values: Omit<CommonValues, "file"> & { json: boolean }, from: string, signal?: AbortSignal): Promise<string> {
  const session = await openSession({ ...values, file: from });
  try {
    const path = await pullBackupToHome(session, from, signal);
    new Progress(values.quiet || values.json).line(`pulled ${from} to ${path}`);
    return path;
  } finally {
    session.close();
  }
}
