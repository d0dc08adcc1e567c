import { JOIN } from "../plan/kinds";
import { recordSettings } from "./host-settings";
import { lifecycleStep } from "./lifecycle";

/** A host joins the running cluster; once it has, it is a member on the image and configuration applied. */
export const join = lifecycleStep(JOIN, "join", {
  action: () => "scale-up",
  record(host, _record, ctx) {
    recordSettings(host, ctx);
    host.member = true;
    host.imageDigest = ctx.imageDigest;
    host.configDigest = ctx.configDigest;
  },
});
