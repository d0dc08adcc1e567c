export { planCluster, planReset, rollingBatches, describeHosts, shortDigest, PlanError } from "./planner";
export { formatPlan } from "./format";
export { isMaster, MASTER, MASTER_ROLES } from "./roles";
export type * from "./types";
