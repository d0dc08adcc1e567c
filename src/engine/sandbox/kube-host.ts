import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { existsSync, lstatSync, statSync } from "node:fs";
import { lstat, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CGROUP_FS, createHostCgroups, removeCgroups, type CgroupLayout } from "./cgroups";
import { hostPaths, mkdirLike, prepareHost, realDirName, spawnLauncher, type HostFiles, type HostLayout, type Launched, type Tool } from "./host";
import { hostNetDown, hostNetUp, type SandboxNet } from "./network";
import { copyStandIn } from "./systemd-lite/copy-stand-in";
import { BOOT, INIT, JOURNALCTL, LIB_DIR, standInSource, supervise, systemctlWrapper } from "./systemd-lite/files";

/**
 * Kubernetes-capable sandbox hosts. On top of a loopback host (overlay root over the machine's /,
 * own mount/UTS/PID namespaces, sshd), each has: its own network namespace (eth0 on the sandbox's
 * private bridge, see network.ts), its own cgroup namespace rooted at a per-host child of the
 * launcher's cgroup in every hierarchy with fresh sysfs and cgroup mounts (so each kubelet's
 * /kubepods is private), its own IPC namespace, real directories for containerd, the kubelet and
 * etcd, a root made rshared after pivot_root (mount propagation for kubelet volumes; the machine's
 * mounts are detached from the host's namespace), fresh /proc, /run, /tmp and /dev/shm, the
 * kubelet's global sysctls as per-host files over /proc/sys entries (the machine's values never
 * change), and an init-system stand-in (systemd-lite/) whose enabled units start at boot.
 */

/** Paths inside every Kubernetes-mode host bound to real per-host directories (overlayfs cannot hold containerd's overlay snapshots). */
export const KUBE_REAL_DIRS = ["/var/lib/containerd", "/var/lib/kubelet", "/var/lib/etcd"];

/**
 * Global sysctls the kubelet insists on (it writes any that differ, fatally if it cannot): each is
 * a per-host regular file holding the wanted value, bind-mounted over the /proc/sys entry inside
 * the host, so the kubelet finds its value and the machine's kernel settings stay untouched.
 */
export const KUBE_SYSCTLS: Record<string, string> = {
  "kernel/panic": "10",
  "kernel/panic_on_oops": "1",
  "vm/overcommit_memory": "1",
  "vm/panic_on_oom": "0",
  "kernel/keys/root_maxkeys": "1000000",
  "kernel/keys/root_maxbytes": "25000000",
};

export const KUBE_TOOLS: Tool[] = [
  { name: "ip", pkg: "iproute2" },
  { name: "nsenter", pkg: "util-linux" },
  { name: "pivot_root", pkg: "util-linux" },
  { name: "umount", pkg: "mount" },
  { name: "mknod", pkg: "coreutils" },
  { name: "perl", pkg: "perl-base" },
];

/** What a Kubernetes-mode host has besides its layout: the sandbox's network, its own namespace and cgroup name. */
export interface KubeHostSetup {
  net: SandboxNet;
  netns: string;
  /** The child cgroup's name in every hierarchy (`sealant-<sandbox>-hostN`). */
  cgroupName: string;
}

export const kubePaths = (dir: string) => ({
  kube: join(dir, "kube"),
  sysctl: join(dir, "kube", "sysctl"),
  cgroupProcs: join(dir, "kube", "cgroup-procs"),
  mounts: join(dir, "kube", "mounts.sh"),
});

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The checks beyond tools: cgroups to nest in, and a Node the hosts can see. */
export async function kubePreflightProblems(layout: () => Promise<CgroupLayout>): Promise<string[]> {
  const problems: string[] = [];
  try {
    const l = await layout();
    if (!l.hierarchies.length) problems.push(`cgroup hierarchies mounted under ${CGROUP_FS} (none found)`);
  } catch (err) {
    problems.push(`usable cgroups (${(err as Error).message})`);
  }
  // Hosts see the machine's root filesystem only (overlay lowerdir=/): the stand-in's Node must live there.
  if (statSync(process.execPath).dev !== statSync("/").dev)
    problems.push(`a Node on the root filesystem (${process.execPath} is on another filesystem, which hosts do not see)`);
  // Run from the sources (tests), the stand-in is TypeScript: Node strips its types itself since 22.18.
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  if (standInSource().name.endsWith(".ts") && (major < 22 || (major === 22 && minor < 18)))
    problems.push(`Node 22.18 or later to run the systemctl stand-in from its TypeScript source (this is ${process.version}; or run the compiled build)`);
  return problems;
}

/**
 * The launcher (`<host dir>/launch.sh`), run by nsenter inside the host's network namespace:
 * joins the host's cgroups, then runs itself again as PID 1 of new namespaces, which mounts the
 * host's filesystems, pivots into its root and becomes its init.
 */
const LAUNCH_SCRIPT = `#!/bin/sh
# sealant sandbox host launcher (Kubernetes mode), written by sealant at every start.
#   launch.sh launch DIR HOSTNAME PASSWORD-FILE|-   (run by nsenter in the host's network namespace)
set -eu
if [ "$1" = launch ]; then
  shift
  # the host's own cgroup in every hierarchy: its cgroup namespace is rooted there
  while IFS= read -r f; do echo $$ > "$f"; done < "$1/kube/cgroup-procs"
  exec unshare --mount --uts --ipc --pid --cgroup --fork --kill-child --propagation private /bin/sh "$0" host "$@"
fi
D=$2; H=$3; PW=$4
R=$D/root
mount -t overlay overlay -o "lowerdir=/,upperdir=$D/upper,workdir=$D/work" "$R"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$R/dev/shm"
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs "$R/run"
mkdir -m 755 "$R/run/sshd"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$R/tmp"
. "$D/kube/mounts.sh"
hostname "$H"
if [ "$PW" != - ]; then printf 'root:%s\\n' "$(cat "$PW")" | chroot "$R" chpasswd; fi
# Into the host's root; the machine's mounts (and their references, e.g. /run/netns) leave this namespace.
cd "$R"
pivot_root . .
umount -l .
cd /
mount --make-rshared /
exec /usr/bin/perl ${LIB_DIR}/init
`;

/** Per-start mounts (sourced by the launcher with R set): sysfs, cgroups, real dirs, sysctl files. */
function mountsScript(h: HostLayout, layout: CgroupLayout): string {
  const lines = [`# sealant: ${h.hostname}'s mounts, written at every start and sourced by launch.sh`, `mount -t sysfs -o nosuid,nodev,noexec sysfs "$R/sys"`];
  const whole = layout.hierarchies.find((x) => x.mountPoint === CGROUP_FS);
  if (whole) lines.push(`mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R${CGROUP_FS}"`);
  else {
    lines.push(`mount -t tmpfs -o nosuid,nodev,noexec,mode=755 cgroup "$R${CGROUP_FS}"`);
    for (const x of layout.hierarchies) {
      const at = `"$R"${q(x.mountPoint)}`;
      lines.push(
        `mkdir -p ${at}`,
        x.fstype === "cgroup2"
          ? `mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 ${at}`
          : `mount -t cgroup -o nosuid,nodev,noexec,${x.mountOptions} cgroup ${at}`,
      );
    }
    for (const [name, target] of layout.links) lines.push(`ln -s ${q(target)} "$R"${q(join(CGROUP_FS, name))}`);
  }
  const p = hostPaths(h.dir);
  for (const inside of h.realDirs) lines.push(`mkdir -p "$R"${q(inside)}`, `mount --bind ${q(join(p.real, realDirName(inside)))} "$R"${q(inside)}`);
  const k = kubePaths(h.dir);
  for (const key of Object.keys(KUBE_SYSCTLS)) lines.push(`mount --bind ${q(join(k.sysctl, key.replace(/\//g, ".")))} "$R"${q(`/proc/sys/${key}`)}`);
  return `${lines.join("\n")}\n`;
}

const HOSTS_SEED = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

function mknodWhiteout(path: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile("mknod", [path, "c", "0", "0"], (err, _o, stderr) =>
      err ? reject(new Error(`mknod ${path}: ${stderr.toString().trim() || err.message}`)) : resolve(),
    ),
  );
}

const lexists = (p: string) =>
  lstat(p).then(
    () => true,
    () => false,
  );

/**
 * Writes what a Kubernetes-mode host needs into its disk before it starts: everything a loopback
 * host has (sshd on the node address, keys, hostname) plus a fresh /etc/hosts, /etc/resolv.conf
 * naming the hub (nothing answers there: no DNS leaves the sandbox), a machine-id, the
 * init-system stand-in, and — once, when the disk is new — overlay whiteouts over the machine's
 * `/etc/systemd/system/*.wants|*.requires`, so a host boots only the units enabled inside it.
 */
export async function prepareKubeHost(h: HostLayout, net: SandboxNet, authorizedKey: string, layout: CgroupLayout): Promise<HostFiles> {
  const fresh = !existsSync(hostPaths(h.dir).upper);
  const files = await prepareHost(h, authorizedKey, { hostsSeed: HOSTS_SEED });
  const p = hostPaths(h.dir);
  const etc = join(p.upper, "etc");
  if (!(await lexists(join(etc, "resolv.conf")))) {
    await writeFile(
      join(etc, "resolv.conf"),
      `# sealant sandbox host: nothing leaves the sandbox's network; no DNS server answers here\nnameserver ${net.hubIp}\n`,
      { mode: 0o644 },
    );
  }
  if (!(await lexists(join(etc, "machine-id")))) await writeFile(join(etc, "machine-id"), `${randomBytes(16).toString("hex")}\n`, { mode: 0o444 });
  if (fresh) {
    const units = await mkdirLike(p.upper, "etc/systemd/system");
    for (const e of await readdir("/etc/systemd/system").catch(() => [] as string[])) {
      if (!/\.(wants|requires)$/.test(e) || (await lexists(join(units, e)))) continue;
      await mknodWhiteout(join(units, e));
    }
  }
  const lib = await mkdirLike(p.upper, LIB_DIR);
  const standIn = standInSource();
  await writeFile(join(lib, "init"), INIT, { mode: 0o755 });
  await writeFile(join(lib, "boot"), BOOT, { mode: 0o755 });
  await writeFile(join(lib, "supervise"), supervise(process.execPath, standIn.name), { mode: 0o755 });
  await copyStandIn(lib);
  const bins = ["usr/bin", ...(lstatSync("/bin").isSymbolicLink() ? [] : ["bin"])];
  for (const b of bins) {
    const dir = await mkdirLike(p.upper, b);
    await writeFile(join(dir, "systemctl"), systemctlWrapper(process.execPath, standIn.name), { mode: 0o755 });
    await writeFile(join(dir, "journalctl"), JOURNALCTL, { mode: 0o755 });
  }
  const k = kubePaths(h.dir);
  await mkdir(k.sysctl, { recursive: true, mode: 0o755 });
  for (const [key, value] of Object.entries(KUBE_SYSCTLS)) await writeFile(join(k.sysctl, key.replace(/\//g, ".")), `${value}\n`, { mode: 0o644 });
  await writeFile(k.mounts, mountsScript(h, layout), { mode: 0o644 });
  await writeFile(p.launch, LAUNCH_SCRIPT, { mode: 0o755 });
  await readFile(p.launch); // fail here, not in the launcher, if the dir is unreadable
  return files;
}

/** A started Kubernetes-mode host: its launcher, the cgroups it was given, and warnings (e.g. no br_netfilter). */
export interface KubeLaunched {
  launched: Launched;
  cgroups: string[];
  warnings: string[];
}

/** Network namespace and cgroups first, then the launcher inside them. Undone on failure. */
export async function launchKubeHost(h: HostLayout, setup: KubeHostSetup, layout: CgroupLayout, passwordFile: string | undefined): Promise<KubeLaunched> {
  const warnings = await hostNetUp(setup.net, setup.netns, h.index);
  let cgroups: string[] = [];
  try {
    cgroups = await createHostCgroups(layout, setup.cgroupName);
    await writeFile(kubePaths(h.dir).cgroupProcs, cgroups.map((d) => `${join(d, "cgroup.procs")}\n`).join(""), { mode: 0o644 });
    const launched = await spawnLauncher(h, "nsenter", [
      `--net=/run/netns/${setup.netns}`,
      "--",
      "/bin/sh",
      hostPaths(h.dir).launch,
      "launch",
      h.dir,
      h.hostname,
      passwordFile ?? "-",
    ]);
    return { launched, cgroups, warnings };
  } catch (err) {
    await removeCgroups(cgroups).catch(() => undefined);
    await hostNetDown(setup.net, setup.netns, h.index).catch(() => undefined);
    throw err;
  }
}

/** After the host's processes are gone: its cgroups (kubepods and all) and its network namespace. */
export async function cleanKubeHost(setup: KubeHostSetup, index: number, cgroups: string[]): Promise<void> {
  await removeCgroups(cgroups);
  await hostNetDown(setup.net, setup.netns, index);
}
