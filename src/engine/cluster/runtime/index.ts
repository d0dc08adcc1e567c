export { hooksRuntime, hookEnv } from "./hooks";
export { selectRuntime } from "./select";
export { LIFECYCLE } from "./types";
export type { LifecycleStep, Runtime, RuntimeCommand, RuntimeContext, RuntimeOutputs } from "./types";
