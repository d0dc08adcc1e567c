import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { hostname } from "node:os";

export interface LockOptions {
  /** How long to wait for another process before giving up. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * A cross-process lock held as a directory (mkdir is atomic). The owner file lets a waiter
 * break a lock whose process died on this machine instead of hanging forever.
 */
export async function withLock<T>(dir: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const lockDir = join(dir, ".lock");
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let delay = 5;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      await mkdir(lockDir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (await holderIsDead(lockDir)) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        const owner = await readFile(join(lockDir, "owner"), "utf8").catch(() => "unknown");
        throw new Error(`timed out waiting for lock ${lockDir} held by ${owner.trim()}`);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 200);
    }
  }
  try {
    await writeFile(join(lockDir, "owner"), `${hostname()} ${process.pid} ${new Date().toISOString()}\n`);
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

async function holderIsDead(lockDir: string): Promise<boolean> {
  let owner: string;
  try {
    owner = await readFile(join(lockDir, "owner"), "utf8");
  } catch {
    return false; // just created, owner not written yet
  }
  const [host, pidText] = owner.trim().split(" ");
  if (host !== hostname()) return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}
