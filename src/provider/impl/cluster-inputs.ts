import { isMaster } from "../../engine/cluster/plan";
import type { ClusterSpecInput } from "../../engine/cluster/spec";
import type { PluginModulesInputs, PluginSteps } from "./cluster-plugins";

/**
 * The `Cluster` resource's inputs: the cluster spec with hosts keyed by IP (a host is its
 * address, never a position in a list), as plain data. Shared by the resource class (types)
 * and the provider implementation.
 */
export interface ClusterHostInputs {
  /** master, node (or worker), registry, or custom roles. */
  roles: string[];
  env?: Record<string, string>;
  labels?: Record<string, string>;
  taints?: string[];
  /** Over the cluster's ssh settings for this host (password, privateKey: secrets). */
  ssh?: Record<string, unknown>;
}

export interface ClusterInputs extends Omit<ClusterSpecInput, "hosts"> {
  hosts: Record<string, ClusterHostInputs>;
  /**
   * What `delete` does with hosts it cannot reach: "skip" them (the cloud host is gone), or
   * "fail". @default "skip"
   */
  unreachableOnDelete?: "skip" | "fail";
  /**
   * What an update does with a host taken out of `hosts` that cannot be reached: "fail", or
   * "force" its removal (the cluster forgets it, e.g. its Kubernetes node and etcd member; its
   * files stay). @default "fail"
   */
  unreachableOnRemove?: "fail" | "force";
  /** Computed by check: the plan `update` will run, for `pulumi preview --diff`. */
  plan?: string;
  /** Computed by check: where each plugin step of the plan runs and what it does there, for `pulumi preview --diff`. */
  pluginSteps?: PluginSteps;
  /** Computed by the program (the Cluster class): each MODULE plugin's file, version and digest, by plugin name. */
  pluginModules?: PluginModulesInputs;
}

/** IPv4 dotted quads in numeric order, anything else after, by text. */
export function compareIps(a: string, b: string): number {
  const n = (ip: string) => (/^\d+\.\d+\.\d+\.\d+$/.test(ip) ? ip.split(".").reduce((x, o) => x * 256 + Number(o), 0) : Number.NaN);
  const [x, y] = [n(a), n(b)];
  if (!Number.isNaN(x) && !Number.isNaN(y)) return x - y;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The spec input the engine reads: one host group per IP, masters first, each in address
 * order — so the first master (the cluster's anchor) does not depend on the order of a map,
 * which Pulumi does not keep.
 */
export function specInputOf(inputs: ClusterInputs): ClusterSpecInput {
  // `__provider` is the serialised provider the Pulumi engine adds to every dynamic resource's inputs.
  const {
    hosts,
    unreachableOnDelete: _u,
    unreachableOnRemove: _r,
    plan: _p,
    pluginSteps: _ps,
    pluginModules: _m,
    __provider: _s,
    ...rest
  } = inputs as ClusterInputs & Record<string, unknown>;
  // Anything may arrive (a null host, roles that are not a list): the spec's schema names it; here it must only not throw.
  const hostOf = (ip: string): Partial<ClusterHostInputs> => {
    const h: unknown = (hosts as Record<string, unknown>)[ip];
    return h !== null && typeof h === "object" && !Array.isArray(h) ? (h as Partial<ClusterHostInputs>) : {};
  };
  const masterFirst = (ip: string): number => {
    const roles = hostOf(ip).roles;
    return Array.isArray(roles) && isMaster({ roles: roles.filter((r) => typeof r === "string") }) ? 0 : 1;
  };
  const ips = Object.keys(hosts !== null && typeof hosts === "object" ? hosts : {}).sort((a, b) => masterFirst(a) - masterFirst(b) || compareIps(a, b));
  const groups = ips.map((ip) => {
    const h = hostOf(ip);
    return {
      ips: [ip],
      roles: h.roles,
      ...(h.env ? { env: h.env } : {}),
      ...(h.labels ? { labels: h.labels } : {}),
      ...(h.taints ? { taints: h.taints } : {}),
      ...(h.ssh ? { ssh: h.ssh } : {}),
    };
  });
  return { ...(rest as Omit<ClusterSpecInput, "hosts">), hosts: groups as ClusterSpecInput["hosts"] };
}
