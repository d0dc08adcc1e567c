import { HostsError, shellQuote } from "../ssh";
import type { ClusterHost } from "./host/connect";
import { layersFor } from "./host/distribute";
import { platformFor } from "./host/image";
import {
  addDesiredHostsTo,
  addRecordedHostsFor,
  factsOf,
  lockCluster,
  openCluster,
  readRecord,
  recordWriter,
  verifiedRecord,
  type ClusterOptions,
  type OpenCluster,
} from "./open";
import { runtimeOutputs } from "./outputs";
import { observeCertificates, recordedMasters } from "./certificates";
import { planAsItRuns } from "./membership";
import { planCluster, shortDigest, type Plan } from "./plan";
import { DISTRIBUTE } from "./plan/kinds";
import type { RuntimeOutputs } from "./runtime";
import { specDigest } from "./spec";
import type { ClusterRecord } from "./state/record";
import { executePlan, stepRecorder, stepRunner } from "./steps";
import { throughUpgradePath } from "./upgrade-stages";
import { validateHosts } from "./validate";

export interface ApplyOptions extends ClusterOptions {
  /** Connect, read, validate and plan; change nothing. */
  dryRun?: boolean;
  /**
   * Ask every member whether it still holds what the record says (one command per host):
   * a host reset or rebuilt out of band is then set up and joined again. Off, apply trusts
   * the record and touches only the hosts its plan names.
   */
  verifyHosts?: boolean;
  /**
   * Hosts being removed that cannot be reached are removed anyway: the cluster-side part of
   * their leaving runs (on the first master: e.g. drain, delete the node) and their own steps
   * are skipped, their files left where they are. Off, an unreachable host fails the apply.
   */
  forceRemoval?: boolean;
  /** MODULE plugins (by name) run anew although not idempotent and their failed attempt saved no checkpoint. */
  retryPlugins?: readonly string[];
}

export interface ApplyResult {
  plan: Plan;
  /** The cluster's record after the apply (before it, for a dry run). */
  record: ClusterRecord | undefined;
  /** Bytes of image data sent, per host. */
  sent: Record<string, number>;
  /** What the runtime offers users (endpoint, kubeconfig: a secret); empty for a dry run. */
  outputs: RuntimeOutputs;
  dryRun: boolean;
}

/**
 * Makes the cluster match the spec: reads the cluster's record from its masters, plans,
 * validates the hosts the plan touches, then executes phase by phase, recording every step —
 * an interrupted apply re-run resumes where it stopped. Refused while another apply holds the
 * cluster's lock.
 */
export async function applyCluster(opts: ApplyOptions): Promise<ApplyResult> {
  // Several minor versions ahead: one such apply per minor (upgrade-stages.ts).
  return throughUpgradePath(opts, (spec) => applyOnce({ ...opts, spec }));
}

async function applyOnce(opts: ApplyOptions): Promise<ApplyResult> {
  const ctx = await openCluster(opts);
  let release: (() => Promise<void>) | undefined;
  try {
    await factsOf(ctx, [ctx.firstMaster]);
    if (!opts.dryRun) release = await lockCluster(ctx, opts.command ?? "sealant apply");
    const found = await readRecord(ctx);
    const current = opts.verifyHosts && found ? await verifiedRecord(ctx, found) : found;
    addRecordedHostsFor(ctx, current);
    const planned = planCluster(ctx.desired, current && { ...current, certificates: await observeCertificates(ctx, recordedMasters(ctx, current), current) });
    const involved = new Set(planned.phases.flatMap((p) => p.steps.map((s) => s.host)));
    const touched = [...ctx.hosts.values()].filter((h) => involved.has(h.ip));
    const desiredIps = new Set(ctx.desired.hosts.map((h) => h.ip));
    const unreachable = opts.forceRemoval
      ? await unreachableRemoved(
          ctx,
          touched.filter((h) => !desiredIps.has(h.ip)),
        )
      : new Set<string>();
    // Forced removals said as such; a change of masters checked against the members' quorum
    // (on the first master only: refused before a host it would touch is asked anything).
    const plan = await planAsItRuns(ctx, planned, current, unreachable);
    await factsOf(
      ctx,
      touched.filter((h) => !unreachable.has(h.ip)),
    ).catch((err: unknown) => {
      throw forceHint(err, desiredIps);
    });
    await validateHosts(ctx, plan, current);
    if (opts.dryRun) return { plan, record: current, sent: {}, outputs: {}, dryRun: true };

    const record = current ? structuredClone(current) : newRecord(ctx);
    addDesiredHostsTo(ctx, record);
    for (const r of record.hosts) {
      const hostname = ctx.facts.get(r.ip)?.hostname;
      if (hostname) r.hostname = hostname;
    }
    const memberIps = new Set((current?.hosts ?? []).filter((h) => h.member).map((h) => h.ip));
    const sent = new Map<string, number>();
    const write = recordWriter(ctx);
    await executePlan({
      plan,
      record,
      runStep: stepRunner(ctx, {
        plan,
        added: ctx.desired.hosts.filter((h) => !memberIps.has(h.ip)).map((h) => h.ip),
        removed: (current?.hosts ?? []).filter((h) => !desiredIps.has(h.ip)).map((h) => h.ip),
        ...(ctx.registry ? { registry: ctx.registry } : {}),
        sent,
        unreachable,
        ...(opts.retryPlugins ? { retryPlugins: opts.retryPlugins } : {}),
        previousSettings: new Map(
          (current?.hosts ?? []).map((h) => [h.ip, { ...(h.labels ? { labels: h.labels } : {}), ...(h.taints ? { taints: h.taints } : {}) }]),
        ),
      }),
      persist: write,
      afterStep: stepRecorder({ imageDigest: ctx.image.digest, configDigest: ctx.desired.configDigest, desired: ctx.desired }),
      parallelism: ctx.spec.parallelism,
      emit: ctx.emit,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    const distributed = plan.phases.flatMap((p) => p.steps.filter((s) => s.kind === DISTRIBUTE).map((s) => s.host));
    await pruneOldImages(ctx, distributed);
    const unchanged =
      plan.phases.length === 0 && current !== undefined && current.imageDigest === ctx.image.digest && current.configDigest === ctx.desired.configDigest;
    if (!unchanged) {
      finish(ctx, record);
      record.generation++;
      await write(record, true);
    }
    return { plan, record, sent: Object.fromEntries(sent), outputs: await runtimeOutputs(ctx), dryRun: false };
  } finally {
    await release?.().catch((err: unknown) =>
      ctx.emit({ type: "warning", host: ctx.firstMaster.ip, text: `could not release the cluster lock: ${(err as Error).message}` }),
    );
    await ctx.close();
  }
}

function newRecord(ctx: OpenCluster): ClusterRecord {
  return {
    version: 1,
    generation: 0,
    name: ctx.spec.name,
    image: ctx.image.ref,
    imageDigest: ctx.image.digest,
    configDigest: ctx.desired.configDigest,
    specDigest: specDigest(ctx.spec),
    runtime: ctx.runtime.kind,
    updatedAt: new Date().toISOString(),
    hosts: [],
    creating: true,
  };
}

/** Of the hosts being removed, those that cannot be reached (each reported as a warning). */
async function unreachableRemoved(ctx: OpenCluster, removed: ClusterHost[]): Promise<Set<string>> {
  const out = new Set<string>();
  await Promise.all(
    removed.map(async (h) => {
      try {
        await factsOf(ctx, [h]);
      } catch (err) {
        out.add(h.ip);
        ctx.emit({
          type: "warning",
          host: h.ip,
          text: `cannot be reached (${(err as Error).message.split("\n").pop()?.trim()}): removed from the cluster without its own steps (forced); its files stay`,
        });
      }
    }),
  );
  return out;
}

/** Hosts being removed that cannot be reached: the error (still the HostsError naming every host) says how to remove them anyway. */
function forceHint(err: unknown, desiredIps: ReadonlySet<string>): unknown {
  if (!(err instanceof HostsError)) return err;
  const leaving = err.hosts.filter((ip) => !desiredIps.has(ip));
  if (leaving.length === 0) return err;
  const [it, its] = leaving.length === 1 ? ["it", "its"] : ["them", "their"];
  err.message = `${err.message.trimEnd()}\n${leaving.join(", ")} cannot be reached and ${leaving.length === 1 ? "is" : "are"} being removed: to have the cluster forget ${it} anyway (${its} own files stay), run again with --force (sealant apply, plan or delete; the Cluster resource: unreachableOnRemove: "force")`;
  return err;
}

/**
 * After a host got a new image: the previous images' rootfs and the layers only they used
 * are deleted (best effort: a failure leaves disk used, nothing broken).
 */
async function pruneOldImages(ctx: OpenCluster, ips: string[]): Promise<void> {
  const hex = ctx.image.digest.replace(/^sha256:/, "");
  await Promise.all(
    ips.map(async (ip) => {
      const host = ctx.hosts.get(ip)!;
      const pf = platformFor(ctx.image, ctx.facts.get(ip)?.arch ?? "");
      if (!pf) return;
      const keep = layersFor(pf, ctx.registry?.servers.includes(ip) ?? false).map((l) => l.dir);
      const script = [
        `cd ${shellQuote(ctx.layout.images)} 2>/dev/null && for d in *; do [ "$d" = ${hex} ] || rm -rf "./$d"; done`,
        `cd ${shellQuote(ctx.layout.layers)} 2>/dev/null && for d in *; do case " ${keep.join(" ")} " in *" $d "*) ;; *) rm -rf "./$d" ;; esac; done`,
        "true",
      ].join("\n");
      try {
        await (await ctx.pool.get(host)).run(script, { sudo: true, timeoutMs: 600_000 });
      } catch (err) {
        ctx.emit({ type: "warning", host: ip, text: `could not delete old images: ${(err as Error).message}` });
      }
    }),
  );
}

/** A completed apply: every desired host is a member on the new image and config; old versions' step ids are dropped. */
function finish(ctx: OpenCluster, record: ClusterRecord): void {
  const img = shortDigest(ctx.image.digest);
  delete record.creating;
  record.image = ctx.image.ref;
  record.imageDigest = ctx.image.digest;
  record.configDigest = ctx.desired.configDigest;
  record.specDigest = specDigest(ctx.spec);
  record.runtime = ctx.runtime.kind;
  if (ctx.image.metadata.runtime?.version) record.runtimeVersion = ctx.image.metadata.runtime.version;
  else delete record.runtimeVersion;
  const desired = new Set(ctx.desired.hosts.map((h) => h.ip));
  for (const h of record.hosts) {
    if (!desired.has(h.ip)) continue;
    h.member = true;
    h.imageDigest = ctx.image.digest;
    h.configDigest = ctx.desired.configDigest;
    h.done = h.done.filter((id) => !id.includes("@") || id.includes(`@${img}`));
  }
}
