import { isMaster, type DesiredCluster, type PlannedPlugin } from "../plan";
import { isClusterAction, type PluginAction } from "../spec/plugins";
import { PluginError } from "./errors";
import type { LoadedPlugin } from "./load";

/**
 * The plan's words for each MODULE plugin step: what its `describe` says it will do on each host
 * it may run on (no connection is open, nothing can change). A describe that throws fails the
 * plan with the plugin, phase and host named.
 */
export function describePlugins(desired: DesiredCluster, modules: ReadonlyMap<string, LoadedPlugin>, config: (name: string) => unknown): void {
  if (modules.size === 0 || !desired.plugins) return;
  const firstMaster = desired.hosts.find(isMaster) ?? desired.hosts[0];
  desired.plugins = desired.plugins.map((p): PlannedPlugin => {
    const loaded = modules.get(p.name);
    const describe = loaded?.definition.describe;
    if (!loaded || !describe) return p;
    const hosts = p.scope ? desired.hosts.filter((h) => p.scope!.includes(h.ip)) : isClusterAction(p.action as PluginAction) ? [firstMaster!] : desired.hosts;
    const lines: Record<string, string> = {};
    for (const h of hosts) {
      let line: unknown;
      try {
        line = describe({
          name: p.name,
          phase: p.action as PluginAction,
          config: config(p.name),
          cluster: { name: desired.name },
          host: { ip: h.ip, roles: h.roles },
        });
      } catch (err) {
        throw new PluginError(
          { plugin: p.name, module: loaded.resolved.module, phase: p.action, host: h.ip },
          `describe failed: ${(err as Error)?.message ?? String(err)}`,
        );
      }
      if (typeof line === "string" && line.trim() !== "") lines[h.ip] = line.trim().split("\n")[0]!;
    }
    return { ...p, describe: lines };
  });
}
