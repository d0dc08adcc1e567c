import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hosts } from "../../ssh";
import { applyCluster } from "../apply";
import type { ClusterHost } from "../host/connect";
import { factsOf, lockCluster, openCluster, readRecord, type ClusterOptions, type OpenCluster } from "../open";
import { CA_FILES, readBackup, type BackupManifest } from "./format";
import { forgetOtherNodes, restoreMember, startControlPlane, stopControlPlane, uploadOwnConfig } from "./host-shell";
import { nodeSettings } from "./node-settings";

export interface RestoreOptions extends ClusterOptions {
  /** The archive `sealant backup` wrote. */
  from: string;
  /** Read and verify the archive, connect and show the plan; change nothing. */
  dryRun?: boolean;
  /** Told the plan before anything runs. */
  onPlan?(mode: RestoreMode, plan: string[]): void;
}

/**
 * `in-place`: the spec's hosts run the cluster (its first master has the control plane and the
 * backup's CA): etcd goes back to the snapshot under the running nodes. `new-hosts`: the first
 * master has no control plane yet: it is given the backup's CAs and service-account keys, the
 * cluster is created on the spec's hosts, then etcd goes back to the snapshot there.
 */
export type RestoreMode = "in-place" | "new-hosts";

export interface RestoreResult {
  mode: RestoreMode;
  plan: string[];
  dryRun: boolean;
  /** The backup's manifest (cluster, time, etcd revision, files). */
  backup: BackupManifest;
  /** The archive's sha256 (as read and verified for this restore). */
  sha256: string;
  /** The hosts restored onto, in the spec's order. */
  hosts: string[];
}

const RESTORE_IN = "restore-in";

export async function restoreCluster(opts: RestoreOptions): Promise<RestoreResult> {
  const scratch = await mkdtemp(join(tmpdir(), "sealant-restore-"));
  try {
    const snapshot = join(scratch, "snapshot.db");
    const read = await readBackup(opts.from, { keep: (p) => p.startsWith("pki/"), snapshotTo: snapshot });
    const caData = read.kept.get("pki/ca.crt");
    if (!caData) throw new Error(`restore: ${opts.from} holds no pki/ca.crt`);
    const { manifest } = read;
    const ctx = await openCluster(opts);
    try {
      if (ctx.runtime.kind !== "kubernetes")
        throw new Error(`restore: the cluster's image runs the ${ctx.runtime.kind} runtime; sealant restores Kubernetes clusters`);
      await factsOf(ctx, [ctx.firstMaster]);
      const mode = await modeOf(ctx, caData.toString("utf8"), opts.from);
      const plan = restorePlan(ctx, manifest, mode);
      if (mode === "new-hosts") {
        const created = await applyCluster({ ...opts, dryRun: true });
        plan.splice(1, 0, ...created.plan.summary.map((s) => `  create: ${s}`));
      }
      const done = { mode, plan, backup: manifest, sha256: read.sha256, hosts: [...ctx.hosts.keys()] };
      if (opts.dryRun) return { ...done, dryRun: true };
      opts.onPlan?.(mode, plan);
      if (mode === "new-hosts") {
        const conn = await ctx.pool.get(ctx.firstMaster);
        await conn.upload(
          "/etc/kubernetes/pki",
          CA_FILES.filter((f) => read.kept.has(`pki/${f}`)).map((f) => ({
            content: read.kept.get(`pki/${f}`)!,
            path: f,
            mode: f.endsWith(".key") ? 0o600 : 0o644,
          })),
          { sudo: true, ...(ctx.signal ? { signal: ctx.signal } : {}) },
        );
        await applyCluster({ ...opts, command: opts.command ?? "sealant restore" });
        // What was learnt of the hosts before the create (no record, no cluster) is stale now.
        ctx.facts.clear();
      }
      await restoreInPlace(ctx, snapshot, opts.command ?? "sealant restore");
      if (mode === "new-hosts")
        await (await ctx.pool.get(ctx.firstMaster)).run(uploadOwnConfig(`${ctx.layout.root}/kubernetes/init.yaml`), { sudo: true, timeoutMs: 300_000 });
      return { ...done, dryRun: false };
    } finally {
      await ctx.close();
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** In place when the first master runs a control plane; refused when its CA is not the backup's (its nodes would not trust the restored cluster). */
async function modeOf(ctx: OpenCluster, backupCa: string, from: string): Promise<RestoreMode> {
  const conn = await ctx.pool.get(ctx.firstMaster);
  const r = await conn.run("if [ -f /etc/kubernetes/admin.conf ]; then cat /etc/kubernetes/pki/ca.crt; fi", { sudo: true, timeoutMs: 60_000 });
  if (r.stdout.trim() === "") return "new-hosts";
  if (r.stdout.trim() !== backupCa.trim())
    throw new Error(
      `restore: the cluster on ${ctx.firstMaster.ip} has another CA than the backup ${from}: its nodes and tokens would not fit the restored etcd. ` +
        `Reset that cluster (sealant reset) to restore onto its hosts as new hosts`,
    );
  return "in-place";
}

function restorePlan(ctx: OpenCluster, m: BackupManifest, mode: RestoreMode): string[] {
  const masters = ctx.masters.map((h) => h.ip).join(", ");
  const all = [...ctx.hosts.values()].map((h) => h.ip).join(", ");
  const from = `backup of cluster ${m.cluster} taken ${m.createdAt} on ${m.source} (etcd revision ${m.etcd.revision}, ${m.etcd.totalKey} keys)`;
  return [
    ...(mode === "new-hosts"
      ? [`put the backup's CAs and service-account keys on ${ctx.firstMaster.ip}, then create the cluster on ${all}`]
      : [`restore in place on ${all} from the ${from}`]),
    ...(mode === "new-hosts" ? [`restore from the ${from}`] : []),
    `stop the control plane on ${masters} (static pod manifests moved aside)`,
    `restore etcd from the snapshot into a fresh data directory on ${masters} (the replaced data kept as .sealant-previous-member)`,
    `start the control plane on ${masters}`,
    `restart the kubelet on ${all}`,
    "delete nodes no host of the spec has; set the spec's labels and taints on every node",
    ...(mode === "new-hosts"
      ? [`upload the new cluster's kubeadm and kubelet configuration (kubeadm init phase upload-config) from ${ctx.firstMaster.ip}`]
      : []),
  ];
}

async function restoreInPlace(ctx: OpenCluster, snapshot: string, command: string): Promise<void> {
  const release = await lockCluster(ctx, command);
  try {
    const record = await readRecord(ctx);
    if (!record) throw new Error(`restore: cluster ${ctx.spec.name} has no record on ${ctx.firstMaster.ip}`);
    const hosts = [...ctx.hosts.values()];
    await factsOf(ctx, hosts);
    const upload = `${ctx.layout.root}/${RESTORE_IN}`;
    const sig = ctx.signal ? { signal: ctx.signal } : {};
    const each = (list: ClusterHost[], fn: (h: ClusterHost) => Promise<void>) =>
      new Hosts(list).parallelEach(async (h) => fn(h), { limit: ctx.spec.parallelism, ...sig });
    const members = new Map<string, { name: string; url: string }>();
    await each(ctx.masters, async (m) => {
      const conn = await ctx.pool.get(m);
      await conn.upload(upload, [{ local: snapshot, path: "snapshot.db", mode: 0o600 }], { sudo: true, ...sig });
      const r = await conn.run(stopControlPlane(), { sudo: true, timeoutMs: 600_000, ...sig });
      const [name, url] = r.stdout.trim().split("\n").pop()!.split(" ");
      members.set(m.ip, { name: name!, url: url! });
    });
    const initialCluster = ctx.masters.map((m) => `${members.get(m.ip)!.name}=${members.get(m.ip)!.url}`).join(",");
    const token = `sealant-restore-${Date.now().toString(36)}`;
    await each(ctx.masters, async (m) => {
      await (
        await ctx.pool.get(m)
      ).run(restoreMember(`${upload}/snapshot.db`, members.get(m.ip)!, initialCluster, token), { sudo: true, timeoutMs: 600_000, ...sig });
    });
    await each(ctx.masters, async (m) => {
      await (await ctx.pool.get(m)).run(startControlPlane(upload), { sudo: true, timeoutMs: 120_000, ...sig });
    });
    // Every kubelet registers again with the restored API (its Node may be missing from the snapshot) and drops pods it no longer has.
    const nodes = hosts.filter((h) => record.hosts.some((r) => r.ip === h.ip && r.member));
    await each(nodes, async (h) => {
      await (
        await ctx.pool.get(h)
      ).run("if [ -f /etc/kubernetes/kubelet.conf ]; then systemctl restart kubelet; fi", { sudo: true, timeoutMs: 120_000, ...sig });
    });
    const first = await ctx.pool.get(ctx.firstMaster);
    await first.run(`export KUBECONFIG=/etc/kubernetes/admin.conf\n${forgetOtherNodes(hosts.map((h) => h.ip))}`, { sudo: true, timeoutMs: 300_000, ...sig });
    for (const h of ctx.desired.hosts) {
      if (!record.hosts.some((r) => r.ip === h.ip && r.member)) continue;
      const c = nodeSettings(h);
      if (c) await first.run(c, { sudo: true, timeoutMs: 300_000, ...sig });
    }
  } finally {
    await release().catch(() => undefined);
  }
}
