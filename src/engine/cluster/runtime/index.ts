export { hooksRuntime, hookEnv, shellQuote } from "./hooks";
export { selectRuntime } from "./select";
export { LIFECYCLE } from "./types";
export type { LifecycleStep, Runtime, RuntimeCommand, RuntimeContext } from "./types";
