import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, rmdir, statfs, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, resolve } from "node:path";
import { sealantHome } from "../image/store";
import { writeFileAtomic } from "../util/fs";
import { withLock } from "../util/lock";
import { cgroupLayout, type CgroupLayout } from "./cgroups";
import { DEFAULT_REAL_DIRS, IP_PREFIX, MAX_INDEX, hostPaths, launchHost, layoutFor, preflight, prepareHost, probeSsh, waitReady, type HostLayout, type Launched } from "./host";
import { generateEd25519 } from "./keys";
import { KUBE_REAL_DIRS, KUBE_TOOLS, cleanKubeHost, kubePreflightProblems, launchKubeHost, prepareKubeHost, type KubeHostSetup } from "./kube-host";
import { KUBE_MAX_INDEX, KUBE_NET_PREFIX, SubnetTakenError, checkSubnet, checkSubnetFree, chooseSubnet, hostNetns, hubDown, hubUp, netFor, netnsExists, nodeIp, type SandboxNet } from "./network";
import { firstChild, identify, isAlive, killExact, waitGone, type ProcessId } from "./process";

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
  user: "root";
  /** Private key file (ed25519, mode 0600) that every host's root accepts. */
  pk: string;
  /** root's password on every host. */
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
}

/** What sandbox.json holds: the sandbox plus process identities (pid + start time) used to kill only our own processes. */
interface HostRecord {
  index: number;
  realDirs: string[];
  pid1?: ProcessId;
  launcher?: ProcessId;
  /** Kubernetes mode: the host's namespace and cgroup names, and the cgroup dirs made for its current run. */
  kube?: { netns: string; cgroupName: string; cgroups?: string[] };
}

interface State {
  version: 1;
  name: string;
  ssh: Omit<SandboxSsh, "knownHosts"> & { knownHosts: string };
  hosts: HostRecord[];
  /** Kubernetes mode: the sandbox's network (recorded before any part of it exists). */
  kubernetes?: { net: SandboxNet; warnings?: string[] };
}

const STATE = "sandbox.json";
const OVERLAYFS_MAGIC = 0x794c7630;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** `$SEALANT_HOME/sandbox`: where sandboxes live by default and what `sandboxList` reads. */
export function sandboxRoot(env: NodeJS.ProcessEnv = process.env): string {
  return join(sealantHome(env), "sandbox");
}

export function sandboxDir(ref: SandboxRef, env: NodeJS.ProcessEnv = process.env): string {
  if (typeof ref !== "string") return resolve(ref.dir);
  if (ref.includes("/")) return resolve(ref);
  checkName(ref);
  return join(sandboxRoot(env), ref);
}

function checkName(name: string): void {
  if (!NAME_RE.test(name)) throw new Error(`sandbox name "${name}": use letters, digits, ".", "_" and "-" (up to 63, starting with a letter or digit)`);
}

function checkDir(dir: string): void {
  // The dir ends up in overlay mount options, where "," and ":" are separators.
  if (/[,:\s\\]/.test(dir)) throw new Error(`sandbox dir "${dir}": must not contain commas, colons, backslashes or whitespace (it goes into overlay mount options)`);
}

function checkRealDirs(dirs: string[]): string[] {
  return dirs.map((d) => {
    const n = normalize(d).replace(/\/+$/, "");
    if (!isAbsolute(d) || n === "" || n === "/" || d.split("/").includes("..") || ["/proc", "/sys", "/dev", "/run", "/tmp"].some((m) => n === m || n.startsWith(`${m}/`))) {
      throw new Error(`real dir "${d}": expected an absolute path inside the host other than /, /proc, /sys, /dev, /run and /tmp`);
    }
    return n;
  });
}

/** The overlay's upper dir must not itself be on an overlay (the kernel refuses it). */
async function checkFilesystem(dir: string): Promise<void> {
  let probe = dir;
  while (!existsSync(probe) && dirname(probe) !== probe) probe = dirname(probe);
  const st = await statfs(probe);
  if (st.type === OVERLAYFS_MAGIC) throw new Error(`sandbox dir ${dir} is on an overlay filesystem, which cannot hold an overlay's upper layer; choose a dir on a real filesystem (e.g. under /tmp or /var/tmp if those are not overlays)`);
}

async function readState(dir: string): Promise<State | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, STATE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as State;
  } catch (err) {
    throw new Error(`${join(dir, STATE)}: not valid JSON: ${(err as Error).message}`);
  }
}

const writeState = (dir: string, state: State) => writeFileAtomic(join(dir, STATE), `${JSON.stringify(state, null, 2)}\n`, 0o600);

function layoutOf(dir: string, state: State, r: Pick<HostRecord, "index" | "realDirs">): HostLayout {
  return layoutFor(dir, r.index, r.realDirs, state.kubernetes ? nodeIp(state.kubernetes.net, r.index) : undefined);
}

const ipOf = (state: State, index: number) => (state.kubernetes ? nodeIp(state.kubernetes.net, index) : `${IP_PREFIX}${index}`);

async function toSandbox(dir: string, state: State): Promise<Sandbox> {
  const hosts: SandboxHost[] = [];
  for (const r of state.hosts) {
    const l = layoutOf(dir, state, r);
    const running = await isAlive(r.pid1);
    const host: SandboxHost = { index: r.index, ip: l.ip, hostname: l.hostname, pid: running ? r.pid1!.pid : 0, running, dir: l.dir, upper: hostPaths(l.dir).upper, realDirs: r.realDirs };
    if (r.kube) {
      host.netns = r.kube.netns;
      if (running && r.kube.cgroups) host.cgroups = [...r.kube.cgroups];
    }
    hosts.push(host);
  }
  const sb: Sandbox = { name: state.name, dir, hosts, ssh: { ...state.ssh } };
  if (state.kubernetes) {
    const n = state.kubernetes.net;
    sb.kubernetes = { subnet: n.subnet, hubIp: n.hubIp, hubNetns: n.hubNetns, rootIp: n.rootIp, rootVeth: n.rootVeth, warnings: [...(state.kubernetes.warnings ?? [])] };
  }
  return sb;
}

function range(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

/** Host numbers recorded by other sandboxes next to this one and under the default root. */
async function indicesInUse(dir: string): Promise<Map<number, string>> {
  const used = new Map<number, string>();
  for (const root of new Set([dirname(dir), sandboxRoot()])) {
    for (const entry of await readdir(root).catch(() => [] as string[])) {
      const other = join(root, entry);
      if (other === dir) continue;
      const st = await readState(other).catch(() => undefined);
      if (st?.kubernetes) continue; // its hosts live on their own network, not on 127.0.10.N
      for (const h of st?.hosts ?? []) used.set(h.index, `sandbox "${st!.name}" (${other})`);
    }
  }
  return used;
}

async function chooseIndices(dir: string, count: number, first: number | undefined, taken: Set<number>): Promise<number[]> {
  const others = await indicesInUse(dir);
  const busy = (i: number) => others.has(i) || taken.has(i);
  if (first === undefined) {
    for (let f = 1; f + count - 1 <= MAX_INDEX; f++) if (!range(f, count).some(busy)) return range(f, count);
    throw new Error(`no ${count} consecutive free host numbers left in ${IP_PREFIX}1-${MAX_INDEX}`);
  }
  if (!Number.isInteger(first) || first < 1 || first + count - 1 > MAX_INDEX) throw new Error(`hosts ${IP_PREFIX}${first}..${first + count - 1}: host numbers must be within 1-${MAX_INDEX}`);
  const want = range(first, count);
  const clash = want.find(busy);
  if (clash !== undefined) throw new Error(`${IP_PREFIX}${clash} already belongs to ${others.get(clash) ?? "this sandbox"}; choose another first index`);
  return want;
}

/** Every address must be free: whatever answers there (a sandbox elsewhere, an sshd on 0.0.0.0) would take the host's connections. */
async function checkAddressesFree(indices: number[]): Promise<void> {
  const results = await Promise.all(indices.map(async (i) => [i, await probeSsh(`${IP_PREFIX}${i}`, 22, 300)] as const));
  const busy = results.filter(([, r]) => r !== "closed").map(([i]) => `${IP_PREFIX}${i}:22`);
  if (busy.length) throw new Error(`${busy.join(", ")} already in use by another process (another sandbox, or an sshd listening on 0.0.0.0:22?)`);
}

async function writeKnownHosts(state: State, keys: Map<number, string>): Promise<void> {
  const previous = existsSync(state.ssh.knownHosts) ? await readFile(state.ssh.knownHosts, "utf8") : "";
  const lines = new Map<string, string>();
  for (const line of previous.split("\n").filter(Boolean)) lines.set(line.split(" ")[0]!, line);
  for (const [index, key] of keys) lines.set(ipOf(state, index), `${ipOf(state, index)} ${key.split(" ").slice(0, 2).join(" ")} host${index}`);
  const known = new Set(state.hosts.map((h) => ipOf(state, h.index)));
  await writeFileAtomic(state.ssh.knownHosts, [...lines.entries()].filter(([ip]) => known.has(ip)).map(([, l]) => `${l}\n`).join(""), 0o644);
}

/**
 * Kills the hosts' process trees (SIGKILL to each PID 1, whose death kills everything in its PID
 * namespace, and to its launcher); then, in Kubernetes mode, removes their cgroups and network
 * namespaces (with their veths).
 */
async function killHosts(state: State, records: HostRecord[]): Promise<void> {
  // PID 1 first: its launcher (unshare) reaps it and exits by itself. Killing both at once would
  // orphan PID 1 to the machine's init, where it can linger as a zombie.
  const firsts: (ProcessId | undefined)[] = [];
  for (const r of records) {
    // A host killed before it answered has no recorded PID 1: its launcher's child is.
    const child = !r.pid1 && (await isAlive(r.launcher)) ? await firstChild(r.launcher!.pid) : undefined;
    const pid1 = r.pid1 ?? (child === undefined ? undefined : await identify(child));
    firsts.push(pid1);
    await killExact(pid1);
  }
  await waitGone(firsts, 10_000);
  await waitGone(
    records.map((r) => r.launcher),
    2_000,
  ).catch(() => undefined);
  for (const r of records) await killExact(r.launcher);
  await waitGone(records.map((r) => r.launcher), 10_000);
  const net = state.kubernetes?.net;
  if (!net) return;
  const problems: string[] = [];
  for (const r of records) {
    if (!r.kube) continue;
    try {
      await cleanKubeHost({ net, netns: r.kube.netns, cgroupName: r.kube.cgroupName }, r.index, r.kube.cgroups ?? []);
      delete r.kube.cgroups;
    } catch (err) {
      problems.push(`host${r.index}: ${(err as Error).message}`);
    }
  }
  if (problems.length) throw new Error(`cleaning up after stopped hosts: ${problems.join("; ")}`);
}

function kubeSetup(state: State, r: HostRecord): KubeHostSetup {
  r.kube ??= { netns: hostNetns(state.name, r.index), cgroupName: `sealant-${state.name}-host${r.index}` };
  return { net: state.kubernetes!.net, netns: r.kube.netns, cgroupName: r.kube.cgroupName };
}

/**
 * Starts hosts for `records` (in place: fills in their process identities), writing the state
 * once the launchers run (so a crash mid-start leaves nothing unrecorded) and again when all
 * answer. On any failure the hosts started here are killed and the error rethrown.
 */
async function startHosts(dir: string, state: State, records: HostRecord[], opts: SandboxCommonOptions): Promise<Map<number, string>> {
  const keys = new Map<number, string>();
  const passwdFile = join(dir, "passwd");
  try {
    const started: { layout: HostLayout; record: HostRecord; launched: Launched }[] = [];
    let cgroups: CgroupLayout | undefined;
    const warnings = new Set<string>();
    if (state.kubernetes) {
      cgroups = await cgroupLayout();
      await hubUp(state.kubernetes.net); // no-op when it exists; recreated after a machine restart
    }
    for (const record of records) {
      const layout = layoutOf(dir, state, record);
      const pub = await readFile(`${state.ssh.pk}.pub`, "utf8");
      let launched: Launched;
      if (state.kubernetes) {
        const setup = kubeSetup(state, record);
        const files = await prepareKubeHost(layout, setup.net, pub, cgroups!);
        keys.set(record.index, files.hostKey);
        const k = await launchKubeHost(layout, setup, cgroups!, files.needsPassword ? passwdFile : undefined);
        record.kube!.cgroups = k.cgroups;
        k.warnings.forEach((w) => warnings.add(w.replace(/^host\d+: /, "")));
        launched = k.launched;
      } else {
        const files = await prepareHost(layout, pub);
        keys.set(record.index, files.hostKey);
        launched = await launchHost(layout, files.needsPassword ? passwdFile : undefined);
      }
      record.launcher = launched.launcher;
      delete record.pid1;
      started.push({ layout, record, launched });
    }
    if (state.kubernetes) state.kubernetes.warnings = [...warnings];
    await writeState(dir, state);
    await Promise.all(
      started.map(async (s) => {
        s.record.pid1 = await waitReady(s.layout, s.launched, opts.timeoutMs ?? 15_000, opts.signal);
      }),
    );
    await writeState(dir, state);
    return keys;
  } catch (err) {
    await killHosts(state, records).catch(() => undefined);
    for (const r of records) delete r.pid1;
    await writeState(dir, state).catch(() => undefined);
    throw err;
  }
}

/**
 * Starts `count` hosts in a new sandbox and returns once every one answers SSH. The hosts
 * outlive the calling process; `sandboxDown` (from any process) stops them. Fails if a sandbox
 * with this name/dir is already up.
 */
export async function sandboxUp(count: number, opts: SandboxUpOptions = {}): Promise<Sandbox> {
  const kube = opts.kubernetes ? (opts.kubernetes === true ? {} : opts.kubernetes) : undefined;
  await (kube ? kubePreflight() : preflight());
  const max = kube ? KUBE_MAX_INDEX : MAX_INDEX;
  if (!Number.isInteger(count) || count < 1 || count > max) throw new Error(`host count ${count}: expected 1-${max}`);
  const name = opts.name ?? "default";
  checkName(name);
  const dir = opts.dir ? resolve(opts.dir) : sandboxDir(name);
  checkDir(dir);
  const realDirs = checkRealDirs(kube ? [...new Set([...KUBE_REAL_DIRS, ...(opts.realDirs ?? DEFAULT_REAL_DIRS)])] : (opts.realDirs ?? DEFAULT_REAL_DIRS));
  if (kube?.subnet !== undefined) checkSubnet(kube.subnet);
  await checkFilesystem(dir);
  await checkDirIsOurs(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let created = false;
  try {
    return await withLock(
      dir,
      async () => {
        const existing = await readState(dir);
        if (existing) {
          const sb = await toSandbox(dir, existing);
          const up = sb.hosts.filter((h) => h.running);
          if (up.length) {
            throw new Error(
              `sandbox "${existing.name}" is already up at ${dir} (${up.map((h) => `${h.hostname} ${h.ip}`).join(", ")}); bring it down first (sealant sandbox down --name ${existing.name})`,
            );
          }
          // Left over from a machine restart or a crash: nothing of it runs, start afresh.
          await killHosts(existing, existing.hosts);
          if (existing.kubernetes) await hubDown(existing.kubernetes.net);
          await clearDir(dir);
        }
        created = true;
        let indices: number[];
        if (kube) {
          indices = kubeIndices(count, opts.firstIndex, new Set());
          if (kube.subnet !== undefined) await checkSubnetFree(kube.subnet);
          const hub = netFor(name, kube.subnet ?? `${KUBE_NET_PREFIX}0.0/24`).hubNetns;
          if (await netnsExists(hub)) throw new Error(`network namespace ${hub} already exists: another Kubernetes sandbox named "${name}" is up elsewhere, or it is a leftover (ip netns del ${hub})`);
        } else {
          indices = await chooseIndices(dir, count, opts.firstIndex, new Set());
          await checkAddressesFree(indices);
        }
        const pair = generateEd25519(`sealant-sandbox-${name}`);
        const pk = join(dir, "id_ed25519");
        await writeFile(pk, pair.private, { mode: 0o600 });
        await writeFile(`${pk}.pub`, `${pair.public}\n`, { mode: 0o644 });
        const passwd = randomBytes(18).toString("base64url");
        await writeFile(join(dir, "passwd"), `${passwd}\n`, { mode: 0o600 });
        const state: State = { version: 1, name, ssh: { user: "root", pk, passwd, knownHosts: join(dir, "known_hosts") }, hosts: indices.map((index) => ({ index, realDirs })) };
        if (kube) await reserveNetwork(dir, state, kube.subnet);
        try {
          const keys = await startHosts(dir, state, state.hosts, opts);
          await writeKnownHosts(state, keys);
        } catch (err) {
          if (state.kubernetes) await hubDown(state.kubernetes.net).catch(() => undefined);
          throw err;
        }
        return toSandbox(dir, state);
      },
      { signal: opts.signal },
    );
  } catch (err) {
    if (created) await removeDir(dir).catch(() => undefined);
    throw err;
  }
}

/**
 * Records, then creates the sandbox's network: the first free 10.231.S.0/24 (or `subnet`). A
 * subnet is reserved by creating the machine's veth named after it, which the kernel refuses to
 * a second sandbox: so sandboxes started at the same moment (by any process) never share one.
 */
async function reserveNetwork(dir: string, state: State, subnet: string | undefined): Promise<void> {
  const tried = new Set(await subnetsInUse(dir));
  for (;;) {
    const net = netFor(state.name, subnet ?? (await chooseSubnet(tried)));
    state.kubernetes = { net };
    state.hosts.forEach((r) => kubeSetup(state, r));
    await writeState(dir, state); // recorded before any part exists: a crash leaves nothing unrecorded
    try {
      await hubUp(net);
      return;
    } catch (err) {
      if (!(err instanceof SubnetTakenError) || subnet !== undefined) throw err;
      tried.add(net.subnet);
    }
  }
}

function kubePreflight(): Promise<void> {
  return preflight(KUBE_TOOLS, () => kubePreflightProblems(cgroupLayout));
}

function kubeIndices(count: number, first: number | undefined, taken: Set<number>): number[] {
  let f = first ?? 1;
  if (first === undefined) while (taken.has(f)) f++;
  if (!Number.isInteger(f) || f < 1 || f + count - 1 > KUBE_MAX_INDEX) throw new Error(`hosts ${f}..${f + count - 1}: Kubernetes-mode host numbers must be within 1-${KUBE_MAX_INDEX} (node addresses .11-.253)`);
  const want = range(f, count);
  const clash = want.find((i) => taken.has(i));
  if (clash !== undefined) throw new Error(`host${clash} already exists in this sandbox`);
  return want;
}

/** Subnets recorded by other Kubernetes sandboxes next to this one and under the default root. */
async function subnetsInUse(dir: string): Promise<Set<string>> {
  const used = new Set<string>();
  for (const root of new Set([dirname(dir), sandboxRoot()])) {
    for (const entry of await readdir(root).catch(() => [] as string[])) {
      const other = join(root, entry);
      if (other === dir) continue;
      const st = await readState(other).catch(() => undefined);
      if (st?.kubernetes) used.add(st.kubernetes.net.subnet);
    }
  }
  return used;
}

/** Starts `count` more hosts in a running sandbox (numbered after its highest host). */
export async function sandboxAdd(ref: SandboxRef, count: number, opts: SandboxCommonOptions & { realDirs?: string[] } = {}): Promise<Sandbox> {
  if (!Number.isInteger(count) || count < 1) throw new Error(`host count ${count}: expected at least 1`);
  const dir = sandboxDir(ref);
  const peek = await readState(dir).catch(() => undefined);
  await (peek?.kubernetes ? kubePreflight() : preflight());
  return withLock(
    dir,
    async () => {
      const state = await mustReadState(dir, ref);
      const first = Math.max(...state.hosts.map((h) => h.index)) + 1;
      const taken = new Set(state.hosts.map((h) => h.index));
      let indices: number[];
      if (state.kubernetes) indices = kubeIndices(count, first, taken);
      else {
        indices = await chooseIndices(dir, count, first, taken);
        await checkAddressesFree(indices);
      }
      const requested = opts.realDirs && (state.kubernetes ? [...new Set([...KUBE_REAL_DIRS, ...opts.realDirs])] : opts.realDirs);
      const realDirs = requested ? checkRealDirs(requested) : (state.hosts[0]?.realDirs ?? DEFAULT_REAL_DIRS);
      const added: HostRecord[] = indices.map((index) => ({ index, realDirs }));
      state.hosts.push(...added);
      if (state.kubernetes) added.forEach((r) => kubeSetup(state, r));
      try {
        const keys = await startHosts(dir, state, added, opts);
        await writeKnownHosts(state, keys);
      } catch (err) {
        state.hosts = state.hosts.filter((h) => !added.includes(h));
        await writeState(dir, state);
        for (const h of added) await rm(layoutOf(dir, state, h).dir, { recursive: true, force: true });
        throw err;
      }
      return toSandbox(dir, state);
    },
    { signal: opts.signal },
  );
}

/** A sandbox dir is removed whole on failure and on `down`: never take over a directory holding anything else. */
async function checkDirIsOurs(dir: string): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  if (entries.length && !entries.includes(STATE) && entries.some((e) => e !== ".lock")) {
    throw new Error(`sandbox dir ${dir} exists and holds other files (no ${STATE}); choose a new or empty directory`);
  }
}

async function mustReadState(dir: string, ref: SandboxRef): Promise<State> {
  const state = await readState(dir);
  if (!state) throw new Error(`no sandbox ${typeof ref === "string" && !ref.includes("/") ? `named "${ref}"` : `at ${dir}`} (no ${STATE})`);
  return state;
}

function findHost(state: State, dir: string, host: string | number): HostRecord {
  const r = state.hosts.find((h) => h.index === host || ipOf(state, h.index) === host || `host${h.index}` === host || String(h.index) === host);
  if (!r) throw new Error(`sandbox "${state.name}" has no host "${host}" (hosts: ${state.hosts.map((h) => `host${h.index}`).join(", ")}; ${dir})`);
  return r;
}

/**
 * Powers a host off: kills its whole process tree (sshd and everything started on it); its disk
 * (the upper dir and real dirs) stays, so `startHost` brings it back with the same files and
 * host key. No-op if it is already stopped.
 */
export async function stopHost(ref: SandboxRef, host: string | number): Promise<SandboxHost> {
  const dir = sandboxDir(ref);
  return withLock(dir, async () => {
    const state = await mustReadState(dir, ref);
    const r = findHost(state, dir, host);
    await killHosts(state, [r]);
    delete r.pid1;
    delete r.launcher;
    await writeState(dir, state);
    return (await toSandbox(dir, state)).hosts.find((h) => h.index === r.index)!;
  });
}

/** Boots a stopped host again with its previous disk (same files, same host key). No-op if it runs. */
export async function startHost(ref: SandboxRef, host: string | number, opts: SandboxCommonOptions = {}): Promise<SandboxHost> {
  const dir = sandboxDir(ref);
  const peek = await readState(dir).catch(() => undefined);
  await (peek?.kubernetes ? kubePreflight() : preflight());
  return withLock(
    dir,
    async () => {
      const state = await mustReadState(dir, ref);
      const r = findHost(state, dir, host);
      if (!(await isAlive(r.pid1))) {
        await killHosts(state, [r]); // a half-dead tree (launcher without sshd) must not hold the address
        if (!state.kubernetes) await checkAddressesFree([r.index]);
        await startHosts(dir, state, [r], opts);
      }
      return (await toSandbox(dir, state)).hosts.find((h) => h.index === r.index)!;
    },
    { signal: opts.signal },
  );
}

/** Reads a sandbox (with each host's running state), or undefined if none is recorded there. */
export async function sandboxGet(ref: SandboxRef): Promise<Sandbox | undefined> {
  const dir = sandboxDir(ref);
  const state = await readState(dir);
  return state && toSandbox(dir, state);
}

/** Every sandbox under `root` (default `$SEALANT_HOME/sandbox`), running or not. */
export async function sandboxList(opts: { root?: string } = {}): Promise<Sandbox[]> {
  const root = opts.root ?? sandboxRoot();
  const out: Sandbox[] = [];
  for (const entry of (await readdir(root).catch(() => [] as string[])).sort()) {
    const dir = join(root, entry);
    const state = await readState(dir).catch(() => undefined);
    if (state) out.push(await toSandbox(dir, state));
  }
  return out;
}

/**
 * Stops every host of the sandbox (SIGKILL to each host's PID 1 and launcher; the hosts' mounts
 * live only in their namespaces and vanish with them; in Kubernetes mode their cgroups, network
 * namespaces and the hub with the machine's veth are removed too) and removes its directory.
 * Returns false if there was no sandbox there.
 */
export async function sandboxDown(ref: SandboxRef): Promise<boolean> {
  const dir = sandboxDir(ref);
  if (!existsSync(dir)) return false;
  const found = await withLock(dir, async () => {
    const state = await readState(dir);
    if (!state) return false;
    await killHosts(state, state.hosts);
    if (state.kubernetes) await hubDown(state.kubernetes.net);
    await clearDir(dir);
    return true;
  });
  if (found) await rmdir(dir).catch(() => undefined);
  return found;
}

/** Refuses to delete anything the machine still has mounted under `dir` (never follows a mount out). */
async function assertNothingMounted(dir: string): Promise<void> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  const mounted = info
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
  if (mounted.length) throw new Error(`not removing ${dir}: ${mounted.join(", ")} still mounted`);
}

/** Removes the sandbox's files except the lock held by the caller. */
async function clearDir(dir: string): Promise<void> {
  await assertNothingMounted(dir);
  for (const entry of await readdir(dir)) if (entry !== ".lock") await rm(join(dir, entry), { recursive: true, force: true });
}

async function removeDir(dir: string): Promise<void> {
  await assertNothingMounted(dir);
  await rm(dir, { recursive: true, force: true });
}
