import { dockerHubViewFor } from "../host/docker-mirrors";
import { startRegistry } from "../host/registry";
import { removeLeftoverRegistry } from "../host/registry-leftovers";
import { REGISTRY, REGISTRY_REMOVAL } from "../plan/kinds";
import { REGISTRY_STEP_KINDS } from "../plan/registry-switch";
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

/**
 * What the registry mode the cluster left put on a host, taken off (plan/registry-switch.ts; the
 * step's version is that mode). Once done, the host's record forgets every registry step, so the
 * new mode's steps are all that remain of registries there.
 */
export const registryRemoval: StepKindDef = {
  kind: REGISTRY_REMOVAL,
  async run(ctx, step, host, signal) {
    const { cluster } = ctx;
    const mode = step.id.split("@")[1];
    if (mode !== "own" && mode !== "external") throw new Error(`step ${step.id}: expected registry-removal@own or @external`);
    const r = cluster.spec.registry;
    const conn = await cluster.pool.get(host, signal);
    await removeLeftoverRegistry(conn, { mode, dataRoot: cluster.layout.root, domain: r.domain, port: r.port, tls: !r.insecure }, signal);
  },
  record(host) {
    host.done = host.done.filter((id) => !REGISTRY_STEP_KINDS.includes(id.split("@")[0]!));
  },
};
