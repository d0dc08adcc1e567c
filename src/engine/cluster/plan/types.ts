/**
 * What the planner works on: the cluster as desired, the cluster as it is (read from the
 * cluster's own state record), and the plan between them. Plain data, no I/O: the planner is
 * a pure function and the same plan is printed, previewed and executed.
 */

export type Role = string;

export interface PlannedHost {
  ip: string;
  roles: Role[];
  /**
   * The host's own settings the runtime keeps on the cluster's side (Kubernetes: node labels and
   * taints), as given; recorded once applied, and applied again when they change.
   */
  labels?: Record<string, string>;
  taints?: string[];
  /** The masters this (non-master) host was last pointed at, for runtimes whose workers follow them (recorded). */
  follows?: string[];
}

export interface UpgradePolicy {
  /** Hosts upgraded at once; masters are always one at a time to keep quorum. @default 1 */
  maxUnavailable: number;
}

/** The desired cluster, reduced to what decides the plan. */
export interface DesiredCluster {
  name: string;
  /** ref@digest of the cluster image. */
  image: string;
  imageDigest: string;
  /** Host order as given: the first master is the cluster's anchor (state record, joins). */
  hosts: PlannedHost[];
  upgrade: UpgradePolicy;
  /**
   * Digest of what is rendered onto hosts (env, configs, plugins; not the host list, not
   * secrets): a change re-renders and rolls through the hosts like an upgrade.
   */
  configDigest: string;
  /** The cluster's registry: the hosts that serve the image's registry/ (absent: the image carries no container images). */
  registry?: {
    servers: string[];
    /** How many upstreams it caches (registry.pullThrough), when any. */
    pullThrough?: number;
  };
  /**
   * The external registry the image's container images are pushed to instead (`registry.external`):
   * its `domain[:port]`, how many images, and a version of its settings (hosts are re-pointed when it changes).
   */
  externalRegistry?: { endpoint: string; images: number; version: string };
  /** Whether the spec gives the hosts registries of the user's own (`registry.registries`: mirrors, logins, CAs, proxy). */
  userRegistries?: boolean;
  /** Plugins at their phases, scope already resolved to IPs (undefined scope: the phase's default hosts). */
  plugins?: PlannedPlugin[];
  /** Whether the image or spec has apps / CMDS to launch on the first master once the cluster is up. */
  launch?: boolean;
  /**
   * How the runtime creates a cluster: every host bootstraps at once (etcd-style, the full
   * member list known up front), or the first master bootstraps and the others then join as on
   * a scale-up (kubeadm: init, then joins). @default "every-host"
   */
  bootstrap?: "every-host" | "first-master";
  /**
   * Whether hosts other than masters hold the list of masters (Kubernetes workers: their VIP's
   * real servers), so a change of masters is a host-settings step on each of them.
   */
  workersFollowMasters?: boolean;
  /** What the plan must say before anything runs (e.g. what a Docker-runtime image's hosts cannot pull from the cluster's registry). */
  warnings?: string[];
  /** How hosts get the image's layers (the spec's default is auto). Without one: direct. */
  distribution?: Distribution;
  /** What each host's step of a rolling upgrade or reconfiguration does, in the runtime's words (absent: "upgrade <ip>"). */
  rollSteps?: { upgrade: RollWords; reconfigure: RollWords };
}

/** A rolling step's description for the first master, the other masters and every other host; `{ip}` stands for the host. */
export interface RollWords {
  firstMaster: string;
  master: string;
  other: string;
}

/** How hosts get the image's layers (the spec's `distribution`). */
export interface Distribution {
  /** direct: the operator sends every host what it lacks; relay: hosts pass layers on to each other; auto: relay from a few hosts up (plan/distribution.ts). */
  mode: "auto" | "direct" | "relay";
  /** relay: how many hosts each host passes the layers on to (the operator sends each layer to one). */
  fanout: number;
}

/** One plugin at one of its phases (sealer's Plugin `action`). */
export interface PlannedPlugin {
  name: string;
  action: string;
  /** IPs the plugin is limited to (its scope); undefined: every host of the phase (host phases) or the first master (cluster phases). */
  scope?: string[];
  /** A MODULE plugin's module, as the spec names it. */
  module?: string;
  /** What a MODULE plugin says it will do, by host IP (its describe()). */
  describe?: Record<string, string>;
}

/** One host as the cluster's state record knows it. */
export interface RecordedHost extends PlannedHost {
  /** Joined (or created with) the cluster. A host whose join failed is recorded, not a member. */
  member: boolean;
  /** Image digest whose files and runtime steps this host has completed. */
  imageDigest: string;
  /** Configuration digest the host runs with (set with imageDigest). */
  configDigest?: string;
  /** Completed step ids for that image (see stepId): what makes a re-run resume. */
  done: string[];
  /** The host's name as it reported it (checked unique across the cluster). */
  hostname?: string;
  /** MODULE plugin steps begun and not finished, by step id: dropped once the step finishes. */
  pluginRuns?: Record<string, PluginRunRecord>;
}

/** What sealant keeps of a plugin step's attempts until it finishes: what makes a re-run resume. */
export interface PluginRunRecord {
  /** Attempts begun (counted before each runs, so an interrupted one counts). */
  attempts: number;
  /** What the plugin saved with ctx.checkpoint. */
  checkpoints: Record<string, unknown>;
  /** How the last attempt failed. */
  error?: string;
}

/** The cluster's own record (state.json on every master), or undefined for a new cluster. */
export interface CurrentCluster {
  name: string;
  imageDigest: string;
  configDigest: string;
  hosts: RecordedHost[];
  /**
   * Set until the cluster's first apply finishes: the next apply goes on creating it (what is
   * done is skipped; what a create does last, e.g. launching the image's apps, still runs).
   */
  creating?: true;
  /** The masters' control-plane certificates as read before planning (runtimes that have them): what renewals and SAN updates are planned from. */
  certificates?: ObservedCertificates;
}

/** One certificate's expiry on a master, named as kubeadm names it (`apiserver`, `admin.conf`, `etcd-ca`, ...). */
export interface CertificateExpiry {
  name: string;
  /** ISO time. */
  notAfter: string;
  /** A CA: reported, never renewed by a renewal (kubeadm's renewal keeps the CAs). */
  ca?: boolean;
}

/** A master's certificates, and the API server certificate's SANs as it has them and as the spec wants them (kubeadm's own names included). */
export interface MasterCertificates {
  ip: string;
  certificates: CertificateExpiry[];
  apiServerSANs: string[];
  wantedSANs: string[];
}

/** The masters' certificates, read at `observedAt` (ISO: what the remaining time counts from), and the spec's threshold. */
export interface ObservedCertificates {
  observedAt: string;
  /** Renew a master's certificates when one of them has less than this left, seconds. */
  renewBeforeSeconds: number;
  masters: MasterCertificates[];
}

export type Action = "create" | "scale-up" | "scale-down" | "upgrade" | "reconfigure" | "reset";

/** What a step does; `hook:<name>` runs that lifecycle command of the image's runtime. */
export type StepKind =
  | "distribute"
  | "render"
  | "registry"
  | "registry-removal"
  | "push"
  | "mirrors"
  | "pull-through"
  | "launch"
  | "cleanup"
  | "host-settings"
  | "certificate-renewal"
  | "apiserver-sans"
  | `hook:${string}`
  | `plugin:${string}`;

export interface PlanStep {
  /**
   * Stable id, recorded per host when done: the kind, plus `@<digest prefix>` for steps that
   * must run again for a new image or configuration (distribute, render, upgrade).
   */
  id: string;
  kind: StepKind;
  host: string;
  /** What the step does, in words, for the plan shown to people. */
  description: string;
  /** A distribute step under relay distribution: the host this one gets its layers from (none: from the operator). */
  via?: string;
}

export interface PlanPhase {
  /** Matches a phase implementation, e.g. "distribute", "runtime:join". */
  name: string;
  title: string;
  /** parallel: all steps at once (bounded); serial: one after another, stopping at the first failure. */
  mode: "parallel" | "serial";
  steps: PlanStep[];
}

export interface Plan {
  cluster: string;
  actions: Action[];
  phases: PlanPhase[];
  /** One line per thing that changes, e.g. `join 127.0.10.4, 127.0.10.5 (master)`. */
  summary: string[];
  /** What to know before applying it (DesiredCluster.warnings). */
  warnings?: string[];
}
