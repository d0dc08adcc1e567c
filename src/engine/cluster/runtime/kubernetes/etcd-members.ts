import type { ConsensusMember } from "../../plan/quorum";
import type { PlannedHost } from "../../plan/types";
import type { RuntimeMembers } from "../types";
import { etcdctl } from "./first-master";
import { PRELUDE } from "./shell";

/**
 * kubeadm's stacked etcd as the first master's etcd pod sees it: its member list, then every
 * member's health (`endpoint health --cluster`). A member that does not answer costs the
 * health check its command timeout (3 s; every member is asked at once), never more than 30 s.
 */
const MEMBERS = "== etcd members";
const HEALTH = "== etcd health";

function read(first: PlannedHost) {
  return {
    command: `${PRELUDE}wait_api
echo ${MEMBERS}
${etcdctl(first)} member list
echo ${HEALTH}
timeout 30 ${etcdctl(first)} endpoint health --cluster -w json --dial-timeout=2s --command-timeout=3s 2> /dev/null || true`,
    env: {},
  };
}

const hostOf = (url: string): string => /^\w+:\/\/\[?([^\]/]+?)\]?(?::\d+)?\/?$/.exec(url.trim())?.[1] ?? url.trim();

/** The member list's rows (`id, status, name, peer URLs, client URLs, learner`) with each member's answer to the health check. */
export function parseEtcdMembers(stdout: string): ConsensusMember[] {
  const lines = stdout.split("\n");
  const at = (marker: string) => lines.findIndex((l) => l.trim() === marker);
  const [m, h] = [at(MEMBERS), at(HEALTH)];
  if (m < 0 || h < m) throw new Error("etcd's members could not be read on the first master (no member list)");
  const healthText = lines
    .slice(h + 1)
    .join("\n")
    .trim();
  let health: { endpoint: string; health: boolean; error?: string }[];
  try {
    health = JSON.parse(healthText) as typeof health;
    if (!Array.isArray(health)) throw new Error("not a list");
  } catch {
    throw new Error(`etcd's health could not be read on the first master (etcdctl endpoint health gave ${JSON.stringify(healthText.slice(0, 200))})`);
  }
  return lines
    .slice(m + 1, h)
    .filter((l) => l.includes(","))
    .map((row) => {
      const [, status, name, peers, clients] = row.split(",").map((f) => f.trim());
      const ip = hostOf((peers ?? "").split(" ")[0] ?? "");
      const clientHosts = new Set((clients ?? "").split(" ").filter(Boolean).map(hostOf));
      const answers = health.filter((x) => clientHosts.has(hostOf(x.endpoint)));
      if (answers.some((x) => x.health)) return { ip, name: name ?? "", healthy: true };
      const error = answers.find((x) => x.error)?.error;
      const problem = status !== "started" ? "not started" : error ? (error.split(": ").pop() ?? error) : "did not answer";
      return { ip, name: name ?? "", healthy: false, problem };
    });
}

export const etcdMembers: RuntimeMembers = { system: "etcd", read, parse: parseEtcdMembers };
