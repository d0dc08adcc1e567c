import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../util/fs";
import { cgroupLayout, type CgroupLayout } from "./cgroups";
import { hostPaths, launchHost, preflight, prepareHost, waitReady, type HostLayout, type Launched } from "./host";
import { KUBE_TOOLS, cleanKubeHost, kubePreflightProblems, launchKubeHost, prepareKubeHost } from "./kube-host";
import { prepareLoginUser } from "./login-user";
import { hubUp } from "./network";
import { firstChild, identify, isAlive, killExact, waitGone, type ProcessId } from "./process";
import { ipOf, kubeSetup, layoutOf, writeState, type HostRecord, type State } from "./state";
import type { SandboxCommonOptions } from "./types";

// Starting and killing hosts' process trees (both modes), recording their identities as they go.

export async function writeKnownHosts(state: State, keys: Map<number, string>): Promise<void> {
  const previous = existsSync(state.ssh.knownHosts) ? await readFile(state.ssh.knownHosts, "utf8") : "";
  const lines = new Map<string, string>();
  for (const line of previous.split("\n").filter(Boolean)) lines.set(line.split(" ")[0]!, line);
  for (const [index, key] of keys) lines.set(ipOf(state, index), `${ipOf(state, index)} ${key.split(" ").slice(0, 2).join(" ")} host${index}`);
  const known = new Set(state.hosts.map((h) => ipOf(state, h.index)));
  await writeFileAtomic(
    state.ssh.knownHosts,
    [...lines.entries()]
      .filter(([ip]) => known.has(ip))
      .map(([, l]) => `${l}\n`)
      .join(""),
    0o644,
  );
}

/**
 * Kills the hosts' process trees (SIGKILL to each PID 1, whose death kills everything in its PID
 * namespace, and to its launcher); then, in Kubernetes mode, removes their cgroups and network
 * namespaces (with their veths).
 */
export async function killHosts(state: State, records: HostRecord[]): Promise<void> {
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
  await waitGone(
    records.map((r) => r.launcher),
    10_000,
  );
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

/**
 * Starts hosts for `records` (in place: fills in their process identities), writing the state
 * once the launchers run (so a crash mid-start leaves nothing unrecorded) and again when all
 * answer. On any failure the hosts started here are killed and the error rethrown.
 */
export async function startHosts(dir: string, state: State, records: HostRecord[], opts: SandboxCommonOptions): Promise<Map<number, string>> {
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
        const user = { name: state.ssh.user, ...(state.ssh.sudo ? { sudo: state.ssh.sudo } : {}) };
        const files = await prepareHost(layout, pub, { user });
        await prepareLoginUser(hostPaths(layout.dir).upper, user);
        keys.set(record.index, files.hostKey);
        launched = await launchHost(layout, files.needsPassword ? passwdFile : undefined, user.name);
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

export function kubePreflight(): Promise<void> {
  return preflight(KUBE_TOOLS, () => kubePreflightProblems(cgroupLayout));
}
