import type { PlannedPlugin } from "../plan";
import { shellQuote } from "../../ssh";
import type { PluginSpec, ResolvedHost } from "../spec";

/** Plugin types that need a Kubernetes API (sealer v0.8's built-ins); the hooks runtime has none. */
const KUBERNETES_PLUGINS = new Set(["LABEL", "TAINT", "ETCD", "CLUSTERCHECK"]);

/**
 * The plugins of the spec at each of their phases, their scope (roles and IPs) resolved to
 * the cluster's IPs, as the planner takes them.
 */
export function plannedPlugins(plugins: readonly PluginSpec[], hosts: readonly ResolvedHost[]): PlannedPlugin[] {
  return plugins.flatMap((p) =>
    p.action.map((action) => {
      const scope = p.scope?.length ? hosts.filter((h) => p.scope!.some((s) => s === h.ip || h.roles.includes(s))).map((h) => h.ip) : undefined;
      return { name: p.name, action, ...(scope ? { scope } : {}), ...(p.type === "MODULE" ? { module: p.module! } : {}) };
    }),
  );
}

/** Problems with plugins this runtime cannot run, in the user's terms. */
export function pluginProblems(plugins: readonly PluginSpec[], runtime: string): string[] {
  return plugins
    .filter((p) => KUBERNETES_PLUGINS.has(p.type) && runtime !== "kubernetes")
    .map((p) => `plugin ${p.name}: type ${p.type} needs the kubernetes runtime; this image uses the ${runtime} runtime (use a SHELL plugin)`);
}

/**
 * The command a plugin runs on one host (the caller cds to the rootfs), and its stdin.
 * A SHELL plugin's script travels on stdin and runs in a subshell (`eval`), never as a command
 * line: scripts often carry passwords, and a command line is in every user's `ps` and sudo's log.
 * HOSTNAME sets the host's name from its `IP hostname` lines.
 */
export function pluginCommand(plugin: PluginSpec, host: ResolvedHost): { command: string; stdin?: string } | undefined {
  if (plugin.type === "SHELL") return { command: 'sealant_script=$(cat); (eval "$sealant_script")', stdin: plugin.data };
  if (plugin.type === "HOSTNAME") {
    for (const line of plugin.data.split("\n")) {
      const [ip, name] = line.trim().split(/\s+/);
      if (ip === host.ip && name) {
        const n = shellQuote(name);
        return { command: `hostname ${n} && echo ${n} > /etc/hostname.sealant && mv -f /etc/hostname.sealant /etc/hostname` };
      }
    }
    return undefined;
  }
  throw new Error(`plugin ${plugin.name}: type ${plugin.type} is not supported by this runtime`);
}
