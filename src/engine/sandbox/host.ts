import { spawn } from "node:child_process";
import { constants, existsSync } from "node:fs";
import { access, chown, lstat, mkdir, open, readFile, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { delimiter, join } from "node:path";
import { generateEd25519 } from "./keys";
import type { LoginUser } from "./types";
import { firstChild, identify, type ProcessId } from "./process";

/** sandbox hosts live on 127.0.10.N (every 127/8 address reaches the loopback interface). */
export const IP_PREFIX = "127.0.10.";
export const MAX_INDEX = 254;
/** Paths inside every host bound to real per-host directories by default (an overlay cannot be an overlay's upper layer). */
export const DEFAULT_REAL_DIRS = ["/var/lib/containerd", "/var/lib/sealant-real"];

/** PATH for the launcher and what it runs: the host's own tools, never the caller's environment. */
const HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** What identifies one host and where its files are on the machine. */
export interface HostLayout {
  index: number;
  ip: string;
  hostname: string;
  /** `<sandbox dir>/<hostname>`. */
  dir: string;
  /** Paths inside the host that are bind mounts of real directories under `<dir>/real/`. */
  realDirs: string[];
}

export const hostPaths = (dir: string) => ({
  upper: join(dir, "upper"),
  work: join(dir, "work"),
  root: join(dir, "root"),
  real: join(dir, "real"),
  log: join(dir, "host.log"),
  launch: join(dir, "launch.sh"),
});

/** `ip`: the host's address when it is not `127.0.10.N` (a Kubernetes-mode host's node address). */
export function layoutFor(sandboxDir: string, index: number, realDirs: string[], ip = `${IP_PREFIX}${index}`): HostLayout {
  const hostname = `host${index}`;
  return { index, ip, hostname, dir: join(sandboxDir, hostname), realDirs };
}

/** `/var/lib/containerd` -> `var-lib-containerd` (the real directory's name under `<host dir>/real`). */
export const realDirName = (inside: string) => inside.replace(/^\/+/, "").replace(/\//g, "-");

export interface Tool {
  name: string;
  pkg: string;
}

const TOOLS: Tool[] = [
  { name: "unshare", pkg: "util-linux" },
  { name: "mount", pkg: "mount" },
  { name: "chroot", pkg: "coreutils" },
  { name: "hostname", pkg: "hostname" },
  { name: "chpasswd", pkg: "passwd" },
  { name: "sshd", pkg: "openssh-server" },
];

async function findTool(name: string): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), ...HOST_PATH.split(":")].filter(Boolean);
  for (const d of dirs) {
    const p = join(d, name);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

/**
 * Fails with one message naming everything missing: root, and the programs a host needs (`extra`:
 * a mode's own, with `more` problems it found itself).
 */
export async function preflight(extra: Tool[] = [], more: () => Promise<string[]> = async () => []): Promise<void> {
  const problems: string[] = [];
  if (process.getuid?.() !== 0)
    problems.push(`root (running as uid ${process.getuid?.() ?? "unknown"}; hosts need mount, PID and UTS namespaces and overlay mounts)`);
  const missing = [];
  for (const t of [...TOOLS, ...extra]) if (!(await findTool(t.name))) missing.push(t);
  if (missing.length) problems.push(`${missing.map((t) => t.name).join(", ")} (apt-get install ${[...new Set(missing.map((t) => t.pkg))].join(" ")})`);
  if (!problems.length) problems.push(...(await more()));
  if (problems.length) throw new Error(`sandbox hosts need ${problems.join(" and ")}`);
}

/**
 * Runs as PID 1 of the host's new mount/UTS/PID namespaces (written to `<host dir>/launch.sh`).
 * Arguments: host dir, hostname, password file ("-" once the host has its own /etc/shadow),
 * login user (root, or a user made here on first boot with the sandbox's key), then pairs
 * REAL_DIR PATH_INSIDE.
 */
const LAUNCH_SCRIPT = `#!/bin/sh
# sealant sandbox host launcher (run by unshare as the host's PID 1; ends as sshd)
set -eu
D=$1; H=$2; PW=$3; U=$4; shift 4
R=$D/root
mount -t overlay overlay -o "lowerdir=/,upperdir=$D/upper,workdir=$D/work" "$R"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount --rbind /sys "$R/sys"
mount -t tmpfs -o mode=755 tmpfs "$R/run"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mkdir -m 755 "$R/run/sshd"
while [ $# -ge 2 ]; do mkdir -p "$R$2"; mount --bind "$1" "$R$2"; shift 2; done
hostname "$H"
if [ "$U" != root ] && ! chroot "$R" id -u "$U" > /dev/null 2>&1; then
  chroot "$R" useradd -m -s /bin/sh -U "$U"
  chroot "$R" install -d -m 700 -o "$U" -g "$U" "/home/$U/.ssh"
  chroot "$R" install -m 600 -o "$U" -g "$U" /root/.ssh/authorized_keys "/home/$U/.ssh/authorized_keys"
fi
if [ "$PW" != - ]; then printf '%s:%s\\n' "$U" "$(cat "$PW")" | chroot "$R" chpasswd; fi
exec chroot "$R" /usr/sbin/sshd -D -e
`;

function sshdConfig(ip: string, permitRoot: boolean): string {
  return `# sealant sandbox host ${ip}: written by sealant, replaced at every start
ListenAddress ${ip}:22
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin ${permitRoot ? "yes" : "no"}
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
UseDNS no
MaxStartups 200:30:400
MaxSessions 100
PrintMotd no
PrintLastLog no
PidFile none
X11Forwarding no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
`;
}

const BASHRC = "# sealant sandbox host: deliberately minimal (the machine's .bashrc costs ~45 ms per command)\n";

/** Creates `rel` (and its parents) under `base` with the mode and owner of the machine's same directory. */
export async function mkdirLike(base: string, rel: string): Promise<string> {
  let cur = base;
  let machine = "";
  for (const part of rel.split("/").filter(Boolean)) {
    cur = join(cur, part);
    machine = `${machine}/${part}`;
    if (existsSync(cur)) continue;
    const st = await lstat(machine).catch(() => undefined);
    const mode = st?.isDirectory() ? st.mode & 0o7777 : 0o755;
    await mkdir(cur, { mode });
    if (st?.isDirectory()) await chown(cur, st.uid, st.gid);
  }
  return cur;
}

export interface HostFiles {
  /** The host's public host key line (`ssh-ed25519 AAAA...`). */
  hostKey: string;
  /** True when the host has no /etc/shadow of its own yet (the launcher must set root's password). */
  needsPassword: boolean;
}

/**
 * Writes what the host needs into its upper layer before it starts (files written there appear
 * in the host's /): sshd config, host key (kept across restarts), root's authorized key and
 * minimal .bashrc, hostname and hosts entries; and the real directories.
 */
export async function prepareHost(h: HostLayout, authorizedKey: string, opts: { hostsSeed?: string; user?: LoginUser } = {}): Promise<HostFiles> {
  const p = hostPaths(h.dir);
  await mkdir(h.dir, { recursive: true, mode: 0o700 });
  for (const d of [p.upper, p.work, p.root, p.real]) await mkdir(d, { recursive: true, mode: 0o755 });
  for (const inside of h.realDirs) await mkdir(join(p.real, realDirName(inside)), { recursive: true, mode: 0o755 });

  const etc = await mkdirLike(p.upper, "etc");
  const ssh = await mkdirLike(p.upper, "etc/ssh");
  const keyFile = join(ssh, "ssh_host_ed25519_key");
  let hostKey: string;
  if (existsSync(keyFile) && existsSync(`${keyFile}.pub`)) {
    hostKey = (await readFile(`${keyFile}.pub`, "utf8")).trim();
  } else {
    const pair = generateEd25519(`root@${h.hostname}`);
    await writeFile(keyFile, pair.private, { mode: 0o600 });
    await writeFile(`${keyFile}.pub`, `${pair.public}\n`, { mode: 0o644 });
    hostKey = pair.public.trim();
  }
  await writeFile(p.launch, LAUNCH_SCRIPT, { mode: 0o755 });
  await writeFile(join(ssh, "sshd_config"), sshdConfig(h.ip, (opts.user?.name ?? "root") === "root"), { mode: 0o644 });
  await writeFile(join(etc, "hostname"), `${h.hostname}\n`, { mode: 0o644 });
  const machineHosts = opts.hostsSeed ?? (await readFile("/etc/hosts", "utf8").catch(() => "127.0.0.1\tlocalhost\n"));
  const ownLine = `${h.ip}\t${h.hostname}`;
  const hostsFile = join(etc, "hosts");
  const current = existsSync(hostsFile) ? await readFile(hostsFile, "utf8") : machineHosts;
  if (!current.split("\n").includes(ownLine)) await writeFile(hostsFile, `${current.replace(/\n?$/, "\n")}${ownLine}\n`, { mode: 0o644 });

  const rootHome = await mkdirLike(p.upper, "root");
  const dotSsh = join(rootHome, ".ssh");
  await mkdir(dotSsh, { recursive: true, mode: 0o700 });
  await writeFile(join(dotSsh, "authorized_keys"), `${authorizedKey.trim()}\n`, { mode: 0o600 });
  if (!existsSync(join(rootHome, ".bashrc"))) await writeFile(join(rootHome, ".bashrc"), BASHRC, { mode: 0o644 });

  return { hostKey, needsPassword: !existsSync(join(etc, "shadow")) };
}

/** A started launcher: the host's `unshare` process, and how to learn that it exited early. */
export interface Launched {
  launcher: ProcessId;
  exited: () => string | undefined;
}

/**
 * Starts the host's process tree, detached (own session, output to its log file) so it outlives
 * the calling process: `unshare ... sh launch.sh`, which becomes `sshd -D` in the host.
 */
export async function launchHost(h: HostLayout, passwordFile: string | undefined, user = "root"): Promise<Launched> {
  const p = hostPaths(h.dir);
  const binds = h.realDirs.flatMap((inside) => [join(p.real, realDirName(inside)), inside]);
  return spawnLauncher(h, "unshare", [
    "--mount",
    "--uts",
    "--pid",
    "--fork",
    "--kill-child",
    "--propagation",
    "private",
    "/bin/sh",
    p.launch,
    h.dir,
    h.hostname,
    passwordFile ?? "-",
    user,
    ...binds,
  ]);
}

/**
 * Spawns a host's launcher detached (own session, output appended to the host's log) and unref'd:
 * it outlives the calling process, which still reaps it if it exits first.
 */
export async function spawnLauncher(h: HostLayout, command: string, args: string[]): Promise<Launched> {
  const p = hostPaths(h.dir);
  const log = await open(p.log, "a", 0o600);
  try {
    await log.write(`--- ${new Date().toISOString()} starting ${h.hostname} (${h.ip})\n`);
    const child = spawn(command, args, { detached: true, stdio: ["ignore", log.fd, log.fd], env: { PATH: HOST_PATH, LANG: "C.UTF-8" } });
    let exit: string | undefined;
    child.on("exit", (code, sig) => (exit = sig ? `killed by ${sig}` : `exited ${code}`));
    const spawned = await new Promise<number>((resolve, reject) => {
      child.once("spawn", () => resolve(child.pid!));
      child.once("error", (err) => reject(new Error(`${h.hostname}: starting ${command}: ${err.message}`)));
    });
    child.unref();
    const launcher = await identify(spawned);
    if (!launcher) throw new Error(`${h.hostname}: ${command} exited at once (see ${p.log})`);
    return { launcher, exited: () => exit };
  } finally {
    await log.close();
  }
}

/** "ssh" when `ip:port` answers with an SSH banner, "closed" when nothing listens, "other" for anything else. */
export function probeSsh(ip: string, port = 22, timeoutMs = 1000): Promise<"ssh" | "closed" | "other"> {
  return new Promise((resolve) => {
    const sock = connect({ host: ip, port });
    let buf = "";
    let connected = false;
    const done = (r: "ssh" | "closed" | "other") => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    // Connected but silent: something listens there that is not (yet) an SSH server.
    const timer = setTimeout(() => done(connected ? "other" : "closed"), timeoutMs);
    sock.on("connect", () => (connected = true));
    sock.setEncoding("latin1");
    sock.on("data", (d: string) => {
      buf += d;
      if (buf.startsWith("SSH-")) done("ssh");
      else if (buf.length >= 4) done("other");
    });
    sock.on("error", () => done("closed"));
    sock.on("end", () => done(buf.startsWith("SSH-") ? "ssh" : "other"));
  });
}

async function logTail(file: string, lines = 8): Promise<string> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.trim().split("\n").slice(-lines).join("\n");
}

/**
 * Waits until the host answers on port 22 with an SSH banner; returns the identity of the host's
 * PID 1 (sshd, as the machine sees it). Fails early with the host log's tail if the launcher exits.
 */
export async function waitReady(h: HostLayout, l: Launched, timeoutMs: number, signal?: AbortSignal): Promise<ProcessId> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    const exit = l.exited();
    if (exit) throw new Error(`${h.hostname} (${h.ip}) failed to start: launcher ${exit}:\n${await logTail(hostPaths(h.dir).log)}`);
    if ((await probeSsh(h.ip, 22, 500)) === "ssh") {
      const pid1 = await firstChild(l.launcher.pid);
      const id = pid1 === undefined ? undefined : await identify(pid1);
      if (id) return id;
    }
    if (Date.now() > deadline) throw new Error(`${h.hostname} (${h.ip}) did not answer ssh within ${timeoutMs} ms:\n${await logTail(hostPaths(h.dir).log)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
