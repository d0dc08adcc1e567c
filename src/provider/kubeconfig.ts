import * as pulumi from "@pulumi/pulumi";

/* Serialised into the state as a closure: it captures nothing but `require` (see cluster.ts). */
const kubeconfigProvider: pulumi.dynamic.ResourceProvider = {
  async diff(id, olds, news) {
    return require("sealant/provider/impl/kubeconfig").diff(id, olds, news);
  },
  async create(inputs) {
    return require("sealant/provider/impl/kubeconfig").create(inputs);
  },
  async update(id, olds, news) {
    return require("sealant/provider/impl/kubeconfig").update(id, olds, news);
  },
};

export interface ClusterKubeconfigArgs {
  /** The cluster's admin kubeconfig (made secret here whatever it is). */
  kubeconfig: pulumi.Input<string>;
  /** The API server the kubeconfig names, known before the cluster is applied (e.g. `https://<first master>:6443`). */
  server: pulumi.Input<string>;
  /** The cluster's identity for a `k8s.Provider` (its `clusterIdentifier`). */
  clusterIdentifier: pulumi.Input<string>;
}

/**
 * A cluster's kubeconfig for a `k8s.Provider`, stable across changes of the cluster that keep its
 * API server and identity: a preview that scales or upgrades the cluster shows it unchanged and
 * known (its kubeconfig is the one in the state), so the provider and every workload behind it
 * show no change. Once the cluster's kubeconfig is known, a different text (a renewed client
 * certificate) updates it. The kubeconfig is secret in the state.
 */
export class ClusterKubeconfig extends pulumi.dynamic.Resource {
  /** The kubeconfig (secret). */
  declare readonly kubeconfig: pulumi.Output<string>;
  declare readonly server: pulumi.Output<string>;
  declare readonly clusterIdentifier: pulumi.Output<string>;

  constructor(name: string, args: ClusterKubeconfigArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      kubeconfigProvider,
      name,
      { kubeconfig: pulumi.secret(args.kubeconfig), server: args.server, clusterIdentifier: args.clusterIdentifier },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["kubeconfig"] }),
      "sealant",
      "ClusterKubeconfig",
    );
  }
}
