import { RESET } from "../plan/kinds";
import { leavingAction } from "./kind";
import { lifecycleStep } from "./lifecycle";

/** A host the cluster no longer has undoes what the runtime set up (in the image it has, if any). */
export const reset = lifecycleStep(RESET, "reset", { leaving: true, action: leavingAction });
