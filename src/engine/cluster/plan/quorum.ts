import { CLEANUP, LEAVE, RESET } from "./kinds";
import { PlanError } from "./errors";
import type { Plan, PlanPhase, PlanStep } from "./types";

/**
 * A running cluster's consensus members (Kubernetes: stacked etcd) and a change of its masters:
 * the removals ordered so the members that do not answer go first, and a change refused before
 * anything runs when, in the order its steps run, fewer members would answer than a quorum
 * needs. Pure: the members are what the runtime's read on the first master found.
 */

/** One member as the first master's consensus sees it. */
export interface ConsensusMember {
  /** The host's IP (etcd: its peer URL's). */
  ip: string;
  name: string;
  healthy: boolean;
  /** Why it is not healthy, in the runtime's words (e.g. etcd's error), short. */
  problem?: string;
}

/** What the runtime's read found: the system's name as users know it (e.g. "etcd") and its members. */
export interface Membership {
  system: string;
  members: ConsensusMember[];
}

/** Members needed for a quorum of `n`. */
export function quorumOf(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** A change of masters that would cost the cluster its quorum: refused before anything changes. */
export class QuorumError extends PlanError {
  constructor(message: string) {
    super(message);
    this.name = "QuorumError";
  }
}

const JOIN_MASTERS = "runtime:join-masters";

/**
 * The plan with its leaves ordered (members that do not answer, then those that do), and the
 * membership facts in its summary; throws a QuorumError naming the members when a removal, in
 * that order, would leave fewer healthy members than a quorum, or a master would join while a
 * member that does not answer stays (the bigger quorum would need it).
 */
export function withMembership(plan: Plan, m: Membership): Plan {
  const byIp = new Map(m.members.map((x) => [x.ip, x]));
  const down = (ip: string) => byIp.has(ip) && !byIp.get(ip)!.healthy;
  const phases: PlanPhase[] = plan.phases.map((p) =>
    p.name === "runtime:leave" ? { ...p, steps: [...p.steps.filter((s) => down(s.host)), ...p.steps.filter((s) => !down(s.host))] } : p,
  );
  const leaving = phases.filter((p) => p.name === "runtime:leave").flatMap((p) => p.steps.filter((s) => s.kind === LEAVE && byIp.has(s.host)));
  const joining = phases.filter((p) => p.name === JOIN_MASTERS).flatMap((p) => p.steps.map((s) => s.host));
  const facts = membershipFacts(m);
  const fix = (ip: string) => `drop ${ip} from the spec (with --force, or unreachableOnRemove: "force", if it cannot be reached)`;

  let members = m.members.length;
  let healthy = m.members.filter((x) => x.healthy).length;
  if (healthy < quorumOf(members))
    throw new QuorumError(
      `${facts}: ${m.system} has lost its quorum (${quorumOf(members)} of ${members} needed), so no member can be added or removed; nothing was changed. Bring the members back, or restore the cluster from a backup (sealant restore)`,
    );
  const gone = new Set<string>();
  for (const s of leaving) {
    const member = byIp.get(s.host)!;
    members--;
    if (member.healthy) healthy--;
    gone.add(s.host);
    if (member.healthy && healthy < quorumOf(members)) {
      const stays = m.members.filter((x) => !x.healthy && !gone.has(x.ip)).map((x) => x.ip);
      throw new QuorumError(
        `${facts}: removing ${s.host} (healthy) would leave ${healthy} healthy of ${members} ${m.system} members, below its quorum of ${quorumOf(members)}; nothing was changed. ` +
          (stays.length > 0
            ? `In the same change also ${fix(stays.join(", "))}: members that do not answer are removed first, then ${s.host} leaves with a quorum kept`
            : `Keep ${s.host} until the other members answer again`),
      );
    }
  }
  for (const ip of joining) {
    const stays = m.members.filter((x) => !x.healthy && !gone.has(x.ip));
    if (stays.length > 0)
      throw new QuorumError(
        `${facts}: ${ip} cannot join as a master while ${stays.map((x) => x.ip).join(", ")} ${stays.length === 1 ? "does" : "do"} not answer and ${stays.length === 1 ? "stays" : "stay"} a member (${members + 1} members need ${quorumOf(members + 1)} healthy); nothing was changed. In the same change ${fix(stays.map((x) => x.ip).join(", "))}: it is removed before ${ip} joins`,
      );
    members++;
    healthy++;
  }
  return { ...plan, phases, summary: [...plan.summary, `${facts}; after the change ${members} member${members === 1 ? "" : "s"}`] };
}

/** `etcd: 3 members, 2 healthy (127.0.0.13 unhealthy: connection refused)`. */
export function membershipFacts(m: Membership): string {
  const bad = m.members.filter((x) => !x.healthy);
  const n = m.members.length;
  const detail = bad.map((x) => `${x.ip} unhealthy${x.problem ? `: ${x.problem}` : ""}`).join("; ");
  return `${m.system}: ${n} member${n === 1 ? "" : "s"}, ${n - bad.length} healthy${detail ? ` (${detail})` : ""}`;
}

/**
 * The plan saying what a removal by force does: the host cannot be reached, so only the
 * cluster's side of its leaving runs (on the first master, `forgets` says what), and its own
 * steps (reset, plugins) do not run; the record forgets it, its files stay.
 */
export function withForcedRemovals(plan: Plan, unreachable: ReadonlySet<string>, first: string, forgets: (ip: string) => string): Plan {
  if (unreachable.size === 0) return plan;
  const why = "it cannot be reached; removed by force";
  const describe = (s: PlanStep): string =>
    s.kind === LEAVE
      ? `${s.host} is removed by force from ${first}: ${forgets(s.host)} (it cannot be reached)`
      : s.kind === CLEANUP
        ? `forget ${s.host} in the cluster's record; its files stay (${why})`
        : `${s.kind === RESET ? `reset ${s.host}` : s.description}: not run (${why})`;
  const phases = plan.phases.map((p) => ({ ...p, steps: p.steps.map((s) => (unreachable.has(s.host) ? { ...s, description: describe(s) } : s)) }));
  const lines = [...unreachable].map(
    (ip) => `remove ${ip} by force: it cannot be reached; from ${first}: ${forgets(ip)}; its own reset and file removal do not run (its files stay)`,
  );
  const at = plan.summary.findIndex((l) => l.startsWith("remove "));
  const summary = [...plan.summary];
  summary.splice(at < 0 ? 0 : at + 1, 0, ...lines);
  return { ...plan, phases, summary };
}
