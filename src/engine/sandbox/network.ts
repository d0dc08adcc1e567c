import { execFile } from "node:child_process";
import { existsSync, statfsSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";

/**
 * The private network of a Kubernetes-mode sandbox: one /24 on a bridge in a hub network namespace
 * that is a dead end (ip_forward=0, no default route), a network namespace per host with `eth0` on
 * that bridge, and one veth from the machine's own namespace into the hub with an address in the
 * /24, so this machine reaches the hosts by a connected route only (no NAT, no default route
 * change, no forwarding). Node, pod and service addresses exist only inside these namespaces.
 */
export interface SandboxNet {
  /** `10.231.S.0/24`. */
  subnet: string;
  /** The hub's network namespace (`ip netns` name). */
  hubNetns: string;
  /** The hub bridge's address (`.1`): every host's default gateway, where packets for anywhere else die. */
  hubIp: string;
  /**
   * The machine's veth into the hub (in the machine's own namespace), named after the subnet
   * (`sealant-0ae707` for 10.231.7.0/24): creating it is what reserves the subnet, atomically,
   * against every other sandbox on the machine.
   */
  rootVeth: string;
  /** Its address (`.254`): where hosts see this machine. */
  rootIp: string;
}

/** The default range: sandboxes take 10.231.0.0/24, 10.231.1.0/24, ... */
export const KUBE_NET_PREFIX = "10.231.";
/** Hosts are `.(10+N)`: host numbers 1..243 (.254 is the machine, .1 the hub). */
export const KUBE_MAX_INDEX = 243;
const BRIDGE = "br0";
const UPLINK = "uplink";

export const netPrefix = (net: Pick<SandboxNet, "subnet">) => net.subnet.replace(/\.0\/24$/, ".");
export const nodeIp = (net: Pick<SandboxNet, "subnet">, index: number) => `${netPrefix(net)}${10 + index}`;
export const hostNetns = (sandboxName: string, index: number) => `sealant-${sandboxName}-host${index}`;

/**
 * A fixed, locally administered MAC for an address on the bridge (02:53 + the four address bytes):
 * a restarted host keeps its MAC, so neighbour entries cached for it (this machine's, other
 * hosts') stay right instead of failing until they expire.
 */
export const macFor = (ip: string) =>
  `02:53:${ip
    .split(".")
    .map((o) => Number(o).toString(16).padStart(2, "0"))
    .join(":")}`;

export function netFor(sandboxName: string, subnet: string): SandboxNet {
  const prefix = subnet.replace(/\.0\/24$/, ".");
  const hex = prefix
    .split(".")
    .filter(Boolean)
    .map((o) => Number(o).toString(16).padStart(2, "0"))
    .join("");
  return { subnet, hubNetns: `sealant-${sandboxName}-hub`, hubIp: `${prefix}1`, rootVeth: `sealant-${hex}`, rootIp: `${prefix}254` };
}

/** Thrown by hubUp when another sandbox holds the subnet (its veth exists). */
export class SubnetTakenError extends Error {}

export function checkSubnet(subnet: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(subnet);
  const ok = m && m.slice(1).every((o) => Number(o) <= 255);
  const [a, b] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  const privateRange = a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
  if (!ok || !privateRange)
    throw new Error(`subnet "${subnet}": expected a private /24 such as 10.231.7.0/24 (10/8, 172.16/12 or 192.168/16, ending in .0/24)`);
  return subnet;
}

export async function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")}: ${stderr.toString().trim() || err.message}`));
      else resolve(stdout.toString());
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

const ip = (...args: string[]) => run("ip", args);

const NSFS_MAGIC = 0x6e736673;

/**
 * Whether `ip netns` has this name: its file under /run/netns with a namespace mounted on it.
 * A file without (left by a machine restart when /run is not a tmpfs) is removed.
 */
export async function netnsExists(name: string): Promise<boolean> {
  const p = `/run/netns/${name}`;
  if (!existsSync(p)) return false;
  if (statfsSync(p).type === NSFS_MAGIC) return true;
  await rm(p, { force: true });
  return false;
}

function toRange(cidr: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)(?:\/(\d+))?$/.exec(cidr);
  if (!m) return undefined;
  const addr = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
  const bits = m[5] === undefined ? 32 : Number(m[5]);
  const size = 2 ** (32 - bits);
  const start = Math.floor(addr / size) * size;
  return [start, start + size - 1];
}

/** Every IPv4 prefix this machine's namespace already uses (addresses and routes, except the default route). */
async function usedRanges(): Promise<[number, number][]> {
  const out: [number, number][] = [];
  for (const line of (await ip("-4", "-o", "addr", "show")).split("\n")) {
    const m = /\binet (\S+)/.exec(line);
    const r = m && toRange(m[1]!);
    if (r) out.push(r);
  }
  for (const line of (await ip("-4", "route", "show", "table", "all")).split("\n")) {
    const words = line.trim().split(/\s+/);
    const dst = ["local", "broadcast", "unicast", "unreachable", "blackhole", "prohibit", "throw"].includes(words[0] ?? "") ? words[1] : words[0];
    if (!dst || dst === "default") continue;
    const r = toRange(dst);
    if (r) out.push(r);
  }
  return out;
}

/** The first 10.231.S.0/24 that no other sandbox recorded and that this machine's namespace does not use. */
export async function chooseSubnet(recorded: Set<string>): Promise<string> {
  const used = await usedRanges();
  for (let s = 0; s <= 255; s++) {
    const subnet = `${KUBE_NET_PREFIX}${s}.0/24`;
    if (recorded.has(subnet)) continue;
    const [a, b] = toRange(subnet)!;
    if (!used.some(([c, d]) => a <= d && c <= b)) return subnet;
  }
  throw new Error(`no free /24 left in ${KUBE_NET_PREFIX}0.0/16 for a Kubernetes sandbox; pass a subnet`);
}

/** Fails when the machine's namespace already uses an address or route overlapping `subnet`. */
export async function checkSubnetFree(subnet: string): Promise<void> {
  const [a, b] = toRange(subnet)!;
  if ((await usedRanges()).some(([c, d]) => a <= d && c <= b))
    throw new Error(`subnet ${subnet} overlaps an address or route this machine already has (ip -4 addr; ip -4 route); choose another`);
}

/**
 * Creates the hub and the machine's veth into it (each part only if missing: a sandbox whose hub
 * went with a machine restart gets it back). Fails with SubnetTakenError when another sandbox's
 * veth holds the subnet; on any failure what was created here is removed again.
 */
export async function hubUp(net: SandboxNet): Promise<void> {
  const n = net.hubNetns;
  const created = !(await netnsExists(n));
  if (created) await ip("netns", "add", n);
  try {
    const inHub = (...args: string[]) => ip("-n", n, ...args);
    await writeSysctls(n, { "net/ipv4/ip_forward": "0", "net/ipv6/conf/all/disable_ipv6": "1", "net/ipv6/conf/default/disable_ipv6": "1" });
    await inHub("link", "set", "lo", "up");
    const links = await inHub("-o", "link", "show");
    if (!new RegExp(`^\\d+: ${BRIDGE}[:@]`, "m").test(links)) {
      await inHub("link", "add", BRIDGE, "address", macFor(net.hubIp), "type", "bridge");
      await inHub("addr", "add", `${net.hubIp}/24`, "dev", BRIDGE);
    }
    await inHub("link", "set", BRIDGE, "up");
    if (!new RegExp(`^\\d+: ${UPLINK}[:@]`, "m").test(links)) {
      // Created here with its peer placed straight into the hub: no transient device in either
      // namespace. The kernel refuses a second device of that name: the subnet's reservation.
      await ip("link", "add", net.rootVeth, "type", "veth", "peer", "name", UPLINK, "netns", n).catch((err: Error) => {
        throw /File exists/.test(err.message)
          ? new SubnetTakenError(`subnet ${net.subnet} is taken: ${net.rootVeth} exists (another Kubernetes sandbox uses it)`)
          : err;
      });
      await writeRootSysctl(`net/ipv6/conf/${net.rootVeth}/disable_ipv6`, "1");
      await ip("addr", "add", `${net.rootIp}/24`, "dev", net.rootVeth);
    }
    await inHub("link", "set", UPLINK, "master", BRIDGE, "up");
    await ip("link", "set", net.rootVeth, "up");
  } catch (err) {
    // Deleting the hub takes a veth made here with it (a pair dies together), never another's.
    if (created) await ip("netns", "del", n).catch(() => undefined);
    throw err;
  }
}

/** Removes the machine's veth (its peer goes with it) and the hub namespace. */
export async function hubDown(net: SandboxNet): Promise<void> {
  // Ours only if its peer is in our hub (the name alone could be another sandbox's after a failed up).
  const ours = (await netnsExists(net.hubNetns)) && new RegExp(`^\\d+: ${UPLINK}[:@]`, "m").test(await ip("-n", net.hubNetns, "-o", "link", "show"));
  if (ours) await ip("link", "del", net.rootVeth);
  if (await netnsExists(net.hubNetns)) await ip("netns", "del", net.hubNetns);
}

/**
 * The host's network namespace: `eth0` (a veth whose peer `host<N>` is a port of the hub's bridge)
 * with the node address, `lo`, `default via` the hub; ip_forward=1 and bridge-nf-call-iptables=1
 * (kubeadm's preflight wants them; both are per namespace). Returns warnings (a missing br_netfilter).
 */
export async function hostNetUp(net: SandboxNet, netns: string, index: number): Promise<string[]> {
  if (await netnsExists(netns)) await hostNetDown(net, netns, index);
  await ip("netns", "add", netns);
  try {
    const port = `host${index}`;
    await ip("-n", net.hubNetns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "address", macFor(nodeIp(net, index)), "netns", netns);
    await ip("-n", net.hubNetns, "link", "set", port, "master", BRIDGE, "up");
    const inHost = (...args: string[]) => ip("-n", netns, ...args);
    await inHost("link", "set", "lo", "up");
    await inHost("addr", "add", `${nodeIp(net, index)}/24`, "dev", "eth0");
    await inHost("link", "set", "eth0", "up");
    await inHost("route", "add", "default", "via", net.hubIp);
    await writeSysctls(netns, { "net/ipv4/ip_forward": "1", "net/ipv6/conf/all/disable_ipv6": "1", "net/ipv6/conf/default/disable_ipv6": "1" });
    const bridged = await writeSysctls(netns, { "net/bridge/bridge-nf-call-iptables": "1", "net/bridge/bridge-nf-call-ip6tables": "1" }).then(
      () => true,
      () => false,
    );
    return bridged
      ? []
      : [
          `host${index}: net.bridge.bridge-nf-call-iptables is not available (the br_netfilter module is not loaded: modprobe br_netfilter); kubeadm's preflight will complain`,
        ];
  } catch (err) {
    await hostNetDown(net, netns, index).catch(() => undefined);
    throw err;
  }
}

/** Deletes the host's namespace (its veth pair goes with it) and a leftover hub port. */
export async function hostNetDown(net: SandboxNet, netns: string, index: number): Promise<void> {
  if (await netnsExists(netns)) await ip("netns", "del", netns);
  if (await netnsExists(net.hubNetns)) await ip("-n", net.hubNetns, "link", "del", `host${index}`).catch(() => undefined);
}

/** Writes /proc/sys entries as seen from inside `netns` (net.* sysctls are per network namespace). */
async function writeSysctls(netns: string, values: Record<string, string>): Promise<void> {
  const script = Object.entries(values)
    .map(([k, v]) => `echo ${v} > /proc/sys/${k}`)
    .join(" && ");
  await run("nsenter", [`--net=/run/netns/${netns}`, "/bin/sh", "-c", script]);
}

/** Only for the machine's end of our own veth (it goes with the device). */
async function writeRootSysctl(key: string, value: string): Promise<void> {
  await writeFile(`/proc/sys/${key}`, value).catch(() => undefined);
}
