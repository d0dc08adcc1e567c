import { hostname, userInfo } from "node:os";
import type { Connection } from "../../ssh";
import { shellQuote } from "../../ssh";
import type { HostLayout } from "../host/layout";

/** Who holds a cluster's lock: enough for a person to decide whether it is stale. */
export interface LockOwner {
  user: string;
  machine: string;
  pid: number;
  command: string;
  since: string;
}

export class ClusterLockedError extends Error {
  constructor(
    readonly cluster: string,
    readonly host: string,
    readonly owner: LockOwner | undefined,
  ) {
    const who = owner
      ? `by ${owner.user}@${owner.machine} (pid ${owner.pid}, ${owner.command}) since ${owner.since} (${formatAge(Date.now() - Date.parse(owner.since))} ago)`
      : "by an apply that is just starting (no owner written yet)";
    super(
      `cluster ${cluster} is locked on ${host} ${who}: another apply is running. ` +
        `If it is gone (its machine crashed), break the lock explicitly: sealant unlock -f <Clusterfile>`,
    );
    this.name = "ClusterLockedError";
  }
}

function formatAge(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "unknown";
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

export function lockOwner(command: string): LockOwner {
  return { user: userInfo().username, machine: hostname(), pid: process.pid, command, since: new Date().toISOString() };
}

/**
 * Takes the cluster's lock on its first master: `mkdir` is atomic, so of two applies racing
 * exactly one succeeds; the loser reads who holds it. Returns the release function.
 */
export async function acquireLock(conn: Connection, layout: HostLayout, cluster: string, owner: LockOwner, signal?: AbortSignal): Promise<() => Promise<void>> {
  const lock = shellQuote(layout.lock);
  const opts = { sudo: true, timeoutMs: 30_000, ...(signal ? { signal } : {}) };
  const res = await conn.exec(`mkdir -p ${shellQuote(layout.root)} && mkdir ${lock} 2>/dev/null && cat > ${lock}/owner.json`, {
    ...opts,
    stdin: JSON.stringify(owner),
  });
  if (res.code !== 0) throw new ClusterLockedError(cluster, conn.host, await readLockOwner(conn, layout));
  return async () => {
    await conn.run(`rm -rf ${lock}`, { sudo: true, timeoutMs: 30_000 });
  };
}

export async function readLockOwner(conn: Connection, layout: HostLayout): Promise<LockOwner | undefined> {
  const res = await conn.exec(`cat ${shellQuote(`${layout.lock}/owner.json`)} 2>/dev/null`, { sudo: true, timeoutMs: 30_000 });
  try {
    return res.code === 0 ? (JSON.parse(res.stdout) as LockOwner) : undefined;
  } catch {
    return undefined;
  }
}

/** Breaks a lock whatever holds it (the user decided it is stale); returns who held it. */
export async function breakLock(conn: Connection, layout: HostLayout): Promise<LockOwner | undefined> {
  const owner = await readLockOwner(conn, layout);
  await conn.run(`rm -rf ${shellQuote(layout.lock)}`, { sudo: true, timeoutMs: 30_000 });
  return owner;
}
