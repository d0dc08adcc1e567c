/**
 * A cluster whose registry mode changed: applied with a registry of its own and re-applied with
 * `registry.external` (or the other way round, or with an image that carries no container images
 * any more). What the old mode put on the hosts — the registry process, its files, the /etc/hosts
 * entry, hosts.toml files, the CRI login block — is taken off first, as steps of the plan.
 *
 * Which mode the hosts were set up for is read from their records: a registry server keeps
 * `registry@…` (and `pull-through@…`) done, the first master `push@…` for an external registry.
 * Every other host only has `mirrors@…`, which both modes write, so the hosts carrying that
 * evidence are cleared last, in a phase of their own: should a host fail before them, the
 * evidence is still recorded and the next plan takes the rest off.
 */
import { MIRRORS, PULL_THROUGH, PUSH, REGISTRY, REGISTRY_REMOVAL } from "./kinds";
import type { CurrentCluster, DesiredCluster, PlannedHost, RecordedHost } from "./types";

/** Every step a registry mode records on a host, and the removal itself: what a finished removal clears. */
export const REGISTRY_STEP_KINDS: readonly string[] = [REGISTRY, MIRRORS, PULL_THROUGH, PUSH, REGISTRY_REMOVAL];

export type RegistryMode = "own" | "external";

const hasDone = (h: RecordedHost, kinds: readonly string[]) => h.done.some((id) => kinds.includes(id.split("@")[0]!));

/** The registry mode the recorded hosts were last set up with, if any. */
export function recordedRegistryMode(hosts: readonly RecordedHost[]): RegistryMode | undefined {
  if (hosts.some((h) => hasDone(h, [REGISTRY, PULL_THROUGH]))) return "own";
  if (hosts.some((h) => hasDone(h, [PUSH]))) return "external";
  return undefined;
}

export interface RegistryRemoval {
  /** The mode being taken off the hosts. */
  mode: RegistryMode;
  /** Hosts with only client configuration (first), then the hosts whose records say which mode it was (last). */
  batches: PlannedHost[][];
  title: string;
  /** A line for the plan's summary. */
  summary: string;
  describe(host: PlannedHost): string;
}

/** What the hosts' old registry mode left to take off, or undefined when the mode is unchanged. */
export function registryRemoval(desired: DesiredCluster, current: CurrentCluster | undefined): RegistryRemoval | undefined {
  const recorded = current?.hosts ?? [];
  const mode = recordedRegistryMode(recorded);
  if (mode === undefined) return undefined;
  if (mode === "own" && desired.registry) return undefined;
  if (mode === "external" && desired.externalRegistry) return undefined;
  const byIp = new Map(recorded.map((h) => [h.ip, h]));
  // Hosts leaving the cluster are cleaned up whole; only those staying are touched here.
  const touched = desired.hosts.filter((h) => {
    const r = byIp.get(h.ip);
    return r !== undefined && hasDone(r, REGISTRY_STEP_KINDS);
  });
  if (touched.length === 0) return undefined;
  const evidence = (h: PlannedHost) => hasDone(byIp.get(h.ip)!, [REGISTRY, PULL_THROUGH, PUSH]);
  const batches = [touched.filter((h) => !evidence(h)), touched.filter(evidence)].filter((b) => b.length > 0);
  const now = desired.externalRegistry
    ? `now registry.external ${desired.externalRegistry.endpoint}`
    : desired.registry
      ? "now the cluster's own"
      : "the image carries no container images";
  const servers = new Set(recorded.filter((h) => hasDone(h, [REGISTRY, PULL_THROUGH])).map((h) => h.ip));
  return mode === "own"
    ? {
        mode,
        batches,
        title: "Stop the cluster's own registry",
        summary: `stop the cluster's own registry and take it off ${touched.length} host${touched.length === 1 ? "" : "s"} (${now})`,
        describe: (h) =>
          servers.has(h.ip)
            ? `stop the cluster's registry on ${h.ip} and remove its files, hosts entry, hosts.toml and login`
            : `take the cluster registry's hosts entry, hosts.toml and login off ${h.ip}`,
      }
    : {
        mode,
        batches,
        title: "Take the external registry off the hosts",
        summary: `take the external registry off ${touched.length} host${touched.length === 1 ? "" : "s"} (${now})`,
        describe: (h) => `remove the external registry's hosts.toml, CA and login from ${h.ip}`,
      };
}
