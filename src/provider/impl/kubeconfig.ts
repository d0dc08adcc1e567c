/**
 * The `ClusterKubeconfig` dynamic provider's implementation (no Pulumi import; ../kubeconfig.ts
 * only `require`s it). It holds a cluster's kubeconfig for a `k8s.Provider` so that the
 * provider's configuration stays known and unchanged while the cluster changes in ways that keep
 * its API server and CA.
 *
 * Why a resource of its own: in a preview, a dynamic resource that is being updated reports its
 * new inputs as its outputs (dynamic providers do not preview), so the `Cluster`'s kubeconfig is
 * unknown during every preview that scales or upgrades it, and a `k8s.Provider` built from it
 * would show every workload behind it as changing. A resource whose diff says "no change" is a
 * `same` step instead, and a same step keeps its outputs from the state: known, unchanged.
 */
import { isUnknown } from "./unknown";

export interface ClusterKubeconfigInputs {
  /** The cluster's admin kubeconfig (a secret); the unknown sentinel in a preview while the cluster changes. */
  kubeconfig: string;
  /** The API server the kubeconfig names, as the program knows it before the cluster is applied. */
  server: string;
  /** What the `k8s.Provider` is told the cluster is: its change replaces the provider and its workloads. */
  clusterIdentifier: string;
}

/**
 * A change only when something the preview knows moved (the server, the cluster's identity) or,
 * once the cluster's kubeconfig is known, when its text differs: a scale leaves the admin
 * kubeconfig as it was, a certificate renewal gives it a new client certificate (an update: the
 * `k8s.Provider` is updated, its workloads stay).
 */
export async function diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<{ changes: boolean; replaces: string[] }> {
  const moved = olds["server"] !== news["server"] || olds["clusterIdentifier"] !== news["clusterIdentifier"];
  const kubeconfig = news["kubeconfig"];
  const changed = !isUnknown(kubeconfig) && kubeconfig !== olds["kubeconfig"];
  return { changes: moved || changed, replaces: [] };
}

function outputsOf(inputs: Record<string, unknown>): Record<string, unknown> {
  const kubeconfig = inputs["kubeconfig"];
  if (typeof kubeconfig !== "string" || kubeconfig === "") {
    // The value is never shown: it would be the cluster admin's credentials.
    throw new Error(
      `the cluster offers no kubeconfig (its runtime writes none: only the kubernetes runtime, an image FROM sealant's Kubernetes base image, does), so there is no Kubernetes provider for ${String(inputs["clusterIdentifier"])}`,
    );
  }
  return { kubeconfig, server: inputs["server"], clusterIdentifier: inputs["clusterIdentifier"] };
}

export async function create(inputs: Record<string, unknown>): Promise<{ id: string; outs: Record<string, unknown> }> {
  return { id: String(inputs["clusterIdentifier"]), outs: outputsOf(inputs) };
}

export async function update(_id: string, _olds: Record<string, unknown>, news: Record<string, unknown>): Promise<{ outs: Record<string, unknown> }> {
  return { outs: outputsOf(news) };
}
