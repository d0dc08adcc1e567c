import type { ClusterContext } from "../host/context";
import type { ClusterHost } from "../host/connect";
import { platformFor, type PlatformImage } from "../host/image";
import { prepareRegistryTls, type RegistrySetup, type RegistryTls } from "../host/registry";
import { configPath, readImageFiles, renderFiles, type ImageFiles } from "../host/render";
import type { Action, DesiredCluster, Plan, PlanStep, RecordedHost } from "../plan";
import type { RuntimeContext } from "../runtime";
import type { ClusterRecord } from "../state/record";
import type { StepJournal } from "./executor";
import { runtimeContextOf } from "./runtime-command";

/**
 * One kind of plan step, in one place: how it runs on a host and what the cluster's record
 * says once it finished. steps/index.ts lists every kind; the planner names them by the
 * constants of plan/kinds.ts.
 */
export interface StepKindDef {
  /** The kind the planner writes (plan/kinds.ts); the plugin kind stands for every `plugin:<name>:<action>`. */
  readonly kind: string;
  /** Runs the step on its host. Idempotent: a step run again after a failure converges. */
  run(ctx: StepContext, step: PlanStep, host: ClusterHost, signal?: AbortSignal, journal?: StepJournal): Promise<void>;
  /**
   * Runs instead of `run` for a host being removed by force that cannot be reached: only the
   * cluster's side of the step (on the first master). Kinds without it do nothing there.
   */
  runUnreachable?(ctx: StepContext, step: PlanStep, host: ClusterHost, signal?: AbortSignal): Promise<void>;
  /** What finishing the step means for the host in the record (membership, image, settings). */
  record?(host: RecordedHost, record: ClusterRecord, ctx: RecordContext): void;
}

/** What the step runner needs beyond the shared context. */
export interface StepRunnerOptions {
  plan: Plan;
  /** IPs joining / leaving in this apply (the hooks' SEALANT_ADDED / SEALANT_REMOVED). */
  added: string[];
  removed: string[];
  /** Registry settings, when the cluster runs one. */
  registry?: RegistrySetup;
  /** Bytes sent per host by distribute. */
  sent: Map<string, number>;
  /** Labels and taints each host had applied, as the record says (what a host-settings step changes from). */
  previousSettings?: ReadonlyMap<string, { labels?: Record<string, string>; taints?: string[] }>;
  /** Hosts being removed that cannot be reached (forced): only the cluster-side part of their steps runs. */
  unreachable?: ReadonlySet<string>;
  /** MODULE plugins (by name) to run anew although a failed attempt saved no checkpoint (`--retry-plugin`). */
  retryPlugins?: readonly string[];
}

/** What a kind's `record` writes from: the image and configuration applied, and the desired hosts. */
export interface RecordContext {
  imageDigest: string;
  configDigest: string;
  desired: DesiredCluster;
}

/** Everything a step kind runs with during one apply or reset: the cluster, this run's options and what its steps share. */
export interface StepContext {
  readonly cluster: ClusterContext;
  readonly opts: StepRunnerOptions;
  /** Timeout of one command, ms. */
  readonly commandMs: number;
  /** The image's platform for a host's architecture (as its facts say). */
  platformOf(host: ClusterHost): PlatformImage;
  /** The image's templates and config targets for that platform, read once per run. */
  imageFiles(pf: PlatformImage): Promise<ImageFiles>;
  /** The image's files the runtime generates its commands from, rendered with the spec's configs for this host. */
  runtimeFiles(host: ClusterHost): Promise<ReadonlyMap<string, string> | undefined>;
  /** The runtime's view of this run, for a step of `action` running in `rootfs`. */
  runtimeContext(action: Action, rootfs: string, imageFiles?: ReadonlyMap<string, string>): RuntimeContext;
  /** The registry's certificates (made once per run on the first server), when it serves TLS. */
  registryTls(signal?: AbortSignal): Promise<RegistryTls | undefined>;
  /** What this run's steps of one kind share (the distribute steps' relay): made by the first that asks, kept for the run. */
  shared<T>(key: string, make: () => T): T;
}

/** The action a runtime command is told it is part of, when the step's kind does not decide it. */
export function planAction(plan: Plan): Action {
  const a = plan.actions;
  return a.find((x) => x !== "scale-down") ?? a[0] ?? "create";
}

/** The action of a host leaving: the whole cluster's reset, or a scale-down. */
export function leavingAction(plan: Plan): Action {
  return plan.actions.includes("reset") ? "reset" : "scale-down";
}

export function stepContext(cluster: ClusterContext, opts: StepRunnerOptions): StepContext {
  const { spec } = cluster;
  const files = new Map<string, Promise<ImageFiles>>();
  let tls: Promise<RegistryTls | undefined> | undefined;
  const sharedByKey = new Map<string, unknown>();
  const sc: StepContext = {
    cluster,
    opts,
    commandMs: spec.timeouts.command * 1000,
    platformOf(host) {
      const facts = cluster.facts.get(host.ip);
      const pf = facts && platformFor(cluster.image, facts.arch);
      if (!pf) throw new Error(`no image for this host's architecture ${facts?.arch ?? "(unknown)"}`);
      return pf;
    },
    imageFiles(pf) {
      let p = files.get(pf.manifestDigest);
      if (!p) {
        p = readImageFiles(cluster.session.store, pf, new Set([...spec.configs.map(configPath), ...(cluster.runtime.imageFiles ?? [])]));
        files.set(pf.manifestDigest, p);
      }
      return p;
    },
    async runtimeFiles(host) {
      const wanted = cluster.runtime.imageFiles ?? [];
      if (wanted.length === 0) return undefined;
      const rendered = renderFiles(await sc.imageFiles(sc.platformOf(host)), spec.configs, host.env);
      const out = new Map<string, string>();
      for (const path of wanted) {
        const text = rendered.get(path) ?? (await sc.imageFiles(sc.platformOf(host))).get(path);
        if (text !== undefined) out.set(path, text);
      }
      return out;
    },
    runtimeContext(action, rootfs, imageFiles) {
      return { ...runtimeContextOf(cluster, opts.registry), action, added: opts.added, removed: opts.removed, rootfs, ...(imageFiles ? { imageFiles } : {}) };
    },
    async registryTls(signal) {
      const reg = opts.registry;
      if (!reg?.tls) return undefined;
      tls ??= (async () => prepareRegistryTls(await cluster.pool.get(cluster.hosts.get(reg.servers[0]!)!, signal), reg, signal))();
      return tls;
    },
    shared<T>(key: string, make: () => T): T {
      if (!sharedByKey.has(key)) sharedByKey.set(key, make());
      return sharedByKey.get(key) as T;
    },
  };
  return sc;
}
