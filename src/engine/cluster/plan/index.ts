export { planCluster, planReset, describeHosts, shortDigest, PlanError } from "./planner";
export { rollingBatches } from "./batches";
export { formatPlan } from "./format";
export { isMaster, MASTER, MASTER_ROLES } from "./roles";
export type * from "./types";
