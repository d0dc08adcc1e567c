import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { lstat, readFile, readlink, rm, symlink, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";

export interface LockOptions {
  /** How long to wait for another process before giving up. @default 60000 */
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * A lock whose owner cannot be read (left by an older sealant that crashed between creating
   * the lock and writing its owner, or damaged) is stale once it is this old. @default 2000
   */
  unreadableGraceMs?: number;
}

/** The process holding a lock, as written into the lock itself. */
export interface LockOwner {
  host: string;
  pid: number;
  /** Boot id and start time of the process, so a reused pid is not mistaken for the owner. */
  start: string;
  since: string;
}

export class LockTimeoutError extends Error {
  constructor(
    readonly path: string,
    readonly owner: LockOwner | undefined,
    waitedMs: number,
  ) {
    super(`timed out after ${Math.round(waitedMs / 1000)}s waiting for the lock ${path}: ${describeHolder(path, owner)}`);
    this.name = "LockTimeoutError";
  }
}

/**
 * Runs `fn` holding a cross-process lock on `dir` (the symlink `dir/.lock`).
 *
 * The lock is a symlink whose target is its owner (host, pid, process start, since): symlink(2)
 * creates it and its owner in one atomic step and fails if it exists, so there is never a lock
 * without an owner, on a local disk or over NFS. A lock whose owner process is gone from this
 * host (or whose pid now belongs to another process) is broken at once; one whose owner cannot
 * be read (an older sealant's `mkdir` lock) after a short grace period; one held from another
 * host is never broken automatically, and the timeout error says how to clear it.
 */
export async function withLock<T>(dir: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const release = await acquireLock(join(dir, ".lock"), opts);
  try {
    return await fn();
  } finally {
    await release();
  }
}

/** Takes the lock at `path`, waiting up to the timeout; returns the function that releases it. */
export async function acquireLock(path: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  const started = Date.now();
  const deadline = started + (opts.timeoutMs ?? 60_000);
  const grace = opts.unreadableGraceMs ?? 2000;
  const mine = ownerText(myOwner());
  let delay = 5;
  for (;;) {
    opts.signal?.throwIfAborted();
    const holder = await tryAcquire(path, mine, grace, 0);
    if (holder === "acquired") return () => releaseIfMine(path, mine);
    if (Date.now() > deadline) throw new LockTimeoutError(path, holder === "unreadable" ? undefined : holder, Date.now() - started);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }
}

type Holder = LockOwner | "unreadable";

/** One attempt: takes the lock, or breaks it if stale and tries again, or says who holds it. */
async function tryAcquire(path: string, mine: string, grace: number, depth: number): Promise<"acquired" | Holder> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await symlink(mine, path);
      return "acquired";
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Node's message would quote the owner text as the link's target: say what failed instead.
      if (code !== "EEXIST") throw new Error(`cannot take the lock ${path}: ${code ?? (err as Error).message}`, { cause: err });
    }
    const holder = await readHolder(path);
    if (holder === "gone") continue; // released between our attempt and the read
    if (!isStale(holder, grace)) return holder.owner ?? "unreadable";
    await breakStale(path, grace, depth);
  }
  const holder = await readHolder(path);
  return holder === "gone" ? "unreadable" : (holder.owner ?? "unreadable");
}

/**
 * Removes a stale lock, serialised by a second lock (`<path>.break`, never waited for): two
 * waiters that both judged the same lock stale must not have the slower one remove the lock
 * the faster one has just taken. Under it the lock is judged again before it goes.
 */
async function breakStale(path: string, grace: number, depth: number): Promise<void> {
  if (depth >= 3) return; // breakers dying while breaking, three deep: leave it to the timeout
  const breaker = `${path}.break`;
  const mine = ownerText(myOwner());
  if ((await tryAcquire(breaker, mine, grace, depth + 1)) !== "acquired") return;
  try {
    const holder = await readHolder(path);
    if (holder !== "gone" && isStale(holder, grace)) await rm(path, { recursive: true, force: true });
  } finally {
    await releaseIfMine(breaker, mine);
  }
}

interface Observed {
  owner: LockOwner | undefined;
  ageMs: number;
}

async function readHolder(path: string): Promise<Observed | "gone"> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "gone";
    throw err;
  }
  const ageMs = Date.now() - st.mtimeMs;
  try {
    // An older sealant's lock is a directory holding an `owner` file ("host pid iso").
    const text = st.isSymbolicLink() ? await readlink(path) : st.isDirectory() ? await readFile(join(path, "owner"), "utf8") : "";
    return { owner: parseOwner(text), ageMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { owner: undefined, ageMs };
    throw err;
  }
}

function isStale(holder: Observed, grace: number): boolean {
  if (!holder.owner) return holder.ageMs > grace;
  return ownerIsGone(holder.owner);
}

async function releaseIfMine(path: string, mine: string): Promise<void> {
  try {
    // Only our own lock: if it was (wrongly) broken and retaken, the new holder keeps it.
    if ((await readlink(path)) === mine) await unlink(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "EINVAL") throw err;
  }
}

// ---- owners ----

function myOwner(): LockOwner {
  return { host: hostname(), pid: process.pid, start: processStart(process.pid) ?? "-", since: new Date().toISOString() };
}

function ownerText(o: LockOwner): string {
  // Unique per acquisition (the token), so a release can tell its own lock from a successor's.
  return `sealant-lock host=${o.host} pid=${o.pid} start=${o.start} since=${o.since} token=${randomBytes(6).toString("hex")}`;
}

function parseOwner(text: string): LockOwner | undefined {
  const trimmed = text.trim();
  if (trimmed.startsWith("sealant-lock ")) {
    const fields = new Map(
      trimmed
        .split(" ")
        .slice(1)
        .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)] as const),
    );
    const pid = Number(fields.get("pid"));
    const host = fields.get("host");
    if (!host || !Number.isInteger(pid) || pid <= 0) return undefined;
    return { host, pid, start: fields.get("start") ?? "-", since: fields.get("since") ?? "?" };
  }
  const [host, pidText, since] = trimmed.split(" ");
  const pid = Number(pidText);
  if (!host || !Number.isInteger(pid) || pid <= 0) return undefined;
  return { host, pid, start: "-", since: since ?? "?" };
}

/** True when the owner is known to be gone: its process on this host died, or its pid was reused. */
export function ownerIsGone(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return false; // another machine sharing the directory: cannot tell
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
  const now = processStart(owner.pid);
  return owner.start !== "-" && now !== undefined && now !== owner.start;
}

let bootId: string | undefined;

/** Boot id and start tick of a process (Linux /proc); undefined where /proc has no answer. */
export function processStart(pid: number): string | undefined {
  try {
    bootId ??= readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim().slice(0, 8);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22 (starttime); counted after the command name, which may itself hold spaces.
    const ticks = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    return ticks ? `${bootId}/${ticks}` : undefined;
  } catch {
    return undefined;
  }
}

function describeHolder(path: string, owner: LockOwner | undefined): string {
  if (!owner) return `its owner cannot be read and it could not be removed; remove ${path} by hand`;
  const since = `since ${owner.since}`;
  if (owner.host !== hostname()) {
    return (
      `held by pid ${owner.pid} on host ${owner.host} (another machine sharing this directory) ${since}; ` + `if no sealant runs there any more, remove ${path}`
    );
  }
  return `held by pid ${owner.pid} on this host ${since}, which is still running; wait for it or stop it (if it is not sealant, remove ${path})`;
}
