import * as pulumi from "@pulumi/pulumi";
import type { ClusterArgs, ClusterCertificate, ClusterHostArgs, ClusterNode } from "./cluster-args";
import type { PluginModulesInputs } from "./impl/cluster-plugins";
import { pluginModulesOf } from "./plugin-modules";

export type {
  AppConfigArgs,
  AppFileArgs,
  AppsArgs,
  BastionArgs,
  ClusterArgs,
  ClusterHostArgs,
  ClusterNode,
  ClusterCertificate,
  ClusterRegistryArgs,
  ConfigArgs,
  DistributionArgs,
  EnvArgs,
  ExternalRegistryArgs,
  HostAliasArgs,
  HostSettingsArgs,
  PluginArgs,
  PullThroughUpstreamArgs,
  RegistriesArgs,
  RegistryHostConfigArgs,
  RegistryMirrorArgs,
  SshArgs,
  TimeoutsArgs,
  UpgradeArgs,
} from "./cluster-args";

/*
 * The provider object is serialised into the stack's state as a closure: it captures nothing
 * but `require`, and every method loads the compiled implementation at run time.
 */
const clusterProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    return require("sealant/provider/impl/cluster").check(olds, news);
  },
  async diff(id, olds, news) {
    return require("sealant/provider/impl/cluster").diff(id, olds, news);
  },
  async create(inputs) {
    return require("sealant/provider/impl/cluster").create(inputs);
  },
  async update(id, olds, news) {
    return require("sealant/provider/impl/cluster").update(id, olds, news);
  },
  async read(id, props) {
    return require("sealant/provider/impl/cluster").read(id, props);
  },
  async delete(id, props) {
    return require("sealant/provider/impl/cluster").remove(id, props);
  },
};

/**
 * A cluster image running on hosts over SSH. Adding or removing hosts and a new image are
 * updates (join, remove, rolling upgrade); the name and data root replace the cluster.
 * `pulumi preview --diff` shows the `plan` the update will run.
 */
export class Cluster extends pulumi.dynamic.Resource {
  /** The plan of the last check: what `pulumi up` runs. */
  declare readonly plan: pulumi.Output<string>;
  /** The plan's summary as last executed. */
  declare readonly lastPlan: pulumi.Output<string[]>;
  declare readonly imageDigest: pulumi.Output<string>;
  /** Hosts as the cluster records them: ip, roles, member, hostname. */
  declare readonly nodes: pulumi.Output<ClusterNode[]>;
  /** Where users reach the cluster, as its runtime reports it ("" when it reports none). */
  declare readonly endpoint: pulumi.Output<string>;
  /** The admin kubeconfig (secret) when the runtime writes one, else "". */
  declare readonly kubeconfig: pulumi.Output<string>;
  /** The cluster's CA certificate (PEM) when the runtime has one, else "". */
  declare readonly caCertificate: pulumi.Output<string>;
  /** Every master's control-plane certificates and their expiry, read at each apply and `pulumi refresh` ([] for runtimes without any). */
  declare readonly certificates: pulumi.Output<ClusterCertificate[]>;
  /** Set when the last update failed part way: why. The next `pulumi up` resumes it. */
  declare readonly unfinished: pulumi.Output<string | undefined>;
  /**
   * Each MODULE plugin as the program found it, by plugin name: the module, its package version,
   * the digest of its files (what `up` loads must still have it) and its file, relative to the
   * program's directory. A plugin upgrade shows here in `pulumi preview --diff`.
   */
  declare readonly pluginModules: pulumi.Output<PluginModulesInputs | undefined>;

  constructor(name: string, args: ClusterArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      clusterProvider,
      name,
      {
        ...args,
        // Secret whole, whatever their parts are: a password given as a plain string too.
        ssh: args.ssh === undefined ? undefined : pulumi.secret(args.ssh),
        registry: args.registry === undefined ? undefined : pulumi.secret(args.registry),
        hosts: withSecretHostSsh(args.hosts),
        // Resolved here, in the program's process: its node_modules are where the modules are.
        pluginModules: pluginModulesOf(args.plugins),
        plan: undefined,
        lastPlan: undefined,
        imageDigest: undefined,
        nodes: undefined,
        unfinished: undefined,
        endpoint: undefined,
        kubeconfig: undefined,
        caCertificate: undefined,
        certificates: undefined,
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["ssh", "registry", "hosts", "kubeconfig"] }),
      "sealant",
      "Cluster",
    );
  }
}

/** Neither an Output nor a Promise: a value whose fields can be read now. */
function isPlain<T extends object>(v: pulumi.Input<T>): v is T {
  return !pulumi.Output.isInstance(v) && !(v instanceof Promise);
}

/**
 * Each host's ssh settings made secret, as the cluster's are; the rest of a host (roles,
 * labels, ...) stays readable in the state and in `pulumi preview --diff`. (Secrets the user
 * passes elsewhere stay secret where they are: Pulumi keeps a nested secret's place, and the
 * engine marks an output secret where its input was.)
 */
function withSecretHostSsh(hosts: ClusterArgs["hosts"]): ClusterArgs["hosts"] {
  const secretSsh = (h: ClusterHostArgs): ClusterHostArgs => (h?.ssh === undefined ? h : { ...h, ssh: pulumi.secret(h.ssh) });
  const host = (h: pulumi.Input<ClusterHostArgs>): pulumi.Input<ClusterHostArgs> => (isPlain(h) ? secretSsh(h) : pulumi.output(h).apply(secretSsh));
  const each = (hs: Record<string, pulumi.Input<ClusterHostArgs>>) => Object.fromEntries(Object.entries(hs ?? {}).map(([ip, h]) => [ip, host(h)]));
  return isPlain(hosts) ? each(hosts) : pulumi.output(hosts).apply(each);
}
