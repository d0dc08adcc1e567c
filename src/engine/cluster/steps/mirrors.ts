import { configureRegistryClients } from "../host/registry";
import { MIRRORS } from "../plan/kinds";
import type { StepKindDef } from "./kind";

/** The host's container runtime told to pull the image's container images from the cluster's registry. */
export const mirrors: StepKindDef = {
  kind: MIRRORS,
  async run(ctx, _step, host, signal) {
    const conn = await ctx.cluster.pool.get(host, signal);
    const tls = await ctx.registryTls(signal);
    await configureRegistryClients(conn, host.ip, ctx.opts.registry!, tls, signal ? { signal } : {});
  },
};
