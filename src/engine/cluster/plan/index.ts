export { planCluster, planReset, shortDigest, PlanError } from "./planner";
export { rollingBatches } from "./batches";
export { QuorumError, quorumOf, withForcedRemovals, withMembership, type ConsensusMember, type Membership } from "./quorum";
export { describeHosts, formatPlan } from "./format";
export { hasRole, isMaster, MASTER, MASTER_ROLES } from "./roles";
export type * from "./types";
