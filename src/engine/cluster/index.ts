/**
 * Running cluster images onto hosts: open a cluster (image, runtime, hosts, facts, lock, record),
 * plan, validate, execute phase by phase with every step recorded.
 *
 * Floors, each importing only those below it: plan/ (pure: plans, step kind names, roles) and
 * spec/; runtime/; host/ (what sealant does on one host) and state/ (record, lock); steps/ (one
 * home per step kind, the table, the executor); then this directory: open.ts (opening a cluster),
 * desired.ts, validate.ts, outputs.ts, and the actions apply.ts, reset.ts, operations.ts.
 */
export { applyCluster, type ApplyOptions, type ApplyResult } from "./apply";
export { openCluster, readRecord, type ClusterOptions, type OpenCluster } from "./open";
export { resetCluster, type ResetOptions } from "./reset";
export { checkCluster, observeCluster, execOnCluster, unlockCluster, type CheckResult, type HostCheck, type ExecOnHostsOptions } from "./operations";
export { ApplyError } from "./steps/executor";
export { ValidationError } from "./validate";
export { ClusterLockedError, type LockOwner } from "./state/lock";
export { StateRecordError, type ClusterRecord } from "./state/record";
export { HostLayout } from "./host/layout";
export { resolveClusterImage, type ClusterImage } from "./host/image";
export { desiredCluster } from "./desired";
export type { ClusterEvent, HostFacts } from "./host/context";
