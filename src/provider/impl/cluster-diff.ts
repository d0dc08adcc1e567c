/**
 * The Cluster's diff: which input changes are an update, which replace the cluster. Plugin
 * modules are compared by what pins them (module, version, digest), not by where the program's
 * directory happens to be. No Pulumi import here.
 */
import { DEFAULT_RENEW_BEFORE, durationSeconds } from "../../engine/cluster/runtime/kubernetes/certs-settings";
import { kubeadmNetwork } from "../../engine/cluster/runtime/kubernetes/network";
import type { ClusterInputs } from "./cluster-inputs";
import { pinsOf } from "./cluster-plugins";

/** Input properties that replace the cluster when changed (its identity on the hosts). */
const REPLACE_ON = ["name", "dataRoot"] as const;

/** The inputs a state holds, without what the provider adds. */
export function inputsOf(props: Record<string, unknown>): Record<string, unknown> {
  const {
    __provider: _p,
    record: _r,
    nodes: _n,
    imageDigest: _i,
    lastPlan: _l,
    endpoint: _e,
    kubeconfig: _k,
    caCertificate: _c,
    certificates: _certs,
    unfinished: _u,
    ...rest
  } = props;
  return rest;
}

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(",")}]`;
  if (v && typeof v === "object")
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

export async function diff(
  _id: string,
  olds: Record<string, unknown>,
  news: ClusterInputs,
): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }> {
  // `plan` and `pluginSteps` are derived from the other inputs (check adds them; outputs do not keep them).
  const { plan: _before, pluginSteps: _stepsBefore, pluginModules: oldModules, ...beforeRest } = inputsOf(olds);
  const { plan: _after, pluginSteps: _stepsAfter, pluginModules: newModules, ...afterRest } = inputsOf(news as unknown as Record<string, unknown>);
  const before: Record<string, unknown> = { ...beforeRest, pluginModules: pinsOf(oldModules) };
  const after: Record<string, unknown> = { ...afterRest, pluginModules: pinsOf(newModules) };
  const replaces: string[] = REPLACE_ON.filter((k) => stable(before[k]) !== stable(after[k]));
  // A cluster's pod and service ranges are fixed when it is created: changing them means a new cluster.
  if (stable(networkRanges(before)) !== stable(networkRanges(after))) replaces.push("runtime");
  // An update that failed part way left the same inputs but not their cluster: run it again (it resumes).
  // Certificates the last refresh (or apply) read with less left than the threshold: an update renews them.
  const changes = stable(before) !== stable(after) || Boolean(olds["unfinished"]) || renewalDue(olds["certificates"], news.runtime);
  return { changes, replaces, deleteBeforeReplace: true };
}

/** Whether a leaf certificate in the state has less left now than `runtime.certificates.renewBefore` (30d) asks. */
function renewalDue(certificates: unknown, runtime: unknown): boolean {
  if (!Array.isArray(certificates)) return false;
  const given = ((runtime as { certificates?: { renewBefore?: unknown } } | undefined)?.certificates ?? {}).renewBefore;
  const before = (durationSeconds(given) ?? durationSeconds(DEFAULT_RENEW_BEFORE)!) * 1000;
  return (certificates as { ca?: boolean; notAfter?: unknown }[]).some(
    (c) => !c.ca && typeof c.notAfter === "string" && Date.parse(c.notAfter) - Date.now() < before,
  );
}

/** The cluster's network ranges as the kubernetes runtime reads them from `runtime.kubeadm`. */
export function networkRanges(inputs: Record<string, unknown>): Record<string, unknown> {
  const { podSubnet, serviceSubnet, dnsDomain } = kubeadmNetwork((inputs["runtime"] as { kubeadm?: unknown } | undefined)?.kubeadm);
  return { podSubnet, serviceSubnet, dnsDomain };
}
