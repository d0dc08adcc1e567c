import { readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { sandboxRoot } from "./dirs";
import { IP_PREFIX, MAX_INDEX, probeSsh } from "./host";
import { KUBE_MAX_INDEX, SubnetTakenError, chooseSubnet, hubUp, netFor } from "./network";
import { kubeSetup, readState, writeState, type State } from "./state";

// Host numbers (hostN, 127.0.10.N or the node address) and Kubernetes sandboxes' subnets: free
// ones chosen, clashes with other sandboxes and with whatever else listens refused.

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

export async function chooseIndices(dir: string, count: number, first: number | undefined, taken: Set<number>): Promise<number[]> {
  const others = await indicesInUse(dir);
  const busy = (i: number) => others.has(i) || taken.has(i);
  if (first === undefined) {
    for (let f = 1; f + count - 1 <= MAX_INDEX; f++) if (!range(f, count).some(busy)) return range(f, count);
    throw new Error(`no ${count} consecutive free host numbers left in ${IP_PREFIX}1-${MAX_INDEX}`);
  }
  if (!Number.isInteger(first) || first < 1 || first + count - 1 > MAX_INDEX)
    throw new Error(`hosts ${IP_PREFIX}${first}..${first + count - 1}: host numbers must be within 1-${MAX_INDEX}`);
  const want = range(first, count);
  const clash = want.find(busy);
  if (clash !== undefined) throw new Error(`${IP_PREFIX}${clash} already belongs to ${others.get(clash) ?? "this sandbox"}; choose another first index`);
  return want;
}

/** Every address must be free: whatever answers there (a sandbox elsewhere, an sshd on 0.0.0.0) would take the host's connections. */
export async function checkAddressesFree(indices: number[]): Promise<void> {
  const results = await Promise.all(indices.map(async (i) => [i, await probeSsh(`${IP_PREFIX}${i}`, 22, 300)] as const));
  const busy = results.filter(([, r]) => r !== "closed").map(([i]) => `${IP_PREFIX}${i}:22`);
  if (busy.length) throw new Error(`${busy.join(", ")} already in use by another process (another sandbox, or an sshd listening on 0.0.0.0:22?)`);
}

/**
 * Records, then creates the sandbox's network: the first free 10.231.S.0/24 (or `subnet`). A
 * subnet is reserved by creating the machine's veth named after it, which the kernel refuses to
 * a second sandbox: so sandboxes started at the same moment (by any process) never share one.
 */
export async function reserveNetwork(dir: string, state: State, subnet: string | undefined): Promise<void> {
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

export function kubeIndices(count: number, first: number | undefined, taken: Set<number>): number[] {
  let f = first ?? 1;
  if (first === undefined) while (taken.has(f)) f++;
  if (!Number.isInteger(f) || f < 1 || f + count - 1 > KUBE_MAX_INDEX)
    throw new Error(`hosts ${f}..${f + count - 1}: Kubernetes-mode host numbers must be within 1-${KUBE_MAX_INDEX} (node addresses .11-.253)`);
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
