import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";
import { kubeadmNetwork } from "../engine/cluster/runtime/kubernetes/network";
import { ClusterKubeconfig } from "../provider/kubeconfig";

/** The `@pulumi/kubernetes` releases a ready provider is made with (the package's optional peer dependency). */
export const KUBERNETES_SDK_RANGE = "^4.25.0";

/**
 * `@pulumi/kubernetes`, loaded only when a provider is asked for: programs without Kubernetes
 * workloads need not install it. Loaded from where sealant is installed, which in a program's
 * node_modules is the copy the program's own workloads use (one copy: a provider from another
 * copy would not be accepted by them).
 */
function loadKubernetesSdk(where: string): typeof k8s {
  try {
    return require("@pulumi/kubernetes") as typeof k8s;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "MODULE_NOT_FOUND" && e.message.includes("'@pulumi/kubernetes'")) {
      throw new Error(
        `${where}: a Kubernetes provider needs the npm package @pulumi/kubernetes (${KUBERNETES_SDK_RANGE}), which is not installed: npm install @pulumi/kubernetes`,
      );
    }
    throw err;
  }
}

export interface KubernetesAccessSource {
  /** The cluster's name on its hosts (plain: the construct checks it before any resource exists). */
  clusterName: string;
  /** The Cluster's kubeconfig (secret). */
  kubeconfig: pulumi.Output<string>;
  /** The API server as the program knows it before an apply: `https://<first master>:6443`. */
  server: pulumi.Output<string>;
  /** What besides the name replaces the Cluster (a new cluster, a new CA): its data root and network ranges. */
  dataRoot: pulumi.Input<string> | undefined;
  runtime: pulumi.Input<Record<string, unknown>> | undefined;
}

/**
 * A cluster's identity for `k8s.Provider`'s `clusterIdentifier`, known in every preview: the
 * cluster's name, and a digest of its data root and network ranges when they are set — exactly
 * what replaces the `Cluster` (a new cluster: its workloads must be created again), and nothing
 * that a scale, an upgrade or a replaced master changes.
 */
export function clusterIdentifierOf(clusterName: string, dataRoot: string | undefined, runtime: Record<string, unknown> | undefined): string {
  const { podSubnet, serviceSubnet, dnsDomain } = kubeadmNetwork(runtime?.["kubeadm"]);
  const replacing = { dataRoot, podSubnet, serviceSubnet, dnsDomain };
  if (Object.values(replacing).every((v) => v === undefined)) return `sealant:${clusterName}`;
  const digest = createHash("sha256").update(JSON.stringify(replacing)).digest("hex").slice(0, 12);
  return `sealant:${clusterName}:${digest}`;
}

/**
 * A cluster's stable kubeconfig and ready `k8s.Provider`, each created on first use as children
 * of the construct: programs that never ask create neither, and need no `@pulumi/kubernetes`.
 */
export class KubernetesAccess {
  readonly clusterIdentifier: pulumi.Output<string>;
  private stable: ClusterKubeconfig | undefined;
  private ready: k8s.Provider | undefined;

  constructor(
    private readonly parent: pulumi.ComponentResource,
    private readonly name: string,
    private readonly where: string,
    private readonly source: KubernetesAccessSource,
  ) {
    this.clusterIdentifier = pulumi
      .all([pulumi.output(source.dataRoot), pulumi.output(source.runtime)])
      .apply(([dataRoot, runtime]) => clusterIdentifierOf(source.clusterName, dataRoot, runtime as Record<string, unknown> | undefined));
  }

  /**
   * The cluster's admin kubeconfig (secret) for a `k8s.Provider` of your own, with
   * `clusterIdentifier`: unchanged and known in a preview that scales or upgrades the cluster.
   */
  get kubeconfig(): pulumi.Output<string> {
    this.stable ??= new ClusterKubeconfig(
      `${this.name}-kubeconfig`,
      { kubeconfig: this.source.kubeconfig, server: this.source.server, clusterIdentifier: this.clusterIdentifier },
      { parent: this.parent },
    );
    return this.stable.kubeconfig;
  }

  /**
   * A `k8s.Provider` with `kubeconfig` and `clusterIdentifier` (needs `@pulumi/kubernetes`). Typed
   * as the `ProviderResource` resource options take, so sealant's declarations never name
   * `@pulumi/kubernetes` and compile without it.
   */
  get provider(): pulumi.ProviderResource {
    if (this.ready) return this.ready;
    const sdk = loadKubernetesSdk(this.where);
    this.ready = new sdk.Provider(
      `${this.name}-kubernetes`,
      { kubeconfig: this.kubeconfig, clusterIdentifier: this.clusterIdentifier },
      { parent: this.parent },
    );
    return this.ready;
  }
}
