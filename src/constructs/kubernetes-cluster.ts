import * as pulumi from "@pulumi/pulumi";
import { canonicalIp, dnsLabelProblem, ipFamily } from "../engine/cluster/spec/validators";
import { InvalidReferenceError, parseReference } from "../engine/image/reference";
import { Cluster, type ClusterArgs, type HostSettingsArgs } from "../provider/cluster";
import { ImageBuild, type ImageBuildArgs } from "../provider/image-build";
import { compareIps } from "../provider/impl/cluster-inputs";
import { ClusterBackup, type ClusterBackupArgs } from "../provider/cluster-backup";
import { ClusterRestore, type ClusterRestoreArgs } from "../provider/cluster-restore";
import { KubernetesAccess } from "./kubernetes-provider";
import { hostInputs, hostProblems, type ResolvedHost } from "./kubernetes-hosts";

export { hostProblems, mergeEnv } from "./kubernetes-hosts";

/**
 * Props that a construct got wrong, in the user's terms: the construct, the prop, the bad
 * value and what is allowed. Thrown at construction (before any resource exists) when the
 * value is known then, else when it resolves.
 */
export class InvalidPropsError extends Error {
  constructor(
    readonly construct: string,
    readonly problems: string[],
  ) {
    super(problems.length === 1 ? `${construct}: ${problems[0]}` : `${construct}: invalid props:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "InvalidPropsError";
  }
}

/**
 * A prop's value checked by `problemOf`: now when it is known (a problem joins `problems`, which
 * the construct throws together before any resource exists), else when it resolves (an
 * InvalidPropsError then fails the deployment). The value passed on carries the check.
 */
export function checkedProp<T>(where: string, value: pulumi.Input<T>, problemOf: (v: T) => string | undefined, problems: string[]): pulumi.Input<T> {
  if (!pulumi.Output.isInstance(value) && !(value instanceof Promise)) {
    const problem = problemOf(value);
    if (problem !== undefined) problems.push(problem);
    return value;
  }
  return (pulumi.output(value) as pulumi.Output<T>).apply((v) => {
    const problem = problemOf(v);
    if (problem !== undefined) throw new InvalidPropsError(where, [problem]);
    return v;
  });
}

/** Settings of a host besides its roles: over the cluster's env and ssh, plus node labels and taints. */
export type HostSettings = HostSettingsArgs;

/**
 * What the cluster runs: an image reference, or an image built first from a Kubefile. The
 * choice itself is plain data (it decides whether an `ImageBuild` child exists); the reference
 * and every build argument may be outputs.
 */
export type KubernetesClusterImage = pulumi.Input<string> | { readonly build: ImageBuildArgs };

/*
 * Props are `pulumi.Input` at every depth, as the `Cluster`'s arguments are (whose types they
 * reuse), except what decides which resources the construct creates or is validated as the
 * cluster's identity before any exists: the `image` choice and `clusterName` (plain, as
 * pulumi-eks keeps its `name`).
 */
export interface KubernetesClusterProps {
  /**
   * The cluster image. Either a reference — pin it by digest (`repo:tag@sha256:...`) so a
   * moved tag never changes the cluster unseen — or `{ build: ImageBuildArgs }`: an
   * `ImageBuild` child builds (and pushes, if asked) the image from a Kubefile, and the
   * cluster runs the build's `repoDigest`, so a changed build context is a rolling upgrade.
   */
  readonly image: KubernetesClusterImage;
  /** IPs of the control-plane hosts (role `master`); at least one. */
  readonly masters: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * IPs of the worker hosts (role `node`). A host is a master or a worker, never both.
   * @default [] (no workers)
   */
  readonly workers?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * The cluster's name on the hosts (paths, labels): a DNS label. Changing it replaces the
   * cluster. Plain (not an output): it is checked before any resource exists.
   * @default the construct's name
   */
  readonly clusterName?: string;
  /**
   * How to log in to the hosts: user, port, password or private key (secrets), host-key
   * policy, known_hosts, fingerprints, bastion.
   * @default user "root", port 22, host-key policy "strict" (the `Cluster` resource's defaults)
   */
  readonly ssh?: ClusterArgs["ssh"];
  /** Settings for every master (over `ssh`/`env`), e.g. labels or taints. @default none */
  readonly masterSettings?: pulumi.Input<HostSettings>;
  /** Settings for every worker (over `ssh`/`env`). @default none */
  readonly workerSettings?: pulumi.Input<HostSettings>;
  /**
   * Settings of single hosts by IP, over `masterSettings`/`workerSettings` (labels and env
   * merged, taints and ssh replaced). An IP that is neither a master nor a worker is an error.
   * @default none
   */
  readonly hostSettings?: pulumi.Input<Record<string, pulumi.Input<HostSettings>>>;
  /** Env over the image's (a map, or sealer's `KEY=VALUE` list). @default the image's env */
  readonly env?: ClusterArgs["env"];
  /** The registry the cluster's container images are served from. @default a local registry `sea.hub:5000` on every master */
  readonly registry?: ClusterArgs["registry"];
  /** Lifecycle scripts (sealer's plugins) and the user's own plugin modules (`type: "MODULE"`, resolved from the program's directory; see Cluster). @default none */
  readonly plugins?: ClusterArgs["plugins"];
  /** Files of the image's rootfs overwritten or merged (sealer's configs). @default none */
  readonly configs?: ClusterArgs["configs"];
  /** What to launch after the cluster is up. @default the image's LAUNCH/CMDS */
  readonly apps?: ClusterArgs["apps"];
  /** Runtime overrides (e.g. `kubeadm` documents). @default none */
  readonly runtime?: ClusterArgs["runtime"];
  /** Extra /etc/hosts entries on every host. @default none */
  readonly hostAliases?: ClusterArgs["hostAliases"];
  /** How a new image rolls out. @default rolling, one worker at a time (masters always one at a time) */
  readonly upgrade?: ClusterArgs["upgrade"];
  /** How hosts get the image's layers: from this machine, relayed between the hosts, or auto (relayed from 3 hosts up). @default auto */
  readonly distribution?: ClusterArgs["distribution"];
  /** Connect, command and whole-apply time limits. @default connect 30s, command 600s, apply 3600s */
  readonly timeouts?: ClusterArgs["timeouts"];
  /** Where the cluster's files live on each host. Changing it replaces the cluster. @default "/var/lib/sealant/<clusterName>/" */
  readonly dataRoot?: ClusterArgs["dataRoot"];
  /** Hosts worked on at once. @default 16 */
  readonly parallelism?: ClusterArgs["parallelism"];
  /** What `pulumi destroy` does with hosts it cannot reach: "skip" (the host is gone) or "fail". @default "skip" */
  readonly unreachableOnDelete?: ClusterArgs["unreachableOnDelete"];
  /** What an update does with a removed host it cannot reach: "fail", or "force" (the cluster forgets its node). @default "fail" */
  readonly unreachableOnRemove?: ClusterArgs["unreachableOnRemove"];
}

/** The port of the Kubernetes API server on the masters. */
export const KUBERNETES_API_PORT = 6443;

/**
 * A cluster image run onto hosts given by IP: an optional `ImageBuild` and a `Cluster`, as one
 * component. Adding an IP to `workers` joins that host; removing one drains and removes it;
 * a new image is a rolling upgrade — `pulumi preview --diff` shows the plan.
 *
 * ```ts
 * const k = new KubernetesCluster("prod", {
 *   image: { build: { context: "./image", tag: "registry.example.com/prod/k8s:v1.29" , push: true } },
 *   masters: ["10.0.0.2", "10.0.0.3", "10.0.0.4"],
 *   workers: ["10.0.0.10"],
 *   ssh: { user: "root", privateKey: cfg.requireSecret("sshKey"), knownHosts: "./known_hosts" },
 * });
 * export const kubeconfig = k.kubeconfig;
 * ```
 */
export class KubernetesCluster extends pulumi.ComponentResource {
  /** The `Cluster` child (hosts keyed by IP). */
  readonly cluster: Cluster;
  /** The `ImageBuild` child when `image` is `{ build }`. */
  readonly imageBuild: ImageBuild | undefined;
  /** The image reference the cluster runs (the build's `repoDigest` when built). */
  readonly image: pulumi.Output<string>;
  /** The digest of the image the cluster last applied. */
  readonly imageDigest: pulumi.Output<string>;
  /** Master IPs (canonical spelling), in address order; the first is the cluster's anchor. */
  readonly masters: pulumi.Output<string[]>;
  /** Worker IPs (canonical spelling), in address order. */
  readonly workers: pulumi.Output<string[]>;
  /**
   * The Kubernetes API endpoint: the `Cluster`'s own when its runtime reports one, else
   * `https://<first master>:6443` (the first master in address order, where the control plane
   * is initialised).
   */
  readonly endpoint: pulumi.Output<string>;
  /**
   * The admin kubeconfig (secret): the `Cluster`'s, empty when its runtime writes none (the
   * hooks runtime offers what the image's hooks write; the kubernetes runtime writes one).
   * Unknown in a preview that changes the cluster: for a `k8s.Provider` take `provider` or
   * `kubernetes.kubeconfig`, which stay known while the API server and the cluster stay.
   */
  readonly kubeconfig: pulumi.Output<string>;
  /** The cluster's CA certificate (PEM), "" until the runtime offers one. */
  readonly caCertificate: pulumi.Output<string>;
  /** Hosts as the cluster records them: ip, roles, member, hostname. */
  readonly nodes: Cluster["nodes"];
  /** Every master's control-plane certificates with their expiry, read at each apply and `pulumi refresh`; renewed by an apply once one has under `runtime.certificates.renewBefore` left (30d). */
  readonly certificates: Cluster["certificates"];
  /** The plan the next `pulumi up` runs (as `pulumi preview --diff` shows it). */
  readonly plan: pulumi.Output<string>;
  /** For `@pulumi/kubernetes`: a ready `provider`, or a stable `kubeconfig` and `clusterIdentifier` for one of your own. */
  readonly kubernetes: KubernetesAccess;
  /** The Cluster's arguments, for the backups and restores made from this construct. */
  private readonly clusterArgs: ClusterArgs;

  constructor(name: string, props: KubernetesClusterProps, opts?: pulumi.ComponentResourceOptions) {
    // Validated before anything is registered: bad props leave no resource behind.
    const where = `KubernetesCluster "${name}"`;
    const clusterName = props?.clusterName ?? name;
    validateNow(where, props, clusterName);
    super("sealant:index:KubernetesCluster", name, {}, opts);

    let image: pulumi.Input<string>;
    if (isBuild(props.image)) {
      this.imageBuild = new ImageBuild(`${name}-image`, props.image.build, { parent: this });
      image = this.imageBuild.repoDigest;
    } else {
      this.imageBuild = undefined;
      image = props.image;
    }

    const groups = pulumi.all([pulumi.output(props.masters), pulumi.output(props.workers ?? [])]).apply(([masters, workers]) => {
      const problems = hostProblems(masters, workers);
      if (problems.length > 0) throw new InvalidPropsError(where, problems);
      const sorted = (ips: string[]) => ips.map(canonicalIp).sort(compareIps);
      return { masters: sorted(masters), workers: sorted(workers) };
    });
    this.masters = groups.masters;
    this.workers = groups.workers;

    const hosts = pulumi
      .all([groups, pulumi.output(props.masterSettings ?? {}), pulumi.output(props.workerSettings ?? {}), pulumi.output(props.hostSettings ?? {})])
      .apply(([g, masterSettings, workerSettings, hostSettings]) => {
        const byIp = Object.fromEntries(Object.entries(hostSettings).map(([ip, s]) => [ipFamily(ip) ? canonicalIp(ip) : ip, s]));
        const stray = Object.keys(byIp).filter((ip) => !g.masters.includes(ip) && !g.workers.includes(ip));
        if (stray.length > 0) {
          throw new InvalidPropsError(where, [
            `hostSettings names ${stray.join(", ")}, which ${stray.length === 1 ? "is" : "are"} in neither masters nor workers`,
          ]);
        }
        const out: Record<string, ResolvedHost> = {};
        for (const ip of g.masters) out[ip] = hostInputs(["master"], masterSettings, byIp[ip]);
        for (const ip of g.workers) out[ip] = hostInputs(["node"], workerSettings, byIp[ip]);
        return out;
      });

    const args: ClusterArgs = {
      name: clusterName,
      image,
      hosts,
      ssh: props.ssh,
      env: props.env,
      registry: props.registry,
      plugins: props.plugins,
      configs: props.configs,
      apps: props.apps,
      runtime: props.runtime,
      hostAliases: props.hostAliases,
      upgrade: props.upgrade,
      distribution: props.distribution,
      timeouts: props.timeouts,
      dataRoot: props.dataRoot,
      parallelism: props.parallelism,
      unreachableOnDelete: props.unreachableOnDelete,
      unreachableOnRemove: props.unreachableOnRemove,
    };
    this.cluster = new Cluster(name, args, { parent: this });
    this.clusterArgs = args;

    const fallbackEndpoint = groups.apply((g) => apiEndpoint(g.masters[0]!));
    this.endpoint = pulumi.all([this.cluster.endpoint, fallbackEndpoint]).apply(([own, fallback]) => (own ? own : fallback));
    this.kubeconfig = pulumi.secret(this.cluster.kubeconfig.apply((k) => k ?? ""));
    this.caCertificate = this.cluster.caCertificate.apply((c) => c ?? "");
    this.image = pulumi.output(image);
    this.imageDigest = this.cluster.imageDigest;
    this.nodes = this.cluster.nodes;
    this.certificates = this.cluster.certificates;
    this.plan = this.cluster.plan;
    const access = { clusterName, kubeconfig: this.kubeconfig, server: fallbackEndpoint, dataRoot: props.dataRoot, runtime: props.runtime };
    this.kubernetes = new KubernetesAccess(this, name, where, access);

    this.registerOutputs({
      image: this.image,
      imageDigest: this.imageDigest,
      masters: this.masters,
      workers: this.workers,
      endpoint: this.endpoint,
      kubeconfig: this.kubeconfig,
      caCertificate: this.caCertificate,
      nodes: this.nodes,
      certificates: this.certificates,
    });
  }

  /**
   * A backup of this cluster — a `ClusterBackup` with the cluster's own arguments, taken once the
   * cluster is up (add `dependsOn: [workload]` to take it after a workload); a new `trigger`, `to`
   * or `push` takes another. `cluster.backup("nightly", { to: "/var/backups/k8s", trigger })`.
   */
  backup(name: string, args: Pick<ClusterBackupArgs, "to" | "trigger" | "push">, opts?: pulumi.CustomResourceOptions): ClusterBackup {
    return new ClusterBackup(name, { ...this.clusterArgs, ...args }, pulumi.mergeOptions({ parent: this, dependsOn: [this.cluster] }, opts));
  }

  /**
   * This cluster restored from a backup — a `ClusterRestore` with the cluster's own arguments:
   * it restores when created and again when `from` or `trigger` changes (`from: backup.archive`,
   * or `"oci://" + artifact`). Deleting it changes nothing on the cluster.
   */
  restore(name: string, args: Pick<ClusterRestoreArgs, "from" | "trigger">, opts?: pulumi.CustomResourceOptions): ClusterRestore {
    return new ClusterRestore(name, { ...this.clusterArgs, ...args }, pulumi.mergeOptions({ parent: this, dependsOn: [this.cluster] }, opts));
  }

  /** A `k8s.Provider` for workloads on this cluster (`kubernetes.provider`): scaling or upgrading the cluster replaces none of them. */
  get provider(): KubernetesAccess["provider"] {
    return this.kubernetes.provider;
  }
}

function isBuild(image: KubernetesClusterImage): image is { readonly build: ImageBuildArgs } {
  return typeof image === "object" && image !== null && !pulumi.Output.isInstance(image) && "build" in image && !(image instanceof Promise);
}

/** `https://ip:6443`, with IPv6 in brackets. */
export function apiEndpoint(ip: string, port = KUBERNETES_API_PORT): string {
  return ipFamily(ip) === "IPv6" ? `https://[${ip}]:${port}` : `https://${ip}:${port}`;
}

/** The cluster name's problem, if any (`defaulted`: it came from the construct's name). */
export function clusterNameProblem(clusterName: string, defaulted: boolean): string | undefined {
  const problem = dnsLabelProblem(clusterName);
  return problem === undefined ? undefined : `clusterName ${problem}${defaulted ? " (it defaults to the construct's name; set clusterName)" : ""}`;
}

/** The image prop's problem, if any, as far as it is known now. */
export function imageProblem(image: KubernetesClusterImage | undefined): string | undefined {
  if (image === undefined || image === null || image === "")
    return "image is required: an image reference (repo:tag@sha256:...) or { build: { context, tag, ... } }";
  if (typeof image === "string") {
    try {
      parseReference(image);
    } catch (err) {
      return `image: ${err instanceof InvalidReferenceError ? err.message : String(err)}`;
    }
  } else if (isBuild(image) && (typeof image.build !== "object" || image.build === null)) {
    return "image.build must be the ImageBuild arguments ({ context, tag, kubefile?, ... })";
  }
  return undefined;
}

/** A plain array whose elements are all known now (no Output, no Promise), else undefined. */
function known(v: unknown): unknown[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.every((e) => !pulumi.Output.isInstance(e) && !(e instanceof Promise)) ? v : undefined;
}

/** Everything that can be checked before any resource exists. */
function validateNow(where: string, props: KubernetesClusterProps, clusterName: string): void {
  const problems: string[] = [];
  if (props === undefined || props === null) throw new InvalidPropsError(where, ["props are required: at least image and masters"]);
  for (const problem of [clusterNameProblem(clusterName, props.clusterName === undefined), imageProblem(props.image)]) {
    if (problem !== undefined) problems.push(problem);
  }
  if (props.masters === undefined || props.masters === null) {
    problems.push("masters is required: the IPs of the control-plane hosts (at least one)");
  } else {
    const masters = known(props.masters);
    const workers = props.workers === undefined ? [] : known(props.workers);
    // Checked now only as far as the values are known; the rest when they resolve.
    if (masters !== undefined && workers !== undefined) problems.push(...hostProblems(masters, workers));
    else if (masters !== undefined) problems.push(...hostProblems(masters, []));
    else if (workers !== undefined) problems.push(...hostProblems([], workers, false));
  }
  if (problems.length > 0) throw new InvalidPropsError(where, problems);
}
