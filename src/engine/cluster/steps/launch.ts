import { shellQuote } from "../../ssh";
import { runStreamed } from "../host/commands";
import { launchCommands } from "../host/launch";
import { LAUNCH } from "../plan/kinds";
import type { StepKindDef } from "./kind";

/** The image's (or spec's) apps launched from the first master, in the new image's rootfs. */
export const launch: StepKindDef = {
  kind: LAUNCH,
  async run(ctx, step, host, signal) {
    const { cluster } = ctx;
    const conn = await cluster.pool.get(host, signal);
    const rootfs = cluster.layout.rootfs(cluster.image.digest);
    for (const command of launchCommands(cluster.image.metadata, cluster.spec.apps)) {
      await runStreamed(conn, {
        command: `cd ${shellQuote(rootfs)} && ${command}`,
        env: host.env,
        step: step.id,
        timeoutMs: ctx.commandMs,
        emit: cluster.emit,
        ...(signal ? { signal } : {}),
      });
    }
  },
};
