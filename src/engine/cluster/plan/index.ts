export { planCluster, planReset, shortDigest, PlanError } from "./planner";
export { rollingBatches } from "./batches";
export { describeHosts, formatPlan } from "./format";
export { hasRole, isMaster, MASTER, MASTER_ROLES } from "./roles";
export type * from "./types";
