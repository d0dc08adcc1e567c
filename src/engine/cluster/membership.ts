import { commandEnv } from "./host/commands";
import type { OpenCluster } from "./open";
import { isMaster, type CurrentCluster, type Plan } from "./plan";
import { LEAVE } from "./plan/kinds";
import { withForcedRemovals, withMembership } from "./plan/quorum";
import { runtimeHost } from "./steps";

/**
 * The plan as it will run once the hosts were asked: removals by force said as such, and — for
 * a change of a running cluster's masters, in a runtime with consensus members — the members'
 * health read on the first master, the removals ordered and a change that would lose the
 * quorum refused (plan/quorum.ts). Before any step runs, for a dry run too.
 */
export async function planAsItRuns(ctx: OpenCluster, plan: Plan, current: CurrentCluster | undefined, unreachable: ReadonlySet<string>): Promise<Plan> {
  const first = ctx.firstMaster.ip;
  const forgets = (ip: string): string => {
    const h = ctx.hosts.get(ip);
    return (h && ctx.runtime.forcedRemoval?.(runtimeHost(h))) ?? "only the cluster's side of its leaving runs";
  };
  const forced = withForcedRemovals(plan, unreachable, first, forgets);
  const members = ctx.runtime.members;
  if (!members || !current || current.creating || !changesMasters(plan, current)) return forced;
  const cmd = members.read(runtimeHost(ctx.firstMaster));
  const r = await (
    await ctx.pool.get(ctx.firstMaster, ctx.signal)
  ).run(cmd.command, { sudo: true, env: commandEnv(cmd.env), timeoutMs: 120_000, ...(ctx.signal ? { signal: ctx.signal } : {}) });
  if (r.code !== 0)
    throw new Error(
      `${members.system}'s members could not be read on ${first} before changing the masters (exit ${r.code}): ${r.stderr.trim().split("\n").slice(-3).join(" ")}`,
    );
  return withMembership(forced, { system: members.system, members: members.parse(r.stdout) });
}

/** Whether the plan removes a member master or joins one. */
function changesMasters(plan: Plan, current: CurrentCluster): boolean {
  const masters = new Set(current.hosts.filter((h) => h.member && isMaster(h)).map((h) => h.ip));
  return plan.phases.some((p) => p.name === "runtime:join-masters" || p.steps.some((s) => s.kind === LEAVE && masters.has(s.host)));
}
