import type { ClusterHost } from "./host/connect";
import { factsOf, openCluster, readRecord, type ClusterOptions, type OpenCluster } from "./open";
import { isMaster, type MasterCertificates, type ObservedCertificates } from "./plan";
import type { CertificateReport } from "./runtime";
import type { ClusterRecord } from "./state/record";
import { runtimeHost } from "./steps";
import { stepContext } from "./steps/kind";

/**
 * The masters' control-plane certificates, read from each (one read-only command per master):
 * what the planner plans renewals and SAN updates from, what `sealant check` reports and what
 * the Cluster resource outputs (and `pulumi refresh` updates). A master that cannot be reached
 * is left out with a warning. Undefined for a runtime without certificates.
 */
export async function observeCertificates(
  ctx: OpenCluster,
  masters: readonly ClusterHost[],
  record?: ClusterRecord,
): Promise<ObservedCertificates | undefined> {
  const certs = ctx.runtime.certificates;
  if (!certs || masters.length === 0) return undefined;
  const observedAt = new Date().toISOString();
  // The image's own kubeadm configuration takes part in the SANs wanted (rendered as for the first master).
  await factsOf(ctx, [ctx.firstMaster]);
  const sc = stepContext(ctx, { plan: { cluster: ctx.spec.name, actions: [], phases: [], summary: [] }, added: [], removed: [], sent: new Map() });
  const files = await sc.runtimeFiles(ctx.firstMaster);
  const rctx = sc.runtimeContext("create", ctx.layout.current, files);
  const read = await Promise.all(
    masters.map(async (h): Promise<MasterCertificates | undefined> => {
      try {
        const conn = await ctx.pool.get(h, ctx.signal);
        const r = await conn.run(certs.read, { sudo: true, timeoutMs: 60_000, ...(ctx.signal ? { signal: ctx.signal } : {}) });
        if (r.code !== 0) throw new Error(`reading its certificates exited ${r.code}: ${r.stderr.trim().split("\n").slice(-3).join(" ")}`);
        const { certificates, apiServerSANs } = certs.parse(r.stdout);
        if (certificates.length === 0) return undefined;
        const hostname = record?.hosts.find((x) => x.ip === h.ip)?.hostname ?? ctx.facts.get(h.ip)?.hostname ?? "";
        return { ip: h.ip, certificates, apiServerSANs, wantedSANs: certs.wantedSANs(runtimeHost(h), hostname, rctx) };
      } catch (err) {
        ctx.emit({ type: "warning", host: h.ip, text: `its certificates could not be read: ${(err as Error).message}` });
        return undefined;
      }
    }),
  );
  return { observedAt, renewBeforeSeconds: certs.renewBeforeSeconds(rctx), masters: read.filter((m): m is MasterCertificates => m !== undefined) };
}

/**
 * The record's members that are masters the spec keeps (whose certificates there are to read): a
 * master being removed is not asked — it may be the powered-off one a forced removal is for.
 */
export function recordedMasters(ctx: OpenCluster, record: ClusterRecord | undefined): ClusterHost[] {
  const members = new Set((record?.hosts ?? []).filter((h) => h.member && isMaster(h)).map((h) => h.ip));
  const kept = new Set(ctx.desired.hosts.map((h) => h.ip));
  return [...ctx.hosts.values()].filter((h) => isMaster(h) && members.has(h.ip) && kept.has(h.ip));
}

/** Every certificate of every master, with its days left when read, soonest first per master. */
export function certificateReports(observed: ObservedCertificates | undefined): CertificateReport[] {
  if (!observed) return [];
  const at = Date.parse(observed.observedAt);
  return observed.masters.flatMap((m) => m.certificates.map((c) => ({ host: m.ip, ...c, daysLeft: Math.floor((Date.parse(c.notAfter) - at) / 86_400_000) })));
}

/** The running cluster's certificates, changing nothing (no lock): for `sealant check` and a refresh. */
export async function clusterCertificates(opts: ClusterOptions): Promise<{ observed: ObservedCertificates | undefined; reports: CertificateReport[] }> {
  const ctx = await openCluster(opts, "read");
  try {
    if (!ctx.runtime.certificates) return { observed: undefined, reports: [] };
    const record = await readRecord(ctx);
    const observed = await observeCertificates(ctx, recordedMasters(ctx, record), record);
    return { observed, reports: certificateReports(observed) };
  } finally {
    await ctx.close();
  }
}
