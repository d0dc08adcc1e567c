import { withLock } from "../util/lock";
import { sandboxDir } from "./dirs";
import { preflight } from "./host";
import { checkAddressesFree } from "./host-numbers";
import { killHosts, kubePreflight, startHosts } from "./host-processes";
import { isAlive } from "./process";
import { findHost, mustReadState, readState, toSandbox, writeState } from "./state";
import type { SandboxCommonOptions, SandboxHost, SandboxRef } from "./types";

// One host powered off and on again; its disk stays.

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
