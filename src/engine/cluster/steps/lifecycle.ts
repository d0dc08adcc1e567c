import { shellQuote } from "../../ssh";
import type { ClusterHost } from "../host/connect";
import type { Action, Plan, PlanStep, StepKind } from "../plan";
import type { LifecycleStep } from "../runtime";
import { planAction, type StepContext, type StepKindDef } from "./kind";
import { runRuntimeCommand, runtimeHost, useImage } from "./runtime-command";

/**
 * A step that runs one lifecycle command of the image's runtime (`hook:<name>`). Hosts on
 * their way out (leave, reset) run it in the image they have; the others in the new image,
 * made current first, with the runtime's image files rendered for them.
 */
export function lifecycleStep(
  kind: StepKind,
  name: LifecycleStep,
  o: {
    /** Runs in the host's current image, and only if it has one. */
    leaving?: boolean;
    action?(plan: Plan): Action;
    runUnreachable?: StepKindDef["runUnreachable"];
    record?: StepKindDef["record"];
  } = {},
): StepKindDef {
  const action = o.action ?? planAction;
  return {
    kind,
    async run(ctx: StepContext, step: PlanStep, host: ClusterHost, signal?: AbortSignal): Promise<void> {
      const { cluster } = ctx;
      const { layout } = cluster;
      const conn = await cluster.pool.get(host, signal);
      const rootfs = o.leaving ? layout.current : layout.rootfs(cluster.image.digest);
      const files = o.leaving ? undefined : await ctx.runtimeFiles(host);
      const cmd = cluster.runtime.command(name, runtimeHost(host), ctx.runtimeContext(action(ctx.opts.plan), rootfs, files));
      // A reset of a host that never got the image has nothing to run.
      const command = o.leaving
        ? `if [ -d ${shellQuote(layout.current)} ]; then ${cmd.command}; fi`
        : `${useImage(layout.current, cluster.image.digest)}${cmd.command}`;
      await runRuntimeCommand(cluster, conn, { ...cmd, command }, step.id, signal);
    },
    ...(o.runUnreachable ? { runUnreachable: o.runUnreachable } : {}),
    ...(o.record ? { record: o.record } : {}),
  };
}
