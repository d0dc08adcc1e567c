/**
 * Running cluster images onto hosts: open a cluster (image, runtime, hosts), read its record
 * from its masters, plan, validate, execute phase by phase with every step recorded.
 */
export { applyCluster, openCluster, readRecord, type ApplyOptions, type ApplyResult, type ClusterOptions, type OpenCluster } from "./apply";
export { resetCluster, checkCluster, observeCluster, execOnCluster, unlockCluster, type ResetOptions, type CheckResult, type HostCheck, type ExecOnHostsOptions } from "./operations";
export { ApplyError } from "./executor";
export { ValidationError } from "./validate";
export { ClusterLockedError, type LockOwner } from "./state/lock";
export { StateRecordError, type ClusterRecord } from "./state/record";
export { HostLayout } from "./layout";
export { resolveClusterImage, type ClusterImage } from "./image";
export { desiredCluster } from "./desired";
export type { ClusterEvent, HostFacts } from "./context";
