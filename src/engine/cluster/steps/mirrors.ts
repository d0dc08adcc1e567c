import { containerRuntimeTypeOf, dockerMirrorsFor, hostRunsDocker } from "../host/docker-mirrors";
import { configureExternalClients } from "../host/external-registry-clients";
import { externalClientSetup, externalEndpoint } from "../host/external-registry";
import { configureRegistryClients } from "../host/registry";
import { configureDockerUserRegistries, configureUserRegistries, hostRegistriesOf } from "../host/user-registries";
import { MIRRORS } from "../plan/kinds";
import type { StepKindDef } from "./kind";

/**
 * The host's container runtime told to pull the image's container images from the cluster's
 * registry, or from the external one (with its CA and login), and the user's own registries
 * (`registry.registries`: mirrors, logins, CAs, plain HTTP, proxy) after them.
 */
export const mirrors: StepKindDef = {
  kind: MIRRORS,
  async run(ctx, _step, host, signal) {
    const conn = await ctx.cluster.pool.get(host, signal);
    const { spec, image, layout } = ctx.cluster;
    const ips = [...ctx.cluster.hosts.keys()];
    const external = spec.registry.external;
    const registries = await hostRegistriesOf(spec.registry.registries, ips, external ? { endpoint: externalEndpoint(external) } : ctx.opts.registry);
    const warn = (texts: string[]): void => texts.forEach((text) => ctx.cluster.emit({ type: "warning", host: host.ip, text }));
    // Hosts whose runtime is Docker: dockerd gets what it can take of the user's registries, and the rest is said.
    if (await hostRunsDocker(conn, layout.rootfs(image.digest), containerRuntimeTypeOf(spec.runtime), signal))
      warn(await configureDockerUserRegistries(conn, layout.root, registries, signal));
    if (external) {
      const r = await configureExternalClients(conn, await externalClientSetup(external, image, layout.root), { registries, ...(signal ? { signal } : {}) });
      warn(r.warnings);
      return;
    }
    if (!ctx.opts.registry) {
      // No registry of the cluster's (an image without container images): the user's registries alone.
      warn(await configureUserRegistries(conn, layout.root, registries, signal ? { signal } : {}));
      return;
    }
    const tls = await ctx.registryTls(signal);
    warn(await configureRegistryClients(conn, host.ip, ctx.opts.registry, tls, { registries, ...(signal ? { signal } : {}) }));
    // Images whose runtime is Docker: dockerd gets what it can take (docker.io only), and the rest is said.
    warn(await dockerMirrorsFor(conn, layout.rootfs(image.digest), ctx.opts.registry, tls, spec.runtime, signal));
  },
};
