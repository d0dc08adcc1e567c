/**
 * The hosts' own registries (`registry.registries`) when the cluster has no registry mode (the
 * image carries no container images, so neither the cluster's registry nor registry.external
 * points the hosts anywhere): the mirrors step then writes them alone, and when they are dropped
 * takes what the hosts got of them off again. With a registry mode, that mode's mirrors step
 * carries them.
 */
import { MIRRORS } from "./kinds";
import type { DesiredCluster, PlanStep } from "./types";

/** Recorded by the step that takes them off: it runs once per drop. */
const OFF = `${MIRRORS}@off`;

export function userRegistriesPhase(
  desired: DesiredCluster,
  done: (ip: string) => ReadonlySet<string>,
  version: string,
): { title: string; steps: PlanStep[] } | undefined {
  if (desired.registry || desired.externalRegistry) return undefined;
  const step = (ip: string, id: string, description: string): PlanStep => ({ id, kind: MIRRORS, host: ip, description });
  if (desired.userRegistries) {
    return {
      title: "Point the hosts at registry.registries",
      steps: desired.hosts.map((h) => step(h.ip, `${MIRRORS}@${version}`, `point ${h.ip}'s container runtime at registry.registries`)),
    };
  }
  const pointedBefore = desired.hosts.some((h) => [...done(h.ip)].some((id) => id.startsWith(`${MIRRORS}@`) && id !== OFF));
  if (!pointedBefore) return undefined;
  return {
    title: "Take registry.registries off the hosts",
    steps: desired.hosts.map((h) => step(h.ip, OFF, `take registry.registries off ${h.ip}`)),
  };
}
