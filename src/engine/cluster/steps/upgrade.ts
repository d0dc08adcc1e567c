import { UPGRADE } from "../plan/kinds";
import { lifecycleStep } from "./lifecycle";

/** A member moved to the new image or configuration (one batch of the rolling upgrade at a time). */
export const upgrade = lifecycleStep(UPGRADE, "upgrade", {
  action: (plan) => (plan.actions.includes("upgrade") ? "upgrade" : "reconfigure"),
  record(host, _record, ctx) {
    host.imageDigest = ctx.imageDigest;
    host.configDigest = ctx.configDigest;
  },
});
