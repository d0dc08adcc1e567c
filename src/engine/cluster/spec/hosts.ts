import { effectiveEnv, type Env } from "./env";
import type { Bastion, ClusterSpec, HostKeyPolicy } from "./schema";
import { sealerClusterEnv } from "./sealer-env";

/** SSH settings of one host: its group's over the cluster's (sealer's merge: a field set on the group wins). */
export interface HostSsh {
  user: string;
  port: number;
  password?: string;
  privateKey?: string;
  privateKeyPath?: string;
  passphrase?: string;
  agent?: boolean | string;
  bastion?: Bastion;
  hostKeyPolicy: HostKeyPolicy;
  knownHosts?: string;
  /** The expected fingerprint of this host's key, if the spec gives one. */
  fingerprint?: string;
}

/** One host of the cluster, with everything that applies to it. */
export interface ResolvedHost {
  ip: string;
  roles: string[];
  /** Index of the host group in `spec.hosts`. */
  group: number;
  ssh: HostSsh;
  /**
   * Cluster env with the group's on top (the image's env goes under both: see `effectiveEnv`), and
   * the variables sealer gives every host (sealer-env.ts: RegistryURL, HostIP, ...) over the cluster's.
   */
  env: Env;
  labels: Record<string, string>;
  taints: string[];
}

function defined<T extends object>(o: T | undefined): Partial<T> {
  const out: Partial<T> = {};
  if (o === undefined) return out;
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** Every host in spec order (group by group, IP by IP): the first master anchors the cluster. */
export function resolveHosts(spec: ClusterSpec, imageEnv?: Env): ResolvedHost[] {
  const { fingerprints, ...clusterSsh } = spec.ssh;
  const clusterEnv = { ...spec.env, ...sealerClusterEnv(spec) };
  return spec.hosts.flatMap((group, g) =>
    group.ips.map((ip) => {
      const { fingerprints: groupFingerprints, ...groupSsh } = group.ssh ?? {};
      const ssh: HostSsh = { ...defined(clusterSsh), ...defined(groupSsh) } as HostSsh;
      const fingerprint = groupFingerprints?.[ip] ?? fingerprints?.[ip];
      if (fingerprint !== undefined) ssh.fingerprint = fingerprint;
      return {
        ip,
        roles: [...group.roles],
        group: g,
        ssh,
        env: { HostIP: ip, ...effectiveEnv(imageEnv, clusterEnv, group.env) },
        labels: { ...(group.labels ?? {}) },
        taints: [...(group.taints ?? [])],
      };
    }),
  );
}

/** The hosts with a role (`master`, `node`, `registry`, custom). */
export function hostsWithRole(hosts: readonly ResolvedHost[], role: string): ResolvedHost[] {
  return hosts.filter((h) => h.roles.includes(role === "worker" ? "node" : role));
}
