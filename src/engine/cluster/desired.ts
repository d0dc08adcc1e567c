import { externalRegistryPlan } from "./host/external-registry";
import type { ClusterImage } from "./host/image";
import { hasLaunch } from "./host/launch";
import { plannedPlugins } from "./host/plugins";
import { isMaster, type DesiredCluster } from "./plan";
import { findRuntime } from "./runtime";
import { configDigest, type ClusterSpec, type ResolvedHost } from "./spec";
import { pullThroughUpstreams } from "./spec/upstreams";

/** The hosts that serve the cluster's registry: every master with `ha`, else the first; `registry` role hosts when any. */
export function registryServers(spec: ClusterSpec, hosts: readonly ResolvedHost[]): string[] {
  const byRole = hosts.filter((h) => h.roles.includes("registry"));
  if (byRole.length > 0) return byRole.map((h) => h.ip);
  const masters = hosts.filter(isMaster);
  return (spec.registry.ha ? masters : masters.slice(0, 1)).map((h) => h.ip);
}

/** Whether the image carries container images for the cluster's registry. */
export function imageHasRegistry(image: ClusterImage): boolean {
  return [...image.platforms.values()].some((p) => p.layers.some((l) => l.registryOnly)) || image.metadata.containerImages.length > 0;
}

/** The spec and image, reduced to what the planner decides on. */
export function desiredCluster(spec: ClusterSpec, image: ClusterImage, hosts: readonly ResolvedHost[]): DesiredCluster {
  const upstreams = pullThroughUpstreams(spec.registry.pullThrough, spec.registry.port).length;
  const registry =
    imageHasRegistry(image) && !spec.registry.external
      ? { servers: registryServers(spec, hosts), ...(upstreams > 0 ? { pullThrough: upstreams } : {}) }
      : undefined;
  const ext = spec.registry.external;
  const externalRegistry = ext && imageHasRegistry(image) ? externalRegistryPlan(ext, image, spec.name) : undefined;
  return {
    name: spec.name,
    image: image.ref,
    imageDigest: image.digest,
    hosts: hosts.map((h) => ({ ip: h.ip, roles: h.roles, labels: h.labels, taints: h.taints })),
    upgrade: { maxUnavailable: spec.upgrade.strategy === "all-at-once" ? hosts.length : spec.upgrade.maxUnavailable },
    configDigest: configDigest(spec),
    ...(registry ? { registry } : {}),
    ...(externalRegistry ? { externalRegistry } : {}),
    ...(spec.registry.registries !== undefined ? { userRegistries: true } : {}),
    plugins: plannedPlugins(spec.plugins, hosts),
    launch: hasLaunch(image.metadata, spec.apps),
    bootstrap: findRuntime(image.metadata)?.bootstrap ?? "every-host",
    workersFollowMasters: findRuntime(image.metadata)?.workersFollowMasters ?? false,
    distribution: spec.distribution,
    ...(findRuntime(image.metadata)?.rollSteps ? { rollSteps: findRuntime(image.metadata)!.rollSteps!(image.metadata.runtime?.version) } : {}),
  };
}
