import { isMaster } from "../plan/roles";
import { canonicalIp, ipFamily, normaliseRole } from "./validators";

/** A cross-field problem, at a path relative to the hosts list's parent (`hosts[2]`, `hosts`). */
export interface HostsProblem {
  path: PropertyKey[];
  message: string;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/**
 * Checks across host groups, on the hosts as written (sealer's and sealant's groups have the
 * same `ips`/`roles`), so they run even when single fields are wrong and every problem is
 * reported at once:
 * - an IP in two groups: with the same roles it is listed twice; with other roles the host
 *   would be in two role groups (give one group both roles if that is meant);
 * - an IP twice in one group;
 * - no host with the master role;
 * - IPv4 and IPv6 hosts mixed (sealer refuses that too: one cluster, one family).
 * Bad IPs and roles themselves are the schema's to report; they are skipped here.
 */
export function checkHosts(hosts: unknown, groupName: (index: number) => string = (g) => `hosts[${g}]`): HostsProblem[] {
  if (!Array.isArray(hosts)) return [];
  const problems: HostsProblem[] = [];
  const seen = new Map<string, { group: number; roles: string }>();
  const families = new Map<string, string>();
  let masters = 0;
  hosts.forEach((group: unknown, g) => {
    if (typeof group !== "object" || group === null) return;
    const { ips, roles } = group as { ips?: unknown; roles?: unknown };
    const roleList = [...new Set(strings(roles).map(normaliseRole))];
    const roleText = [...roleList].sort().join(", ") || "no roles";
    if (isMaster({ roles: roleList })) masters++;
    const inGroup = new Set<string>();
    strings(ips).forEach((raw, i) => {
      const family = ipFamily(raw);
      if (family === undefined) return;
      const ip = canonicalIp(raw);
      if (!families.has(family)) families.set(family, ip);
      if (inGroup.has(ip)) {
        problems.push({ path: ["hosts", g, "ips", i], message: `${ip} is listed twice in ${groupName(g)}` });
        return;
      }
      inGroup.add(ip);
      const before = seen.get(ip);
      if (before === undefined) {
        seen.set(ip, { group: g, roles: roleText });
      } else if (before.roles === roleText) {
        problems.push({ path: ["hosts", g, "ips", i], message: `${ip} is in ${groupName(before.group)} and ${groupName(g)}: list each host once` });
      } else {
        problems.push({
          path: ["hosts", g, "ips", i],
          message: `${ip} is in two role groups, ${groupName(before.group)} (${before.roles}) and ${groupName(g)} (${roleText}): a host belongs to one group (give it all its roles there)`,
        });
      }
    });
  });
  if (hosts.length > 0 && masters === 0) {
    problems.push({ path: ["hosts"], message: 'no host group has the role "master": a cluster needs at least one master' });
  }
  if (families.size > 1) {
    problems.push({
      path: ["hosts"],
      message: `IPv4 (${families.get("IPv4")}) and IPv6 (${families.get("IPv6")}) hosts are mixed: all hosts of a cluster must be in one IP family`,
    });
  }
  return problems;
}
