import type { Action, DesiredCluster, PlannedHost, CertificateExpiry } from "../plan/types";
import type { ConsensusMember } from "../plan/quorum";

/** What every lifecycle command of a runtime gets to know about the cluster and the change. */
export interface RuntimeContext {
  cluster: string;
  action: Action;
  /** The desired hosts, in order (the first master anchors the cluster). */
  hosts: PlannedHost[];
  /** IPs joining in this apply. */
  added: string[];
  /** IPs leaving in this apply. */
  removed: string[];
  /** Cluster env (host env merged on top per host by the caller). */
  env: Record<string, string>;
  /** Where the image's rootfs lives on every host. */
  rootfs: string;
  /** The cluster's data root on every host, e.g. /var/lib/sealant/<cluster>. */
  dataRoot: string;
  /** The runtime's version the image declares (its runtime version label), e.g. v1.31.4. */
  runtimeVersion?: string;
  /** The cluster registry's `domain:port`, when the cluster runs or uses one. */
  registry?: string;
  /** The spec's `runtime` settings, free-form (e.g. `kubeadm` documents). */
  settings?: Record<string, unknown>;
  /**
   * The host cannot be reached and is being removed by force: only the command's `before` and
   * `after` (on the first master) run; the runtime should not wait on the host there.
   */
  hostUnreachable?: boolean;
  /**
   * The `check` step asked for by a health check of the running cluster (`sealant check`), not
   * an apply: a runtime may check the whole cluster too (e.g. Kubernetes' system pods).
   */
  healthCheck?: boolean;
  /** The image's files the runtime asked for (`Runtime.imageFiles`), as rendered with the spec's configs. */
  imageFiles?: ReadonlyMap<string, string>;
  /**
   * Commands (run from the image's rootfs) that install what the cluster cannot work without:
   * the image's CNI apps (Kubefile `CNI`), then the apps its label `io.sealant.bootstrap-apps`
   * names (e.g. the cluster DNS). A runtime whose nodes are not ready without them runs them as
   * soon as the cluster's API exists, before other hosts join.
   */
  bootstrapApps?: string[];
}

export interface RuntimeCommand {
  /** Shell command run on the host (no secrets inside: those go through `env`). */
  command: string;
  env: Record<string, string>;
  /**
   * Run on the first master before `command` (e.g. a join token, a drain). Its stdout's last
   * line, when a JSON object of strings, is added to `command`'s env; it may carry secrets, so
   * its output is never logged and its values are redacted from errors.
   */
  before?: FirstMasterCommand;
  /** Run on the first master once `command` succeeded (e.g. uncordon, label the node), with what `before` gave. */
  after?: FirstMasterCommand;
}

/**
 * A cluster runtime: how an image's lifecycle steps become commands on hosts. The hooks
 * runtime (image-declared scripts) is the first; the kubeadm runtime implements the same
 * steps with kubeadm and adds a kubeconfig.
 */
export interface Runtime {
  readonly kind: string;
  /** Files of the image (rootfs paths) its commands are generated from, e.g. etc/kubeadm.yml. */
  readonly imageFiles?: readonly string[];
  /** Whether hosts other than masters keep the list of masters (see DesiredCluster.workersFollowMasters). */
  readonly workersFollowMasters?: boolean;
  /** How it creates a cluster (see DesiredCluster.bootstrap). @default "every-host" */
  readonly bootstrap?: "every-host" | "first-master";
  /** The command for step `hook:<name>` on `host` (hosts without anything to do still run it: the command decides). */
  command(step: LifecycleStep, host: RuntimeHost, ctx: RuntimeContext): RuntimeCommand;
  /**
   * What the cluster offers its users once it is up, read from the first master through
   * `readFile` (undefined: no such file) — e.g. Kubernetes: the admin kubeconfig, a secret, and
   * the API endpoint. Runtimes with nothing to offer leave it out.
   */
  outputs?(readFile: (path: string) => Promise<string | undefined>, ctx: RuntimeContext): Promise<RuntimeOutputs>;
  /**
   * The command that makes a member's labels and taints those of `host` (given what was applied
   * before, `previous`) and, for runtimes whose workers follow the masters, points it at the
   * cluster's masters; none when the runtime keeps no such settings.
   */
  hostSettings?(host: RuntimeHost, previous: { labels?: Record<string, string>; taints?: string[] }, ctx: RuntimeContext): RuntimeCommand | undefined;
  /** What is wrong with the spec's `runtime` settings for this runtime, each naming the field (`runtime.x`). */
  settingsProblems?(settings: Record<string, unknown>): string[];
  /**
   * Why a running cluster cannot move from the image's runtime version `from` to `to` (e.g.
   * Kubernetes skips a minor version); undefined when it can. Checked before anything changes.
   */
  changeProblem?(from: string | undefined, to: string | undefined): string | undefined;
  /**
   * The masters' consensus (Kubernetes: stacked etcd), asked on the first master before a change
   * of a running cluster's masters (and for a dry run): removals ordered, a change that would
   * lose its quorum refused (plan/quorum.ts). Runtimes without one leave it out.
   */
  readonly members?: RuntimeMembers;
  /** What removing an unreachable host by force does on the first master, for the plan, e.g. "its etcd member and Node deleted". */
  forcedRemoval?(host: PlannedHost): string;
  /** The masters' certificates (see RuntimeCertificates); runtimes without any leave it out. */
  readonly certificates?: RuntimeCertificates;
  /** What its rolling upgrade and reconfiguration steps do on each kind of host, for the plan (see DesiredCluster.rollSteps), given the image's runtime version. */
  rollSteps?(version: string | undefined): DesiredCluster["rollSteps"];
}

/** A runtime's consensus members as its first master sees them. */
export interface RuntimeMembers {
  /** Its name as users know it, e.g. "etcd". */
  readonly system: string;
  /** Read-only, on the first master, bounded (a member that does not answer costs seconds): prints what `parse` reads. */
  read(first: PlannedHost): FirstMasterCommand;
  parse(stdout: string): ConsensusMember[];
}

/** A runtime whose masters hold certificates it can read, renew and make again for changed SANs (kubernetes: kubeadm's). */
export interface RuntimeCertificates {
  /** A read-only command printing a master's certificates, for `parse`. */
  read: string;
  parse(stdout: string): { certificates: CertificateExpiry[]; apiServerSANs: string[] };
  /** The SANs the spec wants in `host`'s API server certificate (`hostname`: the name the host reports). */
  wantedSANs(host: RuntimeHost, hostname: string, ctx: RuntimeContext): string[];
  /** Renew a master's certificates when one has less than this left, seconds (the spec's setting or the default). */
  renewBeforeSeconds(ctx: RuntimeContext): number;
  renew(host: RuntimeHost, ctx: RuntimeContext): RuntimeCommand;
  updateSANs(host: RuntimeHost, ctx: RuntimeContext): RuntimeCommand;
}

/** One certificate's expiry on one master: what `sealant check` reports and the Cluster resource outputs. */
export interface CertificateReport extends CertificateExpiry {
  host: string;
  /** Whole days left when read (negative: expired). */
  daysLeft: number;
}

export interface RuntimeOutputs {
  /** Every master's control-plane certificates (runtimes with `certificates`), read with the other outputs. */
  certificates?: CertificateReport[];
  /** Secret: never logged, a Pulumi secret output. */
  kubeconfig?: string;
  endpoint?: string;
  caCertificate?: string;
}

/** The host a command is for: as planned (roles, labels, taints `key=value:Effect`), with its env from the spec. */
export interface RuntimeHost extends PlannedHost {
  env?: Record<string, string>;
}

export interface FirstMasterCommand {
  command: string;
  env: Record<string, string>;
}

/** The lifecycle every runtime implements, in the order a cluster meets it. */
export const LIFECYCLE = ["init-host", "bootstrap", "join", "leave", "upgrade", "check", "reset"] as const;
export type LifecycleStep = (typeof LIFECYCLE)[number];
