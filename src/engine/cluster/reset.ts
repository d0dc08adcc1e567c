import { HostsError } from "../ssh";
import { addDesiredHostsTo, addRecordedHostsFor, factsOf, lockCluster, openCluster, readRecord, type ClusterOptions } from "./open";
import { planReset, type Plan } from "./plan";
import type { ClusterRecord } from "./state/record";
import { executePlan, stepRunner } from "./steps";

export interface ResetOptions extends ClusterOptions {
  /** Hosts that cannot be reached are left out (their files stay) instead of failing the reset. */
  force?: boolean;
}

/**
 * Resets the cluster: every host the record or the spec names runs the runtime's reset, then
 * sealant removes its data root (registry, state and lock included). Safe to re-run: a host
 * with nothing left has nothing to do.
 */
export async function resetCluster(opts: ResetOptions): Promise<{ plan: Plan; skipped: string[] }> {
  const ctx = await openCluster(opts);
  let release: (() => Promise<void>) | undefined;
  try {
    release = await lockCluster(ctx, opts.command ?? "sealant reset");
    const record = (await readRecord(ctx)) ?? emptyRecord(ctx.spec.name);
    addRecordedHostsFor(ctx, record);
    addDesiredHostsTo(ctx, record);
    const skipped: string[] = [];
    try {
      await factsOf(
        ctx,
        record.hosts.map((h) => ctx.hosts.get(h.ip)!),
      );
    } catch (err) {
      if (!(err instanceof HostsError) || !opts.force) throw err;
      skipped.push(...err.hosts);
      for (const ip of skipped) ctx.emit({ type: "warning", host: ip, text: "unreachable: left out of the reset (--force); its files stay" });
      record.hosts = record.hosts.filter((h) => !skipped.includes(h.ip));
    }
    const plan = planReset(record, ctx.desired.plugins);
    await executePlan({
      plan,
      record,
      runStep: stepRunner(ctx, {
        plan,
        added: [],
        removed: record.hosts.map((h) => h.ip),
        ...(ctx.registry ? { registry: ctx.registry } : {}),
        sent: new Map(),
      }),
      // The data roots go away with the reset (record and lock with them): nothing to write.
      persist: async () => undefined,
      parallelism: ctx.spec.parallelism,
      emit: ctx.emit,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    return { plan, skipped };
  } finally {
    // Gone with the data root after a complete reset; released explicitly when it stopped halfway.
    await release?.().catch(() => undefined);
    await ctx.close();
  }
}

function emptyRecord(name: string): ClusterRecord {
  return { version: 1, generation: 0, name, image: "", imageDigest: "", configDigest: "", specDigest: "", runtime: "", updatedAt: "", hosts: [] };
}
