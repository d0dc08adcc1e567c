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
      : `with no readable owner (left by an older sealant that died while taking it; taken over once ${OWNERLESS_GRACE_S}s old if empty)`;
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

/** An older sealant's lock with no owner.json, or an empty one, is taken over once this old. */
const OWNERLESS_GRACE_S = 10;
/** Exit code of the lock script when another apply holds the lock. */
const HELD = 3;

/**
 * Takes the cluster's lock on its first master, atomic with its owner: the owner is written
 * into a temp directory beside the lock, which is then renamed to `lock/` — a rename that fails
 * when the lock exists — so of two applies racing exactly one succeeds, and no lock is ever
 * without its owner. The loser reads who holds it. Returns the release function.
 *
 * A lock left ownerless by an older sealant (`mkdir` then the owner file; it died between) is
 * removed once it is old enough, under `lock.break` so that two applies cannot both remove it
 * and the slower one the faster one's new lock.
 */
export async function acquireLock(conn: Connection, layout: HostLayout, cluster: string, owner: LockOwner, signal?: AbortSignal): Promise<() => Promise<void>> {
  const lock = shellQuote(layout.lock);
  const root = shellQuote(layout.root);
  const ownerless = `[ -d ${lock} ] && [ ! -s ${lock}/owner.json ]`;
  const script = [
    "set -e",
    `mkdir -p ${root}`,
    `find ${root} -maxdepth 1 -name '.lock-*' -mmin +10 -exec rm -rf {} + 2>/dev/null || true`,
    `if ${ownerless} && mkdir ${shellQuote(`${layout.lock}.break`)} 2>/dev/null; then`,
    `  if ${ownerless} && [ $(( $(date +%s) - $(stat -c %Y ${lock}) )) -gt ${OWNERLESS_GRACE_S} ]; then rm -rf ${lock}; fi`,
    `  rmdir ${shellQuote(`${layout.lock}.break`)}`,
    "fi",
    `t=$(mktemp -d ${shellQuote(`${layout.root}/.lock-`)}XXXXXX)`,
    `cat > "$t/owner.json"`,
    `if [ ! -e ${lock} ] && mv -T "$t" ${lock} 2> /dev/null; then exit 0; fi`,
    `rm -rf "$t"; exit ${HELD}`,
  ].join("\n");
  const opts = { sudo: true, timeoutMs: 30_000, ...(signal ? { signal } : {}) };
  for (let attempt = 1; ; attempt++) {
    const res = await conn.exec(script, { ...opts, stdin: JSON.stringify(owner) });
    if (res.code === 0) break;
    if (res.code !== HELD)
      throw new Error(`${conn.host}: taking the lock of cluster ${cluster} (${layout.lock}) failed (exit ${res.code}): ${res.stderr.trim()}`);
    const holder = await readLockOwner(conn, layout);
    // No owner to read: most likely the holder released it just now; one more try.
    if (holder || attempt >= 2) throw new ClusterLockedError(cluster, conn.host, holder);
  }
  // Only our own lock: after an explicit unlock and another apply's lock, that one stays.
  return async () => {
    await conn.run(`if cmp -s - ${lock}/owner.json; then ${removeLock(layout)}; fi`, { sudo: true, timeoutMs: 30_000, stdin: JSON.stringify(owner) });
  };
}

/** Shell: the lock renamed away first, then deleted, so no one ever sees it half removed (without its owner). */
function removeLock(layout: HostLayout): string {
  const gone = `${shellQuote(`${layout.root}/.lock-released-`)}$$`;
  return `if mv -T ${shellQuote(layout.lock)} ${gone} 2> /dev/null; then rm -rf ${gone}; fi`;
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
  await conn.run(`${removeLock(layout)}; rm -rf ${shellQuote(`${layout.lock}.break`)}`, { sudo: true, timeoutMs: 30_000 });
  return owner;
}
