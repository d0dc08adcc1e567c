export { planCluster, planReset, rollingBatches, describeHosts, PlanError } from "./planner";
export { formatPlan } from "./format";
export type * from "./types";
