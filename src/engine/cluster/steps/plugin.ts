import { shellQuote } from "../../ssh";
import { runStreamed } from "../host/commands";
import { pluginCommand } from "../host/plugins";
import { PLUGIN_PREFIX, parsePluginKind } from "../plan/kinds";
import { runPluginStep } from "./plugin-module";
import type { StepKindDef } from "./kind";

/** A plugin of the spec at one of its phases (`plugin:<name>:<action>`), on one host. */
export const plugin: StepKindDef = {
  kind: PLUGIN_PREFIX,
  async run(ctx, step, host, signal, journal) {
    const { cluster } = ctx;
    const { spec, layout } = cluster;
    const { name, action } = parsePluginKind(step.kind)!;
    const p = spec.plugins.find((x) => x.name === name);
    if (!p) throw new Error(`plugin ${name} is not in the spec`);
    if (p.type === "MODULE") {
      const loaded = cluster.pluginModules?.get(name);
      if (!loaded) throw new Error(`plugin ${name}: its module ${p.module} was not loaded`);
      return runPluginStep(ctx, step, host, action, p, loaded, journal, { retry: ctx.opts.retryPlugins?.includes(name) ?? false }, signal);
    }
    const conn = await cluster.pool.get(host, signal);
    // Clean-up phases run where the host's image is; the others after distribute, in the new image.
    const rootfs = /clean|uninstall/.test(action) ? layout.current : layout.rootfs(cluster.image.digest);
    const planned = pluginCommand(p, host);
    if (planned === undefined) return;
    const env = { ...host.env, SEALANT_CLUSTER: spec.name, SEALANT_HOST_IP: host.ip, SEALANT_ROLES: host.roles.join(","), SEALANT_PLUGIN_ACTION: action };
    await runStreamed(conn, {
      command: `cd ${shellQuote(rootfs)} 2>/dev/null || cd /; ${planned.command}`,
      ...(planned.stdin !== undefined ? { stdin: planned.stdin } : {}),
      env,
      step: step.id,
      timeoutMs: ctx.commandMs,
      emit: cluster.emit,
      ...(signal ? { signal } : {}),
    });
  },
};
