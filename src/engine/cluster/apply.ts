import type { Session } from "../session";
import { HostKeyError, Hosts, HostsError, shellQuote, type HostFailure } from "../ssh";
import { clusterHost, clusterPool, defaultKnownHosts, removedHost, type ClusterHost } from "./connect";
import type { ClusterContext, ClusterEvent, HostFacts } from "./context";
import { desiredCluster } from "./desired";
import { executePlan } from "./executor";
import { platformFor, resolveClusterImage } from "./image";
import { HostLayout } from "./layout";
import { planCluster, shortDigest, type DesiredCluster, type Plan, type PlanStep, type RecordedHost } from "./plan";
import { layersFor } from "./phases/distribute";
import { gatherFacts } from "./phases/facts";
import { registryDomains, type RegistrySetup } from "./phases/registry";
import { runtimeOutputs } from "./outputs";
import { selectRuntime, type RuntimeOutputs } from "./runtime";
import { resolveHosts, specDigest, type ClusterSpec } from "./spec";
import { acquireLock, lockOwner } from "./state/lock";
import { newestRecord, writeRecord, type ClusterRecord } from "./state/record";
import { stepRunner } from "./steps";
import { validateHosts } from "./validate";

export interface ClusterOptions {
  session: Session;
  spec: ClusterSpec;
  onEvent?(e: ClusterEvent): void;
  signal?: AbortSignal;
  /** sealant's known_hosts. @default $SEALANT_HOME/known_hosts */
  knownHostsFile?: string;
  /** What the lock says is running. @default "sealant apply" */
  command?: string;
}

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

/** An open cluster: image, runtime, hosts and one SSH connection per host, opened on use. */
export interface OpenCluster extends ClusterContext {
  firstMaster: ClusterHost;
  masters: ClusterHost[];
  desired: DesiredCluster;
  registry: RegistrySetup | undefined;
  close(): Promise<void>;
}

export async function openCluster(opts: ClusterOptions): Promise<OpenCluster> {
  const { spec, session } = opts;
  const image = await resolveClusterImage(session, spec.image, opts.signal);
  const runtime = selectRuntime(image.metadata, image.ref);
  const resolved = resolveHosts(spec, image.metadata.env);
  const hosts = new Map(resolved.map((h) => [h.ip, clusterHost(h)]));
  const masters = [...hosts.values()].filter((h) => h.roles.includes("master"));
  const desired = desiredCluster(spec, image, resolved);
  const pool = clusterPool({ knownHostsFile: opts.knownHostsFile ?? defaultKnownHosts(session.home), connectTimeoutS: spec.timeouts.connect });
  const registry: RegistrySetup | undefined = desired.registry
    ? {
        domain: spec.registry.domain,
        port: spec.registry.port,
        servers: desired.registry.servers,
        domains: registryDomains(image.metadata.containerImages.map((c) => c.image)),
        ...(spec.registry.username !== undefined ? { username: spec.registry.username } : {}),
        ...(spec.registry.password !== undefined ? { password: spec.registry.password } : {}),
        tls: !spec.registry.insecure,
        ...(spec.registry.subjectAltNames ? { subjectAltNames: spec.registry.subjectAltNames } : {}),
        dataRoot: new HostLayout(spec.dataRoot).root,
      }
    : undefined;
  const emit = opts.onEvent ?? (() => undefined);
  return {
    spec,
    session,
    image,
    runtime,
    hosts,
    layout: new HostLayout(spec.dataRoot),
    pool,
    facts: new Map(),
    emit,
    ...(opts.signal ? { signal: opts.signal } : {}),
    firstMaster: masters[0]!,
    masters,
    desired,
    registry,
    close: () => pool.closeAll(),
  };
}

/** Gathers facts on hosts not asked yet, in parallel; one HostsError names every host that failed. */
export async function factsOf(ctx: OpenCluster, hosts: ClusterHost[]): Promise<void> {
  const todo = hosts.filter((h) => !ctx.facts.has(h.ip));
  await new Hosts(todo).parallelEach(
    async (h, signal) => {
      let conn;
      try {
        conn = await ctx.pool.get(h, signal);
      } catch (err) {
        throw inSpecTerms(err, h, ctx.session.home);
      }
      ctx.facts.set(h.ip, await gatherFacts(conn, ctx.layout, signal));
    },
    { limit: ctx.spec.parallelism, ...(ctx.signal ? { signal: ctx.signal } : {}) },
  );
}

/** An unknown host key, with what to do in the Clusterfile's terms rather than the SSH layer's. */
function inSpecTerms(err: unknown, h: ClusterHost, home: string): unknown {
  if (!(err instanceof HostKeyError) || err.problem !== "unknown") return err;
  const fp = err.presented.fingerprint;
  const scan = h.ssh.port === 22 ? h.ip : `-p ${h.ssh.port} ${h.ip}`;
  return new HostKeyError(
    err.host,
    err.presented,
    "unknown",
    `host key not trusted: the host presents ${err.presented.keyType} ${fp}, which is neither pinned nor in a known_hosts file. ` +
      `If this is the right host: pin it in the Clusterfile (ssh.fingerprints: {"${h.ip}": "${fp}"}), ` +
      `or add it to ssh.knownHosts or to sealant's own ${defaultKnownHosts(home)} (ssh-keyscan ${scan} >> FILE, then compare ssh-keygen -lf FILE with the host's), ` +
      `or set ssh.hostKeyPolicy: accept-new to record keys on first use`,
    err.expected,
  );
}

/**
 * The cluster's record as its masters keep it (the newest of those reachable). The first
 * master must answer; another master that does not is reported and skipped.
 */
export async function readRecord(ctx: OpenCluster): Promise<ClusterRecord | undefined> {
  await factsOf(ctx, [ctx.firstMaster]);
  // Every apply writes the first master's copy or fails, so it is the newest; the others
  // matter when it has none (a new first master, or one rebuilt).
  const own = ctx.facts.get(ctx.firstMaster.ip)?.record;
  if (own) return own;
  try {
    await factsOf(ctx, ctx.masters);
  } catch (err) {
    if (!(err instanceof HostsError)) throw err;
    for (const f of err.failures) ctx.emit({ type: "warning", host: f.host, text: `cannot read the cluster record here: ${String((f.error as Error).message ?? f.error)}` });
  }
  return newestRecord(ctx.masters.map((m) => ctx.facts.get(m.ip)?.record));
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

/**
 * The record with reality checked (one command per member the spec names): a member that no
 * longer holds its image (reset or rebuilt out of band) is no member any more, with no step
 * done, so the plan sets it up and joins it again. A member that cannot be reached fails
 * with the HostsError naming it, or with `unreachable: "keep"` is reported as a warning and
 * kept as recorded (a network blip is no reset).
 */
export async function verifiedRecord(ctx: OpenCluster, record: ClusterRecord, opts: { unreachable?: "fail" | "keep" } = {}): Promise<ClusterRecord> {
  const members = record.hosts.filter((h) => h.member && ctx.hosts.has(h.ip));
  try {
    await factsOf(ctx, members.map((h) => ctx.hosts.get(h.ip)!));
  } catch (err) {
    if (!(err instanceof HostsError) || opts.unreachable !== "keep") throw err;
    for (const f of err.failures) ctx.emit({ type: "warning", host: f.host, text: `cannot be reached, kept as recorded: ${String((f.error as Error).message ?? f.error)}` });
  }
  const out = structuredClone(record);
  for (const h of out.hosts) {
    const facts = ctx.facts.get(h.ip);
    if (!h.member || !facts || facts.images.has(h.imageDigest.replace(/^sha256:/, ""))) continue;
    ctx.emit({ type: "warning", host: h.ip, text: "no longer holds the cluster's files (reset out of band?): it will be set up and joined again" });
    h.member = false;
    h.done = [];
  }
  return out;
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
        ctx.emit({ type: "warning", host: h.ip, text: `cannot be reached (${(err as Error).message.split("\n").pop()?.trim()}): removed from the cluster without its own steps (forced); its files stay` });
      }
    }),
  );
  return out;
}

/** Hosts the record knows that the spec dropped: reached with the cluster's SSH settings. */
export function addRecordedHostsFor(ctx: OpenCluster, record: ClusterRecord | undefined): void {
  for (const h of record?.hosts ?? []) if (!ctx.hosts.has(h.ip)) ctx.hosts.set(h.ip, removedHost(ctx.spec, h.ip, h.roles));
}

/** Writes the record to the first master (must succeed) and, `everywhere`, to every other master (best effort). */
function recordWriter(ctx: OpenCluster): (record: ClusterRecord, everywhere: boolean) => Promise<void> {
  return async (record, everywhere) => {
    record.updatedAt = new Date().toISOString();
    const write = async (h: ClusterHost): Promise<void> => writeRecord(await ctx.pool.get(h), ctx.layout, record, ctx.signal);
    if (!everywhere) return write(ctx.firstMaster);
    const others = ctx.masters.filter((m) => m !== ctx.firstMaster);
    const results = await Promise.allSettled([write(ctx.firstMaster), ...others.map(write)]);
    results.slice(1).forEach((r, i) => {
      if (r.status === "rejected") ctx.emit({ type: "warning", host: others[i]!.ip, text: `could not update the cluster record here: ${(r.reason as Error).message}` });
    });
    if (results[0]!.status === "rejected") throw results[0].reason;
  };
}

/** Membership as steps finish: a joined host is a member, a host that left is not, a cleaned one is gone; labels and taints as set. */
function membership(imageDigest: string, configDigest: string, desired: DesiredCluster) {
  return (step: PlanStep, host: RecordedHost, record: ClusterRecord): void => {
    if (step.kind === "hook:join" || step.kind === "hook:bootstrap" || step.kind === "host-settings") {
      const d = desired.hosts.find((h) => h.ip === host.ip);
      if (d?.labels) host.labels = d.labels;
      if (d?.taints) host.taints = d.taints;
      if (desired.workersFollowMasters && d && !d.roles.includes("master")) host.follows = desired.hosts.filter((h) => h.roles.includes("master")).map((h) => h.ip);
    }
    if (step.kind === "hook:join") {
      host.member = true;
      host.imageDigest = imageDigest;
      host.configDigest = configDigest;
    } else if (step.kind === "hook:upgrade") {
      host.imageDigest = imageDigest;
      host.configDigest = configDigest;
    }
    else if (step.kind === "hook:leave") host.member = false;
    else if (step.kind === "cleanup") record.hosts = record.hosts.filter((h) => h !== host);
  };
}

/**
 * Makes the cluster match the spec: reads the cluster's record from its masters, plans,
 * validates the hosts the plan touches, then executes phase by phase, recording every step —
 * an interrupted apply re-run resumes where it stopped. Refused while another apply holds the
 * cluster's lock.
 */
export async function applyCluster(opts: ApplyOptions): Promise<ApplyResult> {
  const ctx = await openCluster(opts);
  let release: (() => Promise<void>) | undefined;
  try {
    await factsOf(ctx, [ctx.firstMaster]);
    if (!opts.dryRun) {
      release = await acquireLock(await ctx.pool.get(ctx.firstMaster), ctx.layout, ctx.spec.name, lockOwner(opts.command ?? "sealant apply"), ctx.signal);
    }
    const found = await readRecord(ctx);
    const current = opts.verifyHosts && found ? await verifiedRecord(ctx, found) : found;
    addRecordedHostsFor(ctx, current);
    const plan = planCluster(ctx.desired, current);
    const involved = new Set(plan.phases.flatMap((p) => p.steps.map((s) => s.host)));
    const touched = [...ctx.hosts.values()].filter((h) => involved.has(h.ip));
    const desiredIps = new Set(ctx.desired.hosts.map((h) => h.ip));
    const unreachable = opts.forceRemoval ? await unreachableRemoved(ctx, touched.filter((h) => !desiredIps.has(h.ip))) : new Set<string>();
    await factsOf(ctx, touched.filter((h) => !unreachable.has(h.ip)));
    await validateHosts(ctx, plan, current);
    if (opts.dryRun) return { plan, record: current, sent: {}, outputs: {}, dryRun: true };

    const record = current ? structuredClone(current) : newRecord(ctx);
    for (const h of ctx.desired.hosts) {
      if (!record.hosts.some((r) => r.ip === h.ip)) record.hosts.push({ ip: h.ip, roles: h.roles, member: false, imageDigest: "", done: [] });
    }
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
        previousSettings: new Map((current?.hosts ?? []).map((h) => [h.ip, { ...(h.labels ? { labels: h.labels } : {}), ...(h.taints ? { taints: h.taints } : {}) }])),
      }),
      persist: write,
      afterStep: membership(ctx.image.digest, ctx.desired.configDigest, ctx.desired),
      parallelism: ctx.spec.parallelism,
      emit: ctx.emit,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    const distributed = plan.phases.filter((p) => p.name === "distribute").flatMap((p) => p.steps.map((s) => s.host));
    await pruneOldImages(ctx, distributed);
    const unchanged = plan.phases.length === 0 && current !== undefined && current.imageDigest === ctx.image.digest && current.configDigest === ctx.desired.configDigest;
    if (!unchanged) {
      finish(ctx, record);
      record.generation++;
      await write(record, true);
    }
    return { plan, record, sent: Object.fromEntries(sent), outputs: await runtimeOutputs(ctx), dryRun: false };
  } finally {
    await release?.().catch((err: unknown) => ctx.emit({ type: "warning", host: ctx.firstMaster.ip, text: `could not release the cluster lock: ${(err as Error).message}` }));
    await ctx.close();
  }
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

export type { HostFacts, HostFailure };
