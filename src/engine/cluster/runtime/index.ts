export { hooksRuntime, hookEnv } from "./hooks";
export { findRuntime, selectRuntime } from "./select";
export { LIFECYCLE } from "./types";
export type { FirstMasterCommand, RuntimeHost, LifecycleStep, Runtime, RuntimeCommand, RuntimeContext, RuntimeOutputs } from "./types";
