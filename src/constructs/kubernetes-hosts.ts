import type * as pulumi from "@pulumi/pulumi";
import { canonicalIp, ipFamily, ipProblem } from "../engine/cluster/spec/validators";
import type { ClusterHostArgs, HostSettingsArgs } from "../provider/cluster";

/* A KubernetesCluster's hosts: its masters and workers with their group and own settings, as the Cluster takes them. */

/** Host settings and a host, as they are once their outputs have resolved. */
type ResolvedSettings = pulumi.Unwrap<HostSettingsArgs>;
export type ResolvedHost = pulumi.Unwrap<ClusterHostArgs>;

export function hostInputs(roles: string[], group: ResolvedSettings, own: ResolvedSettings | undefined): ResolvedHost {
  const out: { -readonly [K in keyof ResolvedHost]: ResolvedHost[K] } = { roles };
  const env = mergeEnv(group.env, own?.env);
  const labels = { ...group.labels, ...own?.labels };
  if (env !== undefined && Object.keys(env).length > 0) out.env = env;
  if (Object.keys(labels).length > 0) out.labels = labels;
  const taints = own?.taints ?? group.taints;
  if (taints !== undefined) out.taints = taints;
  const ssh = own?.ssh ?? group.ssh;
  if (ssh !== undefined) out.ssh = ssh;
  return out;
}

type ResolvedEnv = NonNullable<ResolvedSettings["env"]>;

/**
 * `over` over `base`: maps merged; when either is sealer's `KEY=VALUE` list, one list (a later
 * key wins there), so a malformed entry still reaches the Cluster's check and its message.
 */
export function mergeEnv(base: ResolvedEnv | undefined, over: ResolvedEnv | undefined): ResolvedEnv | undefined {
  if (base === undefined || over === undefined) return over ?? base;
  if (!Array.isArray(base) && !Array.isArray(over)) return { ...base, ...over };
  const list = (e: ResolvedEnv) => (Array.isArray(e) ? e : Object.entries(e).map(([k, v]) => `${k}=${v}`));
  return [...list(base), ...list(over)];
}

/** Problems with the host lists: no master, a bad IP, an IP given twice. */
export function hostProblems(masters: readonly unknown[], workers: readonly unknown[], requireMaster = true): string[] {
  const problems: string[] = [];
  if (requireMaster && masters.length === 0) problems.push("masters must list at least one host IP (got [])");
  const seen = new Map<string, string>();
  const check = (list: readonly unknown[], prop: string) => {
    list.forEach((ip, i) => {
      if (typeof ip !== "string") {
        problems.push(`${prop}[${i}] must be an IP address (got ${JSON.stringify(ip)})`);
        return;
      }
      const bad = ipProblem(ip);
      if (bad !== undefined) {
        problems.push(`${prop}[${i}]: ${bad}`);
        return;
      }
      const key = canonicalIp(ip);
      const first = seen.get(key);
      if (first !== undefined) {
        problems.push(`${prop}[${i}]: ${ip} is already ${first}; a host is a master or a worker, once`);
        return;
      }
      seen.set(key, `${prop}[${i}]`);
    });
  };
  check(masters, "masters");
  check(workers, "workers");
  const families = new Set([...seen.keys()].map(ipFamily));
  if (families.size > 1) problems.push("masters and workers mix IPv4 and IPv6 addresses; give all hosts of a cluster in one family");
  return problems;
}
