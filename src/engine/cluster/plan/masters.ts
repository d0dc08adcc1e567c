import { PlanError } from "./errors";
import { hasRole, isMaster } from "./roles";
import type { CurrentCluster, DesiredCluster } from "./types";

/**
 * What a change of a running cluster's masters must keep: at least one of its masters, and its
 * first master in the spec (where the cluster's lock, record, join tokens and membership
 * changes are kept and run) one of them — a new host listed first has no cluster to work from.
 */
export function checkMasterChange(desired: DesiredCluster, current: CurrentCluster | undefined, creating: boolean): void {
  if (creating || !current) return;
  const members = current.hosts.filter((h) => h.member);
  const memberIps = new Set(members.map((h) => h.ip));
  const desiredIps = new Set(desired.hosts.map((h) => h.ip));
  const removedMembers = members.filter((h) => !desiredIps.has(h.ip) && hasRole(h));
  const keptMasters = desired.hosts.filter((h) => isMaster(h) && memberIps.has(h.ip));
  if (removedMembers.length > 0 && keptMasters.length === 0) {
    throw new PlanError(`removing ${removedMembers.map((h) => h.ip).join(", ")} would leave no master of the running cluster; keep at least one`);
  }
  const first = desired.hosts.find((h) => isMaster(h));
  if (first && keptMasters.length > 0 && !memberIps.has(first.ip)) {
    const masters = desired.hosts.filter((h) => isMaster(h)).map((h) => h.ip);
    const reordered = [...keptMasters.map((h) => h.ip), ...masters.filter((ip) => !memberIps.has(ip))];
    throw new PlanError(
      `hosts: the first master listed, ${first.ip}, is not a master of the running cluster yet; the first master is where the cluster is worked from (its record, lock, join tokens, membership changes), so it must be one of the current masters (${members
        .filter((h) => isMaster(h))
        .map((h) => h.ip)
        .join(", ")}). List a current master first: masters ${reordered.join(", ")}`,
    );
  }
}
