/** The etcd example as a test subject: build it (optionally changed), a Cluster spec for it, and etcd's own view of the cluster. */
import { cp, mkdtemp } from "node:fs/promises";
import { join, resolve } from "node:path";
import { build } from "../../src/engine/build";
import { parseClusterSpec, type ClusterSpec } from "../../src/engine/cluster/spec";
import type { Bed } from "./bed";
import { execP } from "./tools";

export const ETCD_EXAMPLE = resolve(__dirname, "../../examples/etcd");

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
  return stdout
    .trim()
    .split("\n")
    .map((l) => l.split(", ")[2]!)
    .sort();
}

export async function etcdHealthy(ips: string[]): Promise<boolean> {
  try {
    await execP("etcdctl", ["--endpoints", ips.map((ip) => `http://${ip}:2379`).join(","), "endpoint", "health"], {
      env: { ...process.env, ETCDCTL_API: "3" },
    });
    return true;
  } catch {
    return false;
  }
}
