import type { PlannedPlugin, StepKind } from "./types";

/**
 * The names of the step kinds, as the planner writes them into plans and the record keeps them
 * in each host's `done` list (so they never change). How each one runs and what it records is
 * in steps/<kind>.ts; this file only names them, so the pure planner needs nothing else.
 */
export const DISTRIBUTE = "distribute" satisfies StepKind;
export const RENDER = "render" satisfies StepKind;
export const REGISTRY = "registry" satisfies StepKind;
export const MIRRORS = "mirrors" satisfies StepKind;
export const PUSH = "push" satisfies StepKind;
export const PULL_THROUGH = "pull-through" satisfies StepKind;
/** What the registry mode the cluster left (its own registry, or an external one) put on a host, taken off. */
export const REGISTRY_REMOVAL = "registry-removal" satisfies StepKind;
export const LAUNCH = "launch" satisfies StepKind;
export const CLEANUP = "cleanup" satisfies StepKind;
export const HOST_SETTINGS = "host-settings" satisfies StepKind;
/** A master's control-plane certificates renewed; its API server certificate made again for changed SANs (plan/certificates.ts). */
export const CERTIFICATE_RENEWAL = "certificate-renewal" satisfies StepKind;
export const APISERVER_SANS = "apiserver-sans" satisfies StepKind;

/** The runtime's lifecycle steps (`hook:<name>`: that lifecycle command of the image's runtime). */
export const INIT_HOST = "hook:init-host" satisfies StepKind;
export const BOOTSTRAP = "hook:bootstrap" satisfies StepKind;
export const JOIN = "hook:join" satisfies StepKind;
export const LEAVE = "hook:leave" satisfies StepKind;
export const UPGRADE = "hook:upgrade" satisfies StepKind;
export const CHECK = "hook:check" satisfies StepKind;
export const RESET = "hook:reset" satisfies StepKind;

/** What every plugin step kind starts with. */
export const PLUGIN_PREFIX = "plugin:";

/** A plugin at one of its phases: `plugin:<name>:<action>`. */
export function pluginKind(name: string, action: string): StepKind {
  return `${PLUGIN_PREFIX}${name}:${action}`;
}

/** The plugin and phase a plugin step kind names, or undefined for other kinds. */
export function parsePluginKind(kind: string): { name: string; action: string } | undefined {
  if (!kind.startsWith(PLUGIN_PREFIX)) return undefined;
  const [, name = "", action = ""] = kind.split(":");
  return { name, action };
}

/** The kind a step id names: the id without its `@<version>`. */
export function kindOfId(id: string): string {
  return id.split("@")[0]!;
}

/** A plugin step as the plan says it: the plugin, its module when it is one, the host, and what the module says it will do there. */
export function pluginStepWords(p: PlannedPlugin, ip: string): string {
  const line = p.describe?.[ip];
  return `run plugin ${p.name}${p.module ? ` (module ${p.module})` : ""} on ${ip}${line ? `: ${line}` : ""}`;
}
