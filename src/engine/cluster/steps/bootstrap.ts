import { BOOTSTRAP } from "../plan/kinds";
import { recordSettings } from "./host-settings";
import { lifecycleStep } from "./lifecycle";

/** The cluster created: on every host at once, or on the first master (see DesiredCluster.bootstrap). */
export const bootstrap = lifecycleStep(BOOTSTRAP, "bootstrap", {
  action: () => "create",
  record: (host, _record, ctx) => recordSettings(host, ctx),
});
