/**
 * What a registry mode the cluster no longer uses left on one host (see plan/registry-switch.ts):
 *
 * - its own registry: the registry process and its files (servers), the docker.io view and
 *   dockerd's mirror entries (Docker-runtime images), the pull-through caches, the /etc/hosts
 *   block, the hosts.toml files and the CRI login block;
 * - an external registry: the hosts.toml files, its CA and the CRI login block.
 *
 * Each part is a no-op where there is nothing of it, so a removal run again converges.
 */
import type { Connection } from "../../ssh";
import { removeDockerFor } from "./docker-mirrors";
import { removeExternalRegistryClients } from "./external-registry-clients";
import { removePullThrough } from "./pull-through";
import { removeRegistry, type RegistrySetup } from "./registry";

export interface LeftoverRegistry {
  mode: "own" | "external";
  /** The cluster's data root on hosts: what marks this cluster's files. */
  dataRoot: string;
  /** The own registry's name and port as the Clusterfile has them (dockerd's mirror entry is named after them). */
  domain: string;
  port: number;
  tls: boolean;
}

export async function removeLeftoverRegistry(conn: Connection, left: LeftoverRegistry, signal?: AbortSignal): Promise<void> {
  const sig = signal ? { signal } : {};
  if (left.mode === "external") {
    await removeExternalRegistryClients(conn, left.dataRoot, sig);
    return;
  }
  const setup: RegistrySetup = { domain: left.domain, port: left.port, tls: left.tls, dataRoot: left.dataRoot, servers: [], domains: [] };
  await removeDockerFor(conn, setup, signal);
  await removePullThrough(conn, left.dataRoot, sig);
  await removeRegistry(conn, setup, sig);
}
