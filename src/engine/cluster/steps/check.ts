import { CHECK } from "../plan/kinds";
import { lifecycleStep } from "./lifecycle";

/** The runtime's own check of a host that joined or was upgraded. */
export const check = lifecycleStep(CHECK, "check");
