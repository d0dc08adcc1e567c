import { HOST_SETTINGS } from "../plan/kinds";
import { isMaster } from "../plan/roles";
import type { RecordedHost } from "../plan";
import { planAction, type RecordContext, type StepKindDef } from "./kind";
import { runRuntimeCommand, runtimeHost } from "./runtime-command";

/** A member's labels and taints (and, for runtimes whose workers follow the masters, its masters) applied again. */
export const hostSettings: StepKindDef = {
  kind: HOST_SETTINGS,
  async run(ctx, step, host, signal) {
    const { cluster, opts } = ctx;
    const cmd = cluster.runtime.hostSettings?.(
      runtimeHost(host),
      opts.previousSettings?.get(host.ip) ?? {},
      ctx.runtimeContext(planAction(opts.plan), cluster.layout.current),
    );
    if (cmd) await runRuntimeCommand(cluster, await cluster.pool.get(host, signal), cmd, step.id, signal);
  },
  record: (host, _record, ctx) => recordSettings(host, ctx),
};

/** A host that joined, bootstrapped or had its settings applied: its labels, taints and the masters it follows, as desired. */
export function recordSettings(host: RecordedHost, ctx: RecordContext): void {
  const { desired } = ctx;
  const d = desired.hosts.find((h) => h.ip === host.ip);
  if (d?.labels) host.labels = d.labels;
  if (d?.taints) host.taints = d.taints;
  if (desired.workersFollowMasters && d && !isMaster(d)) host.follows = desired.hosts.filter(isMaster).map((h) => h.ip);
}
