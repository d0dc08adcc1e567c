import { isMapping } from "./yaml";
import type { SealerNote } from "./sealer-checks";

/*
 * sealer's first Clusterfile format (`sealer.aliyun.com/v1alpha1`, `sealer.cloud/v1`,
 * `sealer.io/v1`): `spec.masters` / `spec.nodes` with an `ipList` each, instead of `spec.hosts`.
 * sealer v0.8 read it by turning it into the v2 Cluster (its utils/decode.go,
 * ConvertV1ClusterToV2Cluster): masters' IPs become a `master` group, nodes' a `node` group;
 * image, env, ssh and the name are kept; provider, network, certSANS and the cloud sizes are
 * dropped. sealant reads it the same way (today's sealer would decode it as a v2 Cluster with no
 * hosts at all), and `sealant convert` writes the result as a current Clusterfile.
 */

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (isMapping(v) ? v : {});

const V1_ONLY = ["masters", "nodes", "provider", "network", "certSANS"] as const;

/** Whether a Cluster document is in sealer's first format (a v1 field and no `spec.hosts`). */
export function isSealerV1Cluster(doc: Obj): boolean {
  const spec = obj(doc["spec"]);
  return !Object.hasOwn(spec, "hosts") && V1_ONLY.some((k) => Object.hasOwn(spec, k));
}

/** The v2 Cluster sealer v0.8 made of a v1 one, and what was dropped on the way. */
export function sealerV1ToV2(doc: Obj): { doc: Obj; notes: SealerNote[] } {
  const spec = obj(doc["spec"]);
  const notes: SealerNote[] = [];
  const hosts: Obj[] = [];
  for (const [field, role] of [
    ["masters", "master"],
    ["nodes", "node"],
  ] as const) {
    const group = obj(spec[field]);
    const ips = group["ipList"];
    if (Array.isArray(ips) && ips.length > 0) hosts.push({ ips, roles: [role] });
    else if (group["count"] !== undefined && group["count"] !== "" && group["count"] !== null) {
      notes.push({ path: ["spec", field, "count"], message: "cloud hosts created by count are not made by sealant: list existing hosts' IPs in ipList" });
    }
    for (const k of Object.keys(group)) {
      if (k !== "ipList" && k !== "count")
        notes.push({ path: ["spec", field, k], message: "a cloud host size: ignored (as sealer v0.8 did for existing hosts)" });
    }
  }
  const network = obj(spec["network"]);
  if (Object.keys(network).length > 0) {
    notes.push({ path: ["spec", "network"], message: "ignored, as sealer v0.8 did: give the ranges as env PodCIDR=... and SvcCIDR=..." });
  }
  for (const k of ["provider", "certSANS"]) if (Object.hasOwn(spec, k)) notes.push({ path: ["spec", k], message: "ignored (sealer v0.8 dropped it too)" });
  const v2spec: Obj = {};
  for (const k of ["image", "env", "ssh"]) if (spec[k] !== undefined) v2spec[k] = spec[k];
  v2spec["hosts"] = hosts;
  const out: Obj = { apiVersion: "sealer.io/v2", kind: "Cluster", spec: v2spec };
  if (doc["metadata"] !== undefined) out["metadata"] = { name: obj(doc["metadata"])["name"] };
  return { doc: out, notes };
}

export const V1_NOTE =
  "sealer's first Clusterfile format (spec.masters/spec.nodes), read as sealer v0.8 read it; `sealant convert -f FILE` writes it as a current one";
