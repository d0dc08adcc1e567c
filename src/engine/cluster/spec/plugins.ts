import { canonicalIp, hostnameProblem, ipFamily, ipProblem, quote, roleProblem, normaliseRole, suggest } from "./validators";

/**
 * sealer's plugin phases (`Plugin.spec.action`, current sealer): host phases run on the hosts
 * of the plugin's scope, cluster phases on the first master only. Several are joined with "|".
 */
export const HOST_PLUGIN_ACTIONS = ["pre-init-host", "post-init-host", "pre-clean-host", "post-clean-host", "upgrade-host"] as const;
export const CLUSTER_PLUGIN_ACTIONS = [
  "pre-install",
  "post-install",
  "pre-uninstall",
  "post-uninstall",
  "pre-scaleup",
  "post-scaleup",
  "upgrade",
  "rollback",
] as const;
export const PLUGIN_ACTIONS = [...HOST_PLUGIN_ACTIONS, ...CLUSTER_PLUGIN_ACTIONS] as const;
export type PluginAction = (typeof PLUGIN_ACTIONS)[number];

/**
 * sealer v0.8 action names (`PreInit`, `PostInstall`, ...) as the phase that took their place.
 * `Originally` (run at load, no phase) has no equivalent and is rejected.
 */
export const LEGACY_PLUGIN_ACTIONS: Readonly<Record<string, PluginAction>> = {
  PreInit: "pre-init-host",
  PreInstall: "pre-install",
  PostInstall: "post-install",
  PreJoin: "pre-scaleup",
  PostJoin: "post-scaleup",
  PreGuest: "post-install",
  PreClean: "pre-clean-host",
  PostClean: "post-clean-host",
};

/**
 * sealer's plugin types: SHELL is the one current sealer runs; the others are v0.8 built-ins.
 * MODULE is sealant's out-of-tree plugin: the user's own TypeScript or JavaScript module.
 */
export const PLUGIN_TYPES = ["SHELL", "HOSTNAME", "LABEL", "TAINT", "ETCD", "CLUSTERCHECK", "MODULE"] as const;
export type PluginType = (typeof PLUGIN_TYPES)[number];

export function isClusterAction(a: PluginAction): boolean {
  return (CLUSTER_PLUGIN_ACTIONS as readonly string[]).includes(a);
}

function splitList(v: string | readonly string[], separators: RegExp): string[] {
  const parts = typeof v === "string" ? v.split(separators) : v.flatMap((x) => x.split(separators));
  return parts.map((s) => s.trim()).filter((s) => s !== "");
}

/** `post-install|PreInit` (or a list) → phases, deduplicated; the problems name the bad words. */
export function parsePluginActions(v: string | readonly string[]): { actions: PluginAction[]; problems: string[] } {
  const actions: PluginAction[] = [];
  const problems: string[] = [];
  const words = splitList(v, /\|/);
  if (words.length === 0) problems.push(`no action: expected one or more of ${PLUGIN_ACTIONS.join(", ")} joined with "|"`);
  for (const w of words) {
    const a = (PLUGIN_ACTIONS as readonly string[]).includes(w) ? (w as PluginAction) : LEGACY_PLUGIN_ACTIONS[w];
    if (a !== undefined) {
      if (!actions.includes(a)) actions.push(a);
      continue;
    }
    const hint = suggest(w, [...PLUGIN_ACTIONS, ...Object.keys(LEGACY_PLUGIN_ACTIONS)]);
    problems.push(
      w === "Originally"
        ? `"Originally" (run when loaded, outside any phase) is not supported: choose a phase such as pre-init-host or post-install`
        : `${quote(w)} is not a plugin action (expected ${PLUGIN_ACTIONS.join(", ")})${hint !== undefined ? `; did you mean "${hint}"?` : ""}`,
    );
  }
  return { actions, problems };
}

const MAX_RANGE = 1024;

function expandIpv4Range(from: string, to: string): string[] | string {
  const n = (ip: string): number => ip.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  const a = n(from);
  const b = n(to);
  if (b < a) return `range ${from}-${to} ends before it starts`;
  if (b - a >= MAX_RANGE) return `range ${from}-${to} has more than ${MAX_RANGE} addresses`;
  const out: string[] = [];
  for (let x = a; x <= b; x++) out.push([x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255].join("."));
  return out;
}

/**
 * Where a host phase runs: roles (`master | node`, current sealer's `scope`) or, from sealer
 * v0.8's `on`, `role=master`, IP lists (`a,b`) and IPv4 ranges (`a-b`). Label selectors
 * (`on: node-role.kubernetes.io/master=`) are not supported: use a role.
 */
export function parsePluginScope(v: string | readonly string[]): { scope: string[]; problems: string[] } {
  const scope: string[] = [];
  const problems: string[] = [];
  const add = (s: string): void => {
    if (!scope.includes(s)) scope.push(s);
  };
  for (const raw of splitList(v, /[|,]/)) {
    const word = raw.startsWith("role=") ? raw.slice(5) : raw;
    const dash = word.indexOf("-");
    if (dash > 0 && ipFamily(word.slice(0, dash)) === "IPv4" && ipFamily(word.slice(dash + 1)) === "IPv4") {
      const r = expandIpv4Range(word.slice(0, dash), word.slice(dash + 1));
      if (typeof r === "string") problems.push(r);
      else r.forEach(add);
    } else if (ipFamily(word) !== undefined) {
      const p = ipProblem(word);
      if (p !== undefined) problems.push(p);
      else add(canonicalIp(word));
    } else if (word.includes("=")) {
      problems.push(`${quote(raw)} is a label selector: scope by role (e.g. master, node) or by IP instead`);
    } else {
      const p = roleProblem(word);
      if (p !== undefined) problems.push(p);
      else add(normaliseRole(word));
    }
  }
  return { scope, problems };
}

/**
 * What is wrong with a plugin's data for its type: a HOSTNAME plugin's lines are `IP hostname`,
 * and the name is set on the host (`hostname`, /etc/hostname), so it must be a host name.
 */
export function pluginDataProblems(type: PluginType, data: string): string[] {
  if (type !== "HOSTNAME") return [];
  const problems: string[] = [];
  data.split("\n").forEach((line, i) => {
    const words = line.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return;
    const [ip, name] = words;
    const problem = words.length !== 2 ? `${quote(line)} is not "IP hostname"` : (ipProblem(ip!) ?? hostnameProblem(name!));
    if (problem !== undefined) problems.push(`line ${i + 1}: ${problem}`);
  });
  return problems;
}

/** What is wrong with a MODULE's `module`: an npm package name (`@acme/sealant-cmdb`, `pkg/sub`) or a path (`./plugins/notify.ts`). */
export function pluginModuleProblem(v: string): string | undefined {
  if (v.trim() === "" || /[\u0000-\u001f\u007f]/.test(v)) return `${quote(v)} is not a module: give an npm package name or a path such as ./plugins/notify.ts`;
  if (v.startsWith("./") || v.startsWith("../") || v.startsWith("/")) return undefined;
  if (/^(@[a-z0-9][\w.~-]*\/)?[a-z0-9][\w.~-]*(\/[\w.~-]+)*$/i.test(v)) return undefined;
  return `${quote(v)} is neither an npm package name nor a path: a path starts with ./, ../ or /`;
}

/** Fields that belong to one kind of plugin only: a MODULE names its module; the others need their phases and take no module settings. */
export function pluginFieldProblems(p: {
  type: PluginType;
  action?: unknown;
  module?: string;
  config?: unknown;
  timeout?: unknown;
  secrets?: boolean;
  data?: string;
}): {
  path: string;
  message: string;
}[] {
  const out: { path: string; message: string }[] = [];
  if (p.type === "MODULE") {
    if (p.module === undefined) out.push({ path: "module", message: "a MODULE plugin names its module: an npm package or a path such as ./plugins/notify.ts" });
    if (p.data !== undefined && p.data !== "") out.push({ path: "data", message: "a MODULE plugin takes no script: give its settings in config" });
    return out;
  }
  if (p.action === undefined) out.push({ path: "action", message: `a ${p.type} plugin needs its phases (e.g. post-install or PreInit)` });
  if (p.data === undefined) out.push({ path: "data", message: `a ${p.type} plugin needs its data (the script, or the lines of its type)` });
  for (const field of ["module", "config", "timeout"] as const)
    if (p[field] !== undefined) out.push({ path: field, message: `only a MODULE plugin takes ${field} (this one is ${p.type})` });
  if (p.secrets === true) out.push({ path: "secrets", message: `only a MODULE plugin takes secrets (this one is ${p.type})` });
  return out;
}
