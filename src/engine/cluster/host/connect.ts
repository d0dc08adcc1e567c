import { join } from "node:path";
import { ConnectionPool, type SshConnectionOptions, type SshEndpoint } from "../../ssh";
import type { Bastion, ClusterSpec, HostSsh, ResolvedHost } from "../spec";
import { effectiveEnv } from "../spec";

/** A cluster host as the SSH layer addresses it. */
export interface ClusterHost extends ResolvedHost {
  readonly address: string;
  readonly port?: number;
}

export function clusterHost(h: ResolvedHost): ClusterHost {
  return { ...h, address: h.ip, port: h.ssh.port };
}

/**
 * A host the record knows but the spec no longer lists (being removed): reached with the
 * cluster's SSH settings, since its group is gone.
 */
export function removedHost(spec: ClusterSpec, ip: string, roles: string[]): ClusterHost {
  const { fingerprints, ...ssh } = spec.ssh;
  const fingerprint = fingerprints?.[ip];
  return clusterHost({
    ip,
    roles,
    group: -1,
    ssh: { ...(ssh as HostSsh), ...(fingerprint ? { fingerprint } : {}) },
    env: effectiveEnv(undefined, spec.env, undefined),
    labels: {},
    taints: [],
  });
}

export interface ConnectOptions {
  /** sealant's own known_hosts (keys accepted under accept-new are recorded here). */
  knownHostsFile: string;
  /** Seconds per connection attempt. */
  connectTimeoutS: number;
}

export function defaultKnownHosts(home: string): string {
  return join(home, "known_hosts");
}

function bastionEndpoint(b: Bastion, ssh: HostSsh, opts: ConnectOptions): SshEndpoint {
  return {
    host: b.host,
    port: b.port,
    user: b.user ?? ssh.user,
    ...(b.password !== undefined ? { password: b.password } : {}),
    ...(b.privateKey !== undefined ? { privateKey: b.privateKey } : b.privateKeyPath !== undefined ? { privateKeyPath: b.privateKeyPath } : {}),
    ...(b.passphrase !== undefined ? { passphrase: b.passphrase } : {}),
    ...(b.agent !== undefined ? { agent: b.agent } : {}),
    hostKey: {
      policy: ssh.hostKeyPolicy,
      ...(b.fingerprint ? { fingerprints: [b.fingerprint] } : {}),
      knownHosts: [...(ssh.knownHosts ? [ssh.knownHosts] : []), opts.knownHostsFile],
    },
    connectTimeoutMs: opts.connectTimeoutS * 1000,
  };
}

/** SSH options for one host: its auth, host-key policy (with sealant's known_hosts), bastion. */
export function sshOptionsFor(h: ClusterHost, opts: ConnectOptions): SshConnectionOptions {
  const ssh = h.ssh;
  // Under accept-new the first file is where new keys go: sealant's own, never the user's.
  const knownHosts =
    ssh.hostKeyPolicy === "accept-new"
      ? [opts.knownHostsFile, ...(ssh.knownHosts ? [ssh.knownHosts] : [])]
      : [...(ssh.knownHosts ? [ssh.knownHosts] : []), opts.knownHostsFile];
  return {
    host: h.ip,
    port: ssh.port,
    user: ssh.user,
    ...(ssh.password !== undefined ? { password: ssh.password } : {}),
    ...(ssh.privateKey !== undefined ? { privateKey: ssh.privateKey } : ssh.privateKeyPath !== undefined ? { privateKeyPath: ssh.privateKeyPath } : {}),
    ...(ssh.passphrase !== undefined ? { passphrase: ssh.passphrase } : {}),
    ...(ssh.agent !== undefined ? { agent: ssh.agent } : {}),
    ...(ssh.bastion ? { bastion: bastionEndpoint(ssh.bastion, ssh, opts) } : {}),
    hostKey: { policy: ssh.hostKeyPolicy, ...(ssh.fingerprint ? { fingerprints: [ssh.fingerprint] } : {}), knownHosts },
    connectTimeoutMs: opts.connectTimeoutS * 1000,
    // A cluster host that refuses is usually down, not booting: a few quick retries only.
    retry: { attempts: 3, initialDelayMs: 200, maxDelayMs: 1000 },
  };
}

export function clusterPool(opts: ConnectOptions): ConnectionPool<ClusterHost> {
  return ConnectionPool.ssh<ClusterHost>((h) => sshOptionsFor(h, opts));
}
