import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { build } from "../../../src/engine/build";
import type { ClusterEvent } from "../../../src/engine/cluster";
import { parseClusterSpec, type ClusterSpec } from "../../../src/engine/cluster/spec";
import { sandboxDown, sandboxUp, type Sandbox } from "../../../src/engine/sandbox";
import { Session, type SessionOptions } from "../../../src/engine/session";

export const execP = promisify(execFile);
export const ETCD_EXAMPLE = resolve(__dirname, "../../../examples/etcd");

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

/** Builds the etcd example (optionally changed: `edit` gets a copy of the context) as `tag`; returns ref@digest. */
export async function buildEtcd(bed: Bed, tag: string, edit?: (dir: string) => Promise<void>): Promise<string> {
  let context = ETCD_EXAMPLE;
  if (edit) {
    context = await mkdtemp(join(bed.home, "ctx-"));
    await cp(ETCD_EXAMPLE, context, { recursive: true });
    await edit(context);
  }
  const r = await build(bed.session, { context, tag });
  return `${tag}@${r.digest}`;
}

export function etcdSpec(bed: Bed, name: string, image: string, masters: string[], extra: Record<string, unknown> = {}): ClusterSpec {
  return parseClusterSpec({
    name,
    image,
    hosts: [{ ips: masters, roles: ["master"] }],
    ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts },
    ...extra,
  });
}

/** etcd's view: member names from any endpoint that answers. */
export async function etcdMembers(ip: string): Promise<string[]> {
  const { stdout } = await execP("etcdctl", ["--endpoints", `http://${ip}:2379`, "member", "list"], { env: { ...process.env, ETCDCTL_API: "3" } });
  return stdout.trim().split("\n").map((l) => l.split(", ")[2]!).sort();
}

export async function etcdHealthy(ips: string[]): Promise<boolean> {
  try {
    await execP("etcdctl", ["--endpoints", ips.map((ip) => `http://${ip}:2379`).join(","), "endpoint", "health"], { env: { ...process.env, ETCDCTL_API: "3" } });
    return true;
  } catch {
    return false;
  }
}

export { readFile, writeFile };
