import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, rm, rmdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { withLock } from "../util/lock";
import { checkDir, checkDirIsOurs, checkFilesystem, checkName, checkRealDirs, clearDir, removeDir, sandboxDir, sandboxRoot } from "./dirs";
import { DEFAULT_REAL_DIRS, MAX_INDEX, preflight } from "./host";
import { checkAddressesFree, chooseIndices, kubeIndices, reserveNetwork } from "./host-numbers";
import { killHosts, kubePreflight, startHosts, writeKnownHosts } from "./host-processes";
import { generateEd25519 } from "./keys";
import { KUBE_REAL_DIRS } from "./kube-host";
import { KUBE_MAX_INDEX, KUBE_NET_PREFIX, checkSubnet, checkSubnetFree, hubDown, netFor, netnsExists } from "./network";
import { checkLoginUser } from "./login-user";
import { kubeSetup, layoutOf, mustReadState, readState, toSandbox, writeState, type HostRecord, type State } from "./state";
import type { Sandbox, SandboxCommonOptions, SandboxRef, SandboxUpOptions } from "./types";

// A sandbox's lifecycle: up, add hosts, down; and reading sandboxes back.

/**
 * Starts `count` hosts in a new sandbox and returns once every one answers SSH. The hosts
 * outlive the calling process; `sandboxDown` (from any process) stops them. Fails if a sandbox
 * with this name/dir is already up.
 */
export async function sandboxUp(count: number, opts: SandboxUpOptions = {}): Promise<Sandbox> {
  const kube = opts.kubernetes ? (opts.kubernetes === true ? {} : opts.kubernetes) : undefined;
  const user = checkLoginUser(opts.user);
  if (kube && user.name !== "root") throw new Error(`login user "${user.name}": Kubernetes-mode hosts log in as root only`);
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
          if (await netnsExists(hub))
            throw new Error(
              `network namespace ${hub} already exists: another Kubernetes sandbox named "${name}" is up elsewhere, or it is a leftover (ip netns del ${hub})`,
            );
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
        const state: State = {
          version: 1,
          name,
          ssh: { user: user.name, ...(user.sudo ? { sudo: user.sudo } : {}), pk, passwd, knownHosts: join(dir, "known_hosts") },
          hosts: indices.map((index) => ({ index, realDirs })),
        };
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
