import { readFile } from "node:fs/promises";

/**
 * A process named by pid *and* start time (field 22 of /proc/PID/stat, in clock ticks since
 * boot), so a recorded pid that the kernel has since given to another process is never
 * mistaken for ours — and never killed.
 */
export interface ProcessId {
  pid: number;
  start: number;
}

interface ProcStat {
  state: string;
  start: number;
}

async function procStat(pid: number): Promise<ProcStat | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // "PID (COMM) STATE PPID ..." — COMM may hold spaces and parentheses: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", start: Number(fields[19]) };
}

/** The identity of a running process, or undefined if it is gone. */
export async function identify(pid: number): Promise<ProcessId | undefined> {
  const st = await procStat(pid);
  return st && st.state !== "Z" && st.state !== "X" ? { pid, start: st.start } : undefined;
}

/**
 * Whether this exact process still runs. A zombie counts as gone: it holds no memory, files or
 * mounts, only a pid entry until its parent reaps it (an init that does not reap orphans leaves
 * such entries behind).
 */
export async function isAlive(id: ProcessId | undefined): Promise<boolean> {
  if (!id || id.pid <= 0) return false;
  const st = await procStat(id.pid);
  return st !== undefined && st.start === id.start && st.state !== "Z" && st.state !== "X";
}

/** SIGKILL to this exact process, if it still runs. */
export async function killExact(id: ProcessId | undefined): Promise<void> {
  if (!(await isAlive(id))) return;
  try {
    process.kill(id!.pid, "SIGKILL");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/** Waits until none of `ids` runs; throws naming the survivors after `timeoutMs`. */
export async function waitGone(ids: (ProcessId | undefined)[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive: ProcessId[] = [];
    for (const id of ids) if (id && (await isAlive(id))) alive.push(id);
    if (alive.length === 0) return;
    if (Date.now() > deadline) throw new Error(`process(es) ${alive.map((a) => a.pid).join(", ")} still running ${timeoutMs} ms after SIGKILL`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The first child of `pid` (from /proc/PID/task/PID/children), or undefined. */
export async function firstChild(pid: number): Promise<number | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8");
    const first = text.trim().split(/\s+/)[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}
