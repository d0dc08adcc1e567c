import { isMaster } from "./plan/roles";
import type { ClusterSpec } from "./spec";
import { canonicalIp, ipFamily, ipProblem } from "./spec/validators";

/*
 * Small pure edits of a parsed cluster spec, for commands that change the cluster relative to
 * its Clusterfile (`sealant delete --nodes`). Text in / spec in, new spec or an error in the
 * user's terms out; nothing is read or written.
 */

/** A host list or host removal that cannot be done, in the user's terms. */
export class HostEditError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostEditError";
  }
}

/** More than this many addresses in one range is a typo, not a cluster. */
const MAX_RANGE = 4096;

function ipv4ToNumber(ip: string): number {
  return ip.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

function numberToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

/**
 * IPs as a command line gives them: comma-separated (flags may repeat), IPv4 ranges written
 * as sealer does (`192.168.0.2-192.168.0.5`) expanded. Canonical, in order, each once.
 * Throws `HostEditError` naming the bad item.
 */
export function parseIpList(items: string | readonly string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (ip: string): void => {
    const c = canonicalIp(ip);
    if (!seen.has(c)) {
      seen.add(c);
      out.push(c);
    }
  };
  for (const raw of (typeof items === "string" ? [items] : items).flatMap((s) => s.split(","))) {
    const item = raw.trim();
    if (item === "") continue;
    const dash = item.indexOf("-");
    if (dash > 0 && ipFamily(item.slice(0, dash)) === "IPv4") {
      const from = item.slice(0, dash);
      const to = item.slice(dash + 1);
      if (ipFamily(to) !== "IPv4") throw new HostEditError(`"${item}": a range is FIRST-LAST with two IPv4 addresses (e.g. 192.168.0.2-192.168.0.5)`);
      const a = ipv4ToNumber(from);
      const b = ipv4ToNumber(to);
      if (b < a) throw new HostEditError(`"${item}": the range ends before it starts`);
      if (b - a + 1 > MAX_RANGE) throw new HostEditError(`"${item}": ${b - a + 1} addresses is more than ${MAX_RANGE} in one range`);
      for (let n = a; n <= b; n++) add(numberToIpv4(n));
      continue;
    }
    const problem = ipProblem(item);
    if (problem !== undefined) throw new HostEditError(problem);
    add(item);
  }
  return out;
}

/**
 * The spec without the hosts `ips`: they leave their host groups, and a group left with no
 * IP is dropped. A removed IP's host key fingerprint given on its group moves to the cluster's
 * `ssh.fingerprints`, so the host is still verified while it is taken out.
 *
 * Throws `HostEditError` when an IP is not a host of the spec, or when no master would be
 * left (a whole cluster goes with `sealant reset`, not by removing its hosts).
 */
export function removeHosts(spec: ClusterSpec, ips: readonly string[]): ClusterSpec {
  const wanted = [...new Set(ips.map(canonicalIp))];
  if (wanted.length === 0) throw new HostEditError("no hosts to remove");
  const listed = spec.hosts.flatMap((g) => g.ips);
  const unknown = wanted.filter((ip) => !listed.includes(ip));
  if (unknown.length > 0) {
    throw new HostEditError(
      `${unknown.join(", ")} ${unknown.length === 1 ? "is not a host" : "are not hosts"} of cluster ${spec.name} (its hosts: ${listed.join(", ")})`,
    );
  }
  const removed = new Set(wanted);
  const out = structuredClone(spec);
  const lifted: Record<string, string> = {};
  out.hosts = out.hosts
    .map((group) => {
      for (const ip of group.ips) {
        const fp = group.ssh?.fingerprints?.[ip];
        if (removed.has(ip) && fp !== undefined && spec.ssh.fingerprints?.[ip] === undefined) lifted[ip] = fp;
      }
      return { ...group, ips: group.ips.filter((ip) => !removed.has(ip)) };
    })
    .filter((group) => group.ips.length > 0);
  if (!out.hosts.some(isMaster)) {
    const masters = spec.hosts.filter(isMaster).flatMap((g) => g.ips);
    throw new HostEditError(
      `removing ${wanted.join(", ")} would leave cluster ${spec.name} without a master (its masters: ${masters.join(", ")}); ` +
        `a cluster needs at least one — to remove the whole cluster, use sealant reset`,
    );
  }
  if (Object.keys(lifted).length > 0) out.ssh = { ...out.ssh, fingerprints: { ...(out.ssh.fingerprints ?? {}), ...lifted } };
  return out;
}
