/**
 * Opening a cluster: its image and runtime, its hosts and one SSH connection per host (opened
 * on use), their facts, its lock and its record. The actions (apply, reset, check, exec, ...)
 * open a cluster and work on it.
 */
import type { Session } from "../session";
import { HostKeyError, Hosts, HostsError } from "../ssh";
import { desiredCluster } from "./desired";
import { clusterHost, clusterPool, defaultKnownHosts, removedHost, type ClusterHost } from "./host/connect";
import type { ClusterContext, ClusterEvent } from "./host/context";
import { gatherFacts } from "./host/facts";
import { resolveClusterImage } from "./host/image";
import { HostLayout } from "./host/layout";
import { registryDomains, type RegistrySetup } from "./host/registry";
import { isMaster, type DesiredCluster } from "./plan";
import { selectRuntime } from "./runtime";
import { runtimeWarnings } from "./runtime-warnings";
import { describePlugins } from "./plugins/describe";
import { loadPlugins, withModuleDefaults, type PinnedModule } from "./plugins/load";
import { resolveHosts, type ClusterSpec } from "./spec";
import { acquireLock, lockOwner } from "./state/lock";
import { newestRecord, writeRecord, type ClusterRecord } from "./state/record";

export interface ClusterOptions {
  session: Session;
  spec: ClusterSpec;
  onEvent?(e: ClusterEvent): void;
  signal?: AbortSignal;
  /** sealant's known_hosts. @default $SEALANT_HOME/known_hosts */
  knownHostsFile?: string;
  /** What the lock says is running. @default "sealant apply" */
  command?: string;
  /** Where MODULE plugins' modules resolve from (a path, or node_modules from here up). @default the working directory */
  pluginBase?: string;
  /** MODULE plugins resolved already (by document name): that file is loaded, and refused if its digest changed. */
  pluginModules?: Readonly<Record<string, PinnedModule>>;
}

/** An open cluster: image, runtime, hosts and one SSH connection per host, opened on use. */
export interface OpenCluster extends ClusterContext {
  firstMaster: ClusterHost;
  masters: ClusterHost[];
  desired: DesiredCluster;
  registry: RegistrySetup | undefined;
  close(): Promise<void>;
}

/**
 * `purpose` "read" (check, exec, backup, reading the record or certificates) runs no plugin:
 * the spec's plugin modules are not loaded, so a broken or removed one does not stop those.
 */
export async function openCluster(opts: ClusterOptions, purpose: "change" | "read" = "change"): Promise<OpenCluster> {
  const { session } = opts;
  // The user's plugin modules first: a missing or broken one stops before anything is fetched.
  const pluginModules = purpose === "read" ? new Map() : await loadPlugins(opts.spec.plugins, opts.pluginBase ?? process.cwd(), opts.pluginModules);
  const spec = withModuleDefaults(opts.spec, pluginModules);
  const image = await resolveClusterImage(session, spec.image, opts.signal);
  const runtime = selectRuntime(image.metadata, image.ref);
  const resolved = resolveHosts(spec, image.metadata.env);
  const hosts = new Map(resolved.map((h) => [h.ip, clusterHost(h)]));
  const masters = [...hosts.values()].filter(isMaster);
  const desired = desiredCluster(spec, image, resolved);
  describePlugins(desired, pluginModules, (name) => spec.plugins.find((p) => p.name === name)?.config);
  const warnings = await runtimeWarnings(session.store, spec, image, desired);
  if (warnings.length > 0) desired.warnings = warnings;
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
    pluginModules,
    emit,
    ...(opts.signal ? { signal: opts.signal } : {}),
    firstMaster: masters[0]!,
    masters,
    desired,
    registry,
    close: () => pool.closeAll(),
  };
}

/** Takes the cluster's lock on its first master (facts first: its host key is checked there); returns the release function. */
export async function lockCluster(ctx: OpenCluster, command: string): Promise<() => Promise<void>> {
  await factsOf(ctx, [ctx.firstMaster]);
  return acquireLock(await ctx.pool.get(ctx.firstMaster), ctx.layout, ctx.spec.name, lockOwner(command), ctx.signal);
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
  // Every apply writes the first master's copy or fails, so it is the newest (it wins a tie:
  // an interrupted apply wrote only there) — unless the first master was removed by force
  // while it could not be reached and came back with the copy of that time: a later
  // generation on another master wins. The others matter too when it has none (a new first
  // master, or one rebuilt).
  const own = ctx.facts.get(ctx.firstMaster.ip)?.record;
  if (own && ctx.masters.length === 1) return own;
  try {
    await factsOf(ctx, ctx.masters);
  } catch (err) {
    if (!(err instanceof HostsError)) throw err;
    for (const f of err.failures)
      ctx.emit({ type: "warning", host: f.host, text: `cannot read the cluster record here: ${String((f.error as Error).message ?? f.error)}` });
  }
  return newestRecord([own, ...ctx.masters.map((m) => ctx.facts.get(m.ip)?.record)]);
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
    await factsOf(
      ctx,
      members.map((h) => ctx.hosts.get(h.ip)!),
    );
  } catch (err) {
    if (!(err instanceof HostsError) || opts.unreachable !== "keep") throw err;
    for (const f of err.failures)
      ctx.emit({ type: "warning", host: f.host, text: `cannot be reached, kept as recorded: ${String((f.error as Error).message ?? f.error)}` });
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

/** Hosts the record knows that the spec dropped: reached with the cluster's SSH settings. */
export function addRecordedHostsFor(ctx: OpenCluster, record: ClusterRecord | undefined): void {
  for (const h of record?.hosts ?? []) if (!ctx.hosts.has(h.ip)) ctx.hosts.set(h.ip, removedHost(ctx.spec, h.ip, h.roles));
}

/** Hosts the spec names that the record does not know yet, added to it (no member, nothing done). */
export function addDesiredHostsTo(ctx: OpenCluster, record: ClusterRecord): void {
  for (const h of ctx.desired.hosts)
    if (!record.hosts.some((r) => r.ip === h.ip)) record.hosts.push({ ip: h.ip, roles: h.roles, member: false, imageDigest: "", done: [] });
}

/** Writes the record to the first master (must succeed) and, `everywhere`, to every other master (best effort). */
export function recordWriter(ctx: OpenCluster): (record: ClusterRecord, everywhere: boolean) => Promise<void> {
  return async (record, everywhere) => {
    record.updatedAt = new Date().toISOString();
    const write = async (h: ClusterHost): Promise<void> => writeRecord(await ctx.pool.get(h), ctx.layout, record, ctx.signal);
    if (!everywhere) return write(ctx.firstMaster);
    const others = ctx.masters.filter((m) => m !== ctx.firstMaster);
    const results = await Promise.allSettled([write(ctx.firstMaster), ...others.map(write)]);
    results.slice(1).forEach((r, i) => {
      if (r.status === "rejected")
        ctx.emit({ type: "warning", host: others[i]!.ip, text: `could not update the cluster record here: ${(r.reason as Error).message}` });
    });
    if (results[0]!.status === "rejected") throw results[0].reason;
  };
}
