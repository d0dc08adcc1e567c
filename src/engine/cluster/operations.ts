import { Hosts, shellQuote, type ExecResult } from "../ssh";
import { runStreamed } from "./host/commands";
import type { ClusterHost } from "./host/connect";
import { openCluster, readRecord, verifiedRecord, type ClusterOptions } from "./open";
import { breakLock, type LockOwner } from "./state/lock";
import type { ClusterRecord } from "./state/record";
import { runRuntimeCommand, runtimeContextOf, runtimeHost } from "./steps";

/**
 * The cluster as it is, changing nothing (no lock): its record from its masters, with every
 * member the spec names asked whether it still holds the cluster's image — one that does not
 * (reset out of band) is reported as no member, with no step done. A member that cannot be
 * reached is reported as a warning and kept as recorded; the first master must answer.
 * Undefined when the cluster has no record (never created, or reset).
 */
export async function observeCluster(opts: ClusterOptions): Promise<ClusterRecord | undefined> {
  const ctx = await openCluster(opts, "read");
  try {
    const record = await readRecord(ctx);
    return record && (await verifiedRecord(ctx, record, { unreachable: "keep" }));
  } finally {
    await ctx.close();
  }
}

export interface HostCheck {
  ip: string;
  ok: boolean;
  /** Why not: unreachable, not a member, another image, or the runtime's check failed. */
  problem?: string;
}

export interface CheckResult {
  healthy: boolean;
  record: ClusterRecord | undefined;
  hosts: HostCheck[];
}

/** Checks every host of the spec: reachable, a member on the cluster's image, and the runtime's own check passing. */
export async function checkCluster(opts: ClusterOptions): Promise<CheckResult> {
  const ctx = await openCluster(opts, "read");
  try {
    const record = await readRecord(ctx);
    const hosts = [...ctx.hosts.values()];
    const results = await Promise.all(
      hosts.map(async (h): Promise<HostCheck> => {
        const recorded = record?.hosts.find((r) => r.ip === h.ip);
        if (!recorded?.member)
          return {
            ip: h.ip,
            ok: false,
            problem: record ? "not a member of the cluster (apply to join it)" : "the cluster does not exist (no record on its masters)",
          };
        try {
          const conn = await ctx.pool.get(h, ctx.signal);
          const cmd = ctx.runtime.command("check", runtimeHost(h), {
            ...runtimeContextOf(ctx, ctx.registry),
            action: "create",
            added: [],
            removed: [],
            rootfs: ctx.layout.current,
            healthCheck: true,
          });
          await runRuntimeCommand(
            ctx,
            conn,
            { ...cmd, command: `[ -d ${shellQuote(ctx.layout.current)} ] || { echo "no image installed" >&2; exit 1; }; ${cmd.command}` },
            "check",
            ctx.signal,
          );
          return { ip: h.ip, ok: true };
        } catch (err) {
          return { ip: h.ip, ok: false, problem: (err as Error).message };
        }
      }),
    );
    return { healthy: results.every((r) => r.ok), record, hosts: results };
  } finally {
    await ctx.close();
  }
}

export interface ExecOnHostsOptions extends Omit<ClusterOptions, "command"> {
  /** The shell command to run on every chosen host. */
  script: string;
  /** Only hosts with one of these roles. @default every host */
  roles?: string[];
  /** Only these IPs. */
  ips?: string[];
}

/** Runs a command on the cluster's hosts in parallel (as root); every host's result, then one error naming the hosts where it failed. */
export async function execOnCluster(opts: ExecOnHostsOptions): Promise<{ host: string; result: ExecResult }[]> {
  const ctx = await openCluster(opts, "read");
  try {
    let hosts: ClusterHost[] = [...ctx.hosts.values()];
    const roles = opts.roles?.map((r) => (r === "worker" ? "node" : r));
    if (roles?.length) hosts = hosts.filter((h) => h.roles.some((r) => roles.includes(r)));
    if (opts.ips?.length) hosts = hosts.filter((h) => opts.ips!.includes(h.ip));
    if (hosts.length === 0)
      throw new Error(`no host of cluster ${ctx.spec.name} has ${opts.roles?.length ? `role ${opts.roles.join(" or ")}` : "the given IPs"}`);
    const results = await new Hosts(hosts).parallelMap(
      async (h, signal) => {
        const conn = await ctx.pool.get(h, signal);
        return {
          host: h.ip,
          result: await runStreamed(conn, { command: opts.script, env: {}, step: "exec", timeoutMs: ctx.spec.timeouts.command * 1000, emit: ctx.emit, signal }),
        };
      },
      { limit: ctx.spec.parallelism, ...(ctx.signal ? { signal: ctx.signal } : {}) },
    );
    return results;
  } finally {
    await ctx.close();
  }
}

/** Breaks the cluster's lock on its first master (the user judged it stale); returns who held it. */
export async function unlockCluster(opts: ClusterOptions): Promise<LockOwner | undefined> {
  const ctx = await openCluster(opts, "read");
  try {
    return await breakLock(await ctx.pool.get(ctx.firstMaster, ctx.signal), ctx.layout);
  } finally {
    await ctx.close();
  }
}
