export { hooksRuntime, hookEnv } from "./hooks";
export { findRuntime, selectRuntime } from "./select";
export { LIFECYCLE } from "./types";
export type { CertificateReport, FirstMasterCommand, RuntimeHost, LifecycleStep, Runtime, RuntimeCommand, RuntimeContext, RuntimeOutputs } from "./types";
