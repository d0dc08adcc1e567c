import { dockerMirrorsFor } from "../host/docker-mirrors";
import { configureExternalClients } from "../host/external-registry-clients";
import { externalClientSetup } from "../host/external-registry";
import { configureRegistryClients } from "../host/registry";
import { MIRRORS } from "../plan/kinds";
import type { StepKindDef } from "./kind";

/** The host's container runtime told to pull the image's container images from the cluster's registry, or from the external one (with its CA and login). */
export const mirrors: StepKindDef = {
  kind: MIRRORS,
  async run(ctx, _step, host, signal) {
    const conn = await ctx.cluster.pool.get(host, signal);
    const { spec, image, layout } = ctx.cluster;
    if (spec.registry.external) {
      await configureExternalClients(conn, await externalClientSetup(spec.registry.external, image, layout.root), signal ? { signal } : {});
      return;
    }
    const tls = await ctx.registryTls(signal);
    await configureRegistryClients(conn, host.ip, ctx.opts.registry!, tls, signal ? { signal } : {});
    // Images whose runtime is Docker: dockerd gets what it can take (docker.io only), and the rest is said.
    const warnings = await dockerMirrorsFor(
      conn,
      ctx.cluster.layout.rootfs(ctx.cluster.image.digest),
      ctx.opts.registry!,
      tls,
      ctx.cluster.spec.runtime,
      signal,
    );
    for (const text of warnings) ctx.cluster.emit({ type: "warning", host: host.ip, text });
  },
};
