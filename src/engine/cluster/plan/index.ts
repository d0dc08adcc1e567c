export { planCluster, planReset, rollingBatches, describeHosts, shortDigest, PlanError } from "./planner";
export { formatPlan } from "./format";
export type * from "./types";
