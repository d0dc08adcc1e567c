import { isMaster } from "./roles";
import type { PlannedHost } from "./types";

/**
 * Upgrade order: masters one at a time (quorum), then the other hosts in batches of
 * `maxUnavailable`, each batch finished and checked before the next starts.
 */
export function rollingBatches<H extends PlannedHost>(hosts: H[], maxUnavailable: number): H[][] {
  const size = Math.max(1, Math.floor(maxUnavailable));
  const masters = hosts.filter((h) => isMaster(h));
  const others = hosts.filter((h) => !isMaster(h));
  const batches: H[][] = masters.map((m) => [m]);
  for (let i = 0; i < others.length; i += size) batches.push(others.slice(i, i + size));
  return batches;
}
