import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../util/fs";
import { IP_PREFIX, hostPaths, layoutFor, type HostLayout } from "./host";
import type { KubeHostSetup } from "./kube-host";
import { hostNetns, nodeIp, type SandboxNet } from "./network";
import { isAlive, type ProcessId } from "./process";
import type { Sandbox, SandboxHost, SandboxRef, SandboxSsh } from "./types";

// sandbox.json: what a sandbox records, read back into the Sandbox callers see.

/** What sandbox.json holds: the sandbox plus process identities (pid + start time) used to kill only our own processes. */
export interface HostRecord {
  index: number;
  realDirs: string[];
  pid1?: ProcessId;
  launcher?: ProcessId;
  /** Kubernetes mode: the host's namespace and cgroup names, and the cgroup dirs made for its current run. */
  kube?: { netns: string; cgroupName: string; cgroups?: string[] };
}

export interface State {
  version: 1;
  name: string;
  ssh: Omit<SandboxSsh, "knownHosts"> & { knownHosts: string };
  hosts: HostRecord[];
  /** Kubernetes mode: the sandbox's network (recorded before any part of it exists). */
  kubernetes?: { net: SandboxNet; warnings?: string[] };
}

export const STATE = "sandbox.json";

export async function readState(dir: string): Promise<State | undefined> {
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

export const writeState = (dir: string, state: State) => writeFileAtomic(join(dir, STATE), `${JSON.stringify(state, null, 2)}\n`, 0o600);

export function layoutOf(dir: string, state: State, r: Pick<HostRecord, "index" | "realDirs">): HostLayout {
  return layoutFor(dir, r.index, r.realDirs, state.kubernetes ? nodeIp(state.kubernetes.net, r.index) : undefined);
}

export const ipOf = (state: State, index: number) => (state.kubernetes ? nodeIp(state.kubernetes.net, index) : `${IP_PREFIX}${index}`);

export async function toSandbox(dir: string, state: State): Promise<Sandbox> {
  const hosts: SandboxHost[] = [];
  for (const r of state.hosts) {
    const l = layoutOf(dir, state, r);
    const running = await isAlive(r.pid1);
    const host: SandboxHost = {
      index: r.index,
      ip: l.ip,
      hostname: l.hostname,
      pid: running ? r.pid1!.pid : 0,
      running,
      dir: l.dir,
      upper: hostPaths(l.dir).upper,
      realDirs: r.realDirs,
    };
    if (r.kube) {
      host.netns = r.kube.netns;
      if (running && r.kube.cgroups) host.cgroups = [...r.kube.cgroups];
    }
    hosts.push(host);
  }
  const sb: Sandbox = { name: state.name, dir, hosts, ssh: { ...state.ssh } };
  if (state.kubernetes) {
    const n = state.kubernetes.net;
    sb.kubernetes = {
      subnet: n.subnet,
      hubIp: n.hubIp,
      hubNetns: n.hubNetns,
      rootIp: n.rootIp,
      rootVeth: n.rootVeth,
      warnings: [...(state.kubernetes.warnings ?? [])],
    };
  }
  return sb;
}

export function kubeSetup(state: State, r: HostRecord): KubeHostSetup {
  r.kube ??= { netns: hostNetns(state.name, r.index), cgroupName: `sealant-${state.name}-host${r.index}` };
  return { net: state.kubernetes!.net, netns: r.kube.netns, cgroupName: r.kube.cgroupName };
}

export async function mustReadState(dir: string, ref: SandboxRef): Promise<State> {
  const state = await readState(dir);
  if (!state) throw new Error(`no sandbox ${typeof ref === "string" && !ref.includes("/") ? `named "${ref}"` : `at ${dir}`} (no ${STATE})`);
  return state;
}

export function findHost(state: State, dir: string, host: string | number): HostRecord {
  const r = state.hosts.find((h) => h.index === host || ipOf(state, h.index) === host || `host${h.index}` === host || String(h.index) === host);
  if (!r) throw new Error(`sandbox "${state.name}" has no host "${host}" (hosts: ${state.hosts.map((h) => `host${h.index}`).join(", ")}; ${dir})`);
  return r;
}
