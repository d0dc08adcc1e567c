import { dockerHubViewFor } from "../host/docker-mirrors";
import { startRegistry } from "../host/registry";
import { REGISTRY } from "../plan/kinds";
import type { StepKindDef } from "./kind";

/** The cluster's registry served from the image's registry/ on one of its servers (see host/registry.ts). */
export const registry: StepKindDef = {
  kind: REGISTRY,
  async run(ctx, _step, host, signal) {
    const { cluster } = ctx;
    const conn = await cluster.pool.get(host, signal);
    const tls = await ctx.registryTls(signal);
    await startRegistry(conn, host.ip, cluster.layout.rootfs(cluster.image.digest), ctx.opts.registry!, tls, signal);
    await dockerHubViewFor(conn, host.ip, cluster.layout.rootfs(cluster.image.digest), ctx.opts.registry!, cluster.spec.runtime, signal);
  },
};
