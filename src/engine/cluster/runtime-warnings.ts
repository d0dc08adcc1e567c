/**
 * What the plan says about the hosts' container runtime before any host is touched (`sealant
 * plan`, `apply --dry-run`, `pulumi preview`): for an image whose runtime is Docker, which
 * registries dockerd cannot be pointed at — the same words the mirrors step says per host when
 * it configures dockerd (host/docker-mirrors.ts). Whether the image runs Docker is decided as the
 * apply decides it: the Clusterfile's `containerRuntime.type`, else the image's `scripts/`.
 */
import type { ImageStore } from "../image/store";
import { containerRuntimeTypeOf, dockerMirrorPlan, runsDocker } from "./host/docker-mirrors";
import type { ClusterImage } from "./host/image";
import { imageScriptNames } from "./host/image-scripts";
import { registryDomains } from "./host/registry";
import type { DesiredCluster } from "./plan";
import type { ClusterSpec } from "./spec";

/** Whether the image's hosts run Docker rather than containerd. */
export async function imageRunsDocker(store: ImageStore, spec: Pick<ClusterSpec, "runtime">, image: ClusterImage): Promise<boolean> {
  const type = containerRuntimeTypeOf(spec.runtime);
  if (type !== undefined && type !== "") return runsDocker([], type);
  for (const pf of image.platforms.values()) if (runsDocker(await imageScriptNames(store, pf))) return true;
  return false;
}

/** The warnings for the plan of `desired` (none when the image carries no container images or runs containerd). */
export async function runtimeWarnings(store: ImageStore, spec: ClusterSpec, image: ClusterImage, desired: DesiredCluster): Promise<string[]> {
  if (!desired.registry && !desired.externalRegistry) return [];
  // A layer that cannot be read here fails the apply where it is needed, not the plan: no warning then (the mirrors step still warns).
  if (!(await imageRunsDocker(store, spec, image).catch(() => false))) return [];
  const domains = registryDomains(image.metadata.containerImages.map((c) => c.image));
  if (desired.externalRegistry) {
    // The mirrors step points containerd at the external registry; dockerd's registry-mirrors could not take it (no path, no login).
    return [
      `the image's hosts run Docker, and dockerd cannot be pointed at registry.external ${desired.externalRegistry.endpoint} (registry-mirrors takes docker.io only, no path and no login): Docker hosts pull the image's images from ${domains.join(", ")} themselves; use a containerd image to pull them from ${desired.externalRegistry.endpoint}`,
    ];
  }
  const r = spec.registry;
  return dockerMirrorPlan({ domain: r.domain, port: r.port, domains, tls: !r.insecure, username: r.username }).warnings;
}
