import { configurePullThroughClients, startPullThroughCaches } from "../host/pull-through";
import { hostRegistriesOf } from "../host/user-registries";
import { PULL_THROUGH } from "../plan/kinds";
import { pullThroughUpstreams } from "../spec/upstreams";
import type { StepKindDef } from "./kind";

/** The pull-through caches on a registry server (host/pull-through.ts), and every host's containerd pointed at them. */
export const pullThrough: StepKindDef = {
  kind: PULL_THROUGH,
  async run(ctx, _step, host, signal) {
    const { cluster } = ctx;
    const registry = ctx.opts.registry!;
    const conn = await cluster.pool.get(host, signal);
    const tls = await ctx.registryTls(signal);
    const upstreams = pullThroughUpstreams(cluster.spec.registry.pullThrough, registry.port);
    if (registry.servers.includes(host.ip)) {
      for (const text of await startPullThroughCaches(conn, host.ip, registry, tls, upstreams, signal)) cluster.emit({ type: "warning", host: host.ip, text });
    }
    // The user's own registries (registry.registries) follow the caches in the files this step writes.
    const registries = await hostRegistriesOf(cluster.spec.registry.registries, [...cluster.hosts.keys()], registry);
    const warnings = await configurePullThroughClients(conn, host.ip, registry, tls, upstreams, { registries, ...(signal ? { signal } : {}) });
    for (const text of warnings) cluster.emit({ type: "warning", host: host.ip, text });
  },
};
