import { LEAVE } from "../plan/kinds";
import { runStreamed } from "../host/commands";
import { leavingAction } from "./kind";
import { lifecycleStep } from "./lifecycle";
import { beforeOnFirstMaster, firstMasterOf, runtimeHost } from "./runtime-command";

/**
 * A member leaves the cluster (in the image it runs); once it has, it is no member. A host
 * that cannot be reached and is removed by force: only the cluster's side, on the first master.
 */
export const leave = lifecycleStep(LEAVE, "leave", {
  leaving: true,
  action: leavingAction,
  async runUnreachable(ctx, step, host, signal) {
    const { cluster } = ctx;
    const cmd = cluster.runtime.command("leave", runtimeHost(host), {
      ...ctx.runtimeContext(leavingAction(ctx.opts.plan), cluster.layout.current),
      hostUnreachable: true,
    });
    if (cmd.before) await beforeOnFirstMaster(cluster, cmd.before, step.id, signal);
    if (cmd.after)
      await runStreamed(await cluster.pool.get(firstMasterOf(cluster), signal), {
        ...cmd.after,
        step: `${step.id} (on the first master)`,
        timeoutMs: ctx.commandMs,
        emit: cluster.emit,
        ...(signal ? { signal } : {}),
      });
  },
  record(host) {
    host.member = false;
  },
});
