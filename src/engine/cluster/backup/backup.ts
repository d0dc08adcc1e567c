import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { finished } from "node:stream/promises";
import { HostsError } from "../../ssh";
import { factsOf, lockCluster, openCluster, readRecord, type ClusterOptions, type OpenCluster } from "../open";
import type { ClusterHost } from "../host/connect";
import { archiveName, BACKUP_FORMAT, readBackup, SNAPSHOT, SPEC_FILE, type BackupFile, type BackupManifest, type SnapshotStatus } from "./format";
import { prepareBackup, removeWork, streamBackup } from "./host-shell";

export interface BackupOptions extends ClusterOptions {
  /** The local directory the archive is written into (made when missing). */
  to: string;
  /** Connect and show the plan; change nothing. */
  dryRun?: boolean;
  /** Told the plan before anything runs. */
  onPlan?(plan: string[]): void;
}

export interface BackupResult {
  /** What the backup does (or did), in order. */
  plan: string[];
  dryRun: boolean;
  /** The archive written (absent for a dry run). */
  archive?: string;
  /** The archive's sha256 and size. */
  sha256?: string;
  size?: number;
  /** The master the snapshot was taken on, and the snapshot's status and sha256. */
  source?: string;
  snapshot?: SnapshotStatus & { sha256: string };
}

/**
 * A consistent etcd snapshot from a healthy master (the first master first, then the others),
 * with what a restore needs (the pki, the kubeadm configuration, the spec), written as one archive
 * under a temp name, read back and verified against its manifest, then renamed into place.
 */
export async function backupCluster(opts: BackupOptions): Promise<BackupResult> {
  const ctx = await openCluster(opts, "read");
  let release: (() => Promise<void>) | undefined;
  try {
    if (ctx.runtime.kind !== "kubernetes")
      throw new Error(`backup: the cluster's image runs the ${ctx.runtime.kind} runtime; sealant backs up Kubernetes clusters (kubeadm's etcd)`);
    const dir = resolve(opts.to);
    const plan = [
      `take an etcd snapshot on a healthy master (${ctx.masters.map((m) => m.ip).join(", then ")}) and check it (etcdctl snapshot status)`,
      "collect /etc/kubernetes/pki, the kubeadm configuration and the cluster spec",
      `write ${join(dir, archiveName(ctx.spec.name, new Date()))} (mode 0600: it holds the cluster's private keys), verified against its manifest`,
    ];
    await factsOf(ctx, [ctx.firstMaster]);
    if (opts.dryRun) return { plan, dryRun: true };
    opts.onPlan?.(plan);
    release = await lockCluster(ctx, opts.command ?? "sealant backup");
    const record = await readRecord(ctx);
    if (!record || !record.hosts.some((h) => h.member))
      throw new Error(`backup: cluster ${ctx.spec.name} has no members on its hosts (no cluster record on ${ctx.firstMaster.ip}): nothing to back up`);
    await mkdir(dir, { recursive: true });
    const { master, status, files } = await snapshotOnSomeMaster(ctx);
    const work = `${ctx.layout.root}/backup`;
    const conn = await ctx.pool.get(master);
    const sig = ctx.signal ? { signal: ctx.signal } : {};
    try {
      const spec = Buffer.from(JSON.stringify(ctx.spec, null, 2));
      const manifest: BackupManifest = {
        format: BACKUP_FORMAT,
        cluster: ctx.spec.name,
        createdAt: new Date().toISOString(),
        image: record.image,
        source: master.ip,
        etcd: { ...status, file: SNAPSHOT },
        files: [{ path: SPEC_FILE, size: spec.length, sha256: createHash("sha256").update(spec).digest("hex") }, ...files],
      };
      await conn.upload(
        `${work}.meta`,
        [
          { content: JSON.stringify(manifest, null, 2), path: "manifest.json", mode: 0o600 },
          { content: spec, path: SPEC_FILE, mode: 0o600 },
        ],
        { sudo: true, ...sig },
      );
      const name = archiveName(ctx.spec.name, new Date(manifest.createdAt));
      const final = join(dir, name);
      const tmp = join(dir, `.${name}.tmp-${process.pid}`);
      try {
        const out = createWriteStream(tmp, { mode: 0o600 });
        const r = await conn.exec(streamBackup(work), { sudo: true, onStdout: (c) => out.write(c), maxStdoutBytes: 1 << 16, ...sig });
        out.end();
        await finished(out);
        if (r.code !== 0) throw new Error(`backup: packing the archive on ${master.ip} failed: ${r.stderr.trim().split("\n").slice(-3).join("; ")}`);
        const read = await readBackup(tmp);
        const fh = await open(tmp, "r");
        const { size } = await fh.stat();
        await fh.sync();
        await fh.close();
        await rename(tmp, final);
        const snap = files.find((f) => f.path === SNAPSHOT)!;
        ctx.emit({ type: "warning", text: `${final} holds the cluster's private keys: keep it secret` });
        return { plan, dryRun: false, archive: final, sha256: read.sha256, size, source: master.ip, snapshot: { ...status, sha256: snap.sha256 } };
      } finally {
        await rm(tmp, { force: true });
      }
    } finally {
      await conn.run(removeWork(work), { sudo: true, timeoutMs: 60_000 }).catch(() => undefined);
    }
  } finally {
    await release?.().catch(() => undefined);
    await ctx.close();
  }
}

/** The first master whose etcd is healthy and gives a snapshot; every failure named when none does. */
async function snapshotOnSomeMaster(ctx: OpenCluster): Promise<{ master: ClusterHost; status: SnapshotStatus; files: BackupFile[] }> {
  const failures: string[] = [];
  const work = `${ctx.layout.root}/backup`;
  for (const master of ctx.masters) {
    try {
      await factsOf(ctx, [master]);
      const conn = await ctx.pool.get(master);
      const r = await conn.run(prepareBackup(work, `${ctx.layout.root}/kubernetes/init.yaml`), {
        sudo: true,
        timeoutMs: 600_000,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
      const [statusLine, ...lines] = r.stdout.trim().split("\n");
      const status = JSON.parse(statusLine ?? "") as SnapshotStatus;
      if (typeof status.revision !== "number" || typeof status.totalKey !== "number")
        throw new Error(`etcdctl snapshot status gave no revision: ${statusLine}`);
      const files = lines.map((l) => {
        const [sha256, size, ...path] = l.split(" ");
        return { path: path.join(" "), size: Number(size), sha256: sha256! };
      });
      if (!files.some((f) => f.path === SNAPSHOT)) throw new Error("no snapshot was written");
      return { master, status, files };
    } catch (err) {
      if (ctx.signal?.aborted) throw err;
      const why = err instanceof HostsError ? err.message : (err as Error).message;
      failures.push(`${master.ip}: ${why.split("\n").slice(-2).join(" ")}`);
      ctx.emit({ type: "warning", host: master.ip, text: `no snapshot here: ${why}` });
    }
  }
  throw new Error(`backup: no master gave an etcd snapshot:\n  ${failures.join("\n  ")}`);
}
