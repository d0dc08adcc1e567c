import { INIT_HOST } from "../plan/kinds";
import { lifecycleStep } from "./lifecycle";

/** A new host prepared for the runtime (packages, kernel settings: the runtime's init-host). */
export const initHost = lifecycleStep(INIT_HOST, "init-host");
