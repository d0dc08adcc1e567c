/**
 * What the kubernetes runtime fixes when a cluster is created and cannot change afterwards: its
 * pod and service ranges and DNS domain, as the spec's kubeadm documents set them. Asked by
 * whoever must tell an edit from a new cluster (the Cluster resource's diff).
 */

/** podSubnet, serviceSubnet and dnsDomain that `runtime.kubeadm` documents set (their ClusterConfiguration's networking; a later document wins); unset ones undefined. */
export function kubeadmNetwork(kubeadmDocs: unknown): { podSubnet?: unknown; serviceSubnet?: unknown; dnsDomain?: unknown } {
  const out: { podSubnet?: unknown; serviceSubnet?: unknown; dnsDomain?: unknown } = {};
  if (!Array.isArray(kubeadmDocs)) return out;
  for (const doc of kubeadmDocs as unknown[]) {
    if (doc === null || typeof doc !== "object" || (doc as Record<string, unknown>)["kind"] !== "ClusterConfiguration") continue;
    const net = (doc as Record<string, unknown>)["networking"];
    if (net === null || typeof net !== "object") continue;
    for (const key of ["podSubnet", "serviceSubnet", "dnsDomain"] as const) {
      const v = (net as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = v;
    }
  }
  return out;
}
