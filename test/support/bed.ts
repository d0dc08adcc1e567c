/** A test file's sealant home, session and sandbox hosts (the bed the cluster, provider and Pulumi tests run on). */
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClusterEvent } from "../../src/engine/cluster";
import { sandboxDown, sandboxUp, type Sandbox } from "../../src/engine/sandbox";
import { Session, type SessionOptions } from "../../src/engine/session";

/** A sealant home, a session and sandbox hosts for one test file; `close` removes everything. */
export interface Bed {
  home: string;
  session: Session;
  sandbox: Sandbox;
  ips: string[];
  events: ClusterEvent[];
  close(): Promise<void>;
}

/** `options`: session options, e.g. registry mirrors for builds that cache docker.io images from a loopback stand-in. */
export async function openBed(count: number, firstIndex: number, options: Omit<SessionOptions, "home"> = {}): Promise<Bed> {
  const home = await mkdtemp(join(tmpdir(), "sealant-e2e-"));
  const session = await Session.open({ ...options, home });
  const sandbox = await sandboxUp(count, { name: `e2e${firstIndex}`, dir: join(home, "sandbox"), firstIndex });
  return {
    home,
    session,
    sandbox,
    ips: sandbox.hosts.map((h) => h.ip),
    events: [],
    close: async () => {
      session.close();
      await sandboxDown(sandbox).catch(() => undefined);
      await rm(home, { recursive: true, force: true });
    },
  };
}

/**
 * What a user does once for hosts whose Clusterfile cannot name a known_hosts file (sealer's
 * has no such field): put their keys into sealant's own known_hosts ($SEALANT_HOME/known_hosts),
 * which every connection checks under the default strict host-key policy.
 */
export async function trustSandboxHosts(bed: Bed): Promise<void> {
  await copyFile(bed.sandbox.ssh.knownHosts, join(bed.home, "known_hosts"));
}
