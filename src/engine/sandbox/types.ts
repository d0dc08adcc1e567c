// The sandbox as callers see it, and the options of its functions.

/**
 * One host: a namespaced process tree whose PID 1 is `sshd` on `ip:22` (loopback mode), or an init
 * that runs sshd on `ip:22` and the host's enabled units (Kubernetes mode).
 */
export interface SandboxHost {
  /** N in `127.0.10.N` (or the node address `.(10+N)`) and `hostN`. */
  index: number;
  /** `127.0.10.N`, or in Kubernetes mode the node address on the sandbox's bridge; sshd listens on port 22 of this address only. */
  ip: string;
  /** `hostN` (the host's UTS hostname, also in its /etc/hostname and /etc/hosts). */
  hostname: string;
  /** The host's PID 1 (sshd, or the init in Kubernetes mode) as the machine sees it; 0 while stopped. */
  pid: number;
  /** Whether that process runs now (computed when the sandbox is read). */
  running: boolean;
  /** `<sandbox dir>/hostN`: the host's files on the machine (upper/, work/, real/, host.log). */
  dir: string;
  /** The overlay's upper dir: everything the host wrote to its disk, as the machine sees it. */
  upper: string;
  /** Paths inside the host that are real directories (bind mounts of `<dir>/real/<path-with-dashes>`). */
  realDirs: string[];
  /** Kubernetes mode: the host's network namespace (`ip netns exec <netns> ...`; it exists while the host runs). */
  netns?: string;
  /** Kubernetes mode: the host's own cgroups as directories on the machine (one per hierarchy; its cgroup namespace's root), while it runs. */
  cgroups?: string[];
}

/** A Kubernetes-mode sandbox's private network (see network.ts). */
export interface SandboxKubernetes {
  /** The sandbox's /24 (`10.231.S.0/24`); hosts are `.(10+N)`. */
  subnet: string;
  /** The hub's bridge address (`.1`): every host's default gateway, a dead end, and its nameserver (nothing answers). */
  hubIp: string;
  /** The hub's network namespace (`ip netns exec <hubNetns> ...`: e.g. to serve something to every host). */
  hubNetns: string;
  /** This machine's address on the bridge (`.254`), on its veth `rootVeth`. */
  rootIp: string;
  rootVeth: string;
  /** Things the hosts lack, said once (e.g. no br_netfilter: bridge-nf-call-iptables cannot be set). */
  warnings: string[];
}

export interface SandboxSsh {
  /** The login user: root, or the `user` option's (then sshd refuses root logins). */
  user: string;
  /** How a login user other than root becomes root (its sudo rule); absent for root. */
  sudo?: "password" | "nopasswd";
  /** Private key file (ed25519, mode 0600) that every host's login user accepts. */
  pk: string;
  /** The login user's password on every host (for `sudo: "password"`, also what sudo asks for). */
  passwd: string;
  /** A known_hosts file with every host's key (use with StrictHostKeyChecking=yes). */
  knownHosts: string;
}

export interface Sandbox {
  name: string;
  dir: string;
  hosts: SandboxHost[];
  ssh: SandboxSsh;
  /** Present in Kubernetes mode. */
  kubernetes?: SandboxKubernetes;
}

/** A sandbox by name (under `$SEALANT_HOME/sandbox`), by directory (any string with a `/`), or the sandbox itself. */
export type SandboxRef = string | Pick<Sandbox, "dir">;

export interface SandboxCommonOptions {
  /** Per host: how long to wait for its SSH banner. @default 15000 */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface SandboxUpOptions extends SandboxCommonOptions {
  /** @default "default" */
  name?: string;
  /** @default `$SEALANT_HOME/sandbox/<name>` */
  dir?: string;
  /** N of the first host (`127.0.10.N`, `hostN`); hosts take consecutive numbers. @default the first free range */
  firstIndex?: number;
  /** Paths inside each host that are real (non-overlay) per-host directories. @default DEFAULT_REAL_DIRS (plus KUBE_REAL_DIRS in Kubernetes mode) */
  realDirs?: string[];
  /**
   * Kubernetes-capable hosts (see kube-host.ts): each with its own network namespace on a private
   * bridge (node address 10.231.S.(10+N)), cgroup and IPC namespaces, real dirs for containerd,
   * the kubelet and etcd, the kubelet's sysctls, and a systemd stand-in. `subnet`: the sandbox's
   * /24. @default false (loopback hosts on 127.0.10.N)
   */
  kubernetes?: boolean | { subnet?: string };
  /**
   * Hosts as production has them: SSH logs in as this user (by the sandbox's key or its password),
   * who becomes root with sudo — asking for the user's password unless `sudo: "nopasswd"` — and
   * sshd refuses root logins (`PermitRootLogin no`). sudo logs to /var/log/sudo.log on each host.
   * Loopback hosts only. @default root logins, no sudo
   */
  user?: { name?: string; sudo?: "password" | "nopasswd" };
}

/** Who logs in to a sandbox host, and how that user becomes root. */
export interface LoginUser {
  /** The SSH login user (`root`: the default hosts, root login by key and password). */
  name: string;
  /** How that user becomes root; absent for root. */
  sudo?: "password" | "nopasswd";
}
