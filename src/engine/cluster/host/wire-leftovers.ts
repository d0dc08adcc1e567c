import { readdirSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The prefix of the temp directory a layer's plain copy lives in while hosts are sent it
 * (host/distribute.ts): `sealant-wire-<pid of the process>-<random>`, so that one a process left
 * when it died (a crash, a kill -9: its own clean-up never ran) can be told from one a running
 * apply is still using.
 */
export function wireDirPrefix(): string {
  return `sealant-wire-${process.pid}-`;
}

const WIRE_DIR = /^sealant-wire-(\d+)-/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user's.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the plain copies (whole temp directories) that processes of this user left in the
 * temp directory when they died; returns the directories removed. Another user's, or a live
 * process's, are left alone. Best effort: a directory that cannot be read or removed stays.
 */
export async function removeDeadWireCopies(dir = tmpdir()): Promise<string[]> {
  const uid = process.getuid?.();
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const pid = Number(WIRE_DIR.exec(name)?.[1] ?? NaN);
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue;
    const path = join(dir, name);
    try {
      const st = statSync(path);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
      await rm(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      // Gone already, or not ours to remove.
    }
  }
  return removed;
}
