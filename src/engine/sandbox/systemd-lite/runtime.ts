import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CGROUP_ROOTS, LOG_DIR, RUN_DIR, logFile, stateDir } from "./paths";
import { readdirSafe, readNumber, readText } from "./safe-read";

// Runtime state of started units: what the supervisor and earlier commands left in the unit's
// state directory, checked against the processes that really run.

const sleepBuf = new Int32Array(new SharedArrayBuffer(4));
export const sleep = (ms: number) => Atomics.wait(sleepBuf, 0, 0, ms);

function procState(pid: number): string | undefined {
  const s = readText(`/proc/${pid}/stat`);
  return s === undefined ? undefined : s.slice(s.lastIndexOf(")") + 2, s.lastIndexOf(")") + 3);
}

export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  const st = procState(pid);
  return st !== undefined && st !== "Z" && st !== "X";
}

export interface Runtime {
  active: string;
  sub: string;
  supervisor?: number;
  main?: number;
  exit?: number;
  result: string;
  restarts: number;
  since?: Date;
}

export function runtime(unit: string): Runtime {
  const d = stateDir(unit);
  const [active = "inactive", sub = "dead"] = (readText(join(d, "state")) ?? "inactive dead").trim().split(/\s+/);
  const supervisor = readNumber(join(d, "supervisor.pid"));
  const main = readNumber(join(d, "main.pid"));
  const rt: Runtime = {
    active,
    sub,
    result: readText(join(d, "result"))?.trim() || "success",
    restarts: Math.max(0, (readNumber(join(d, "attempt")) ?? 1) - 1),
  };
  const since = existsSync(join(d, "state")) ? statSync(join(d, "state")).mtime : undefined;
  if (since) rt.since = since;
  const exit = readNumber(join(d, "exit"));
  if (exit !== undefined) rt.exit = exit;
  if (alive(supervisor)) rt.supervisor = supervisor!;
  if (alive(main)) rt.main = main!;
  // The supervisor died without saying so (killed from outside): the unit is no longer managed.
  if (!rt.supervisor && (active === "activating" || active === "deactivating" || (active === "active" && sub === "running"))) {
    if (rt.main) {
      rt.active = "active";
      rt.sub = "running";
    } else {
      rt.active = "failed";
      rt.sub = "failed";
    }
  }
  return rt;
}

export function unitCgroup(unit: string): string | undefined {
  for (const root of CGROUP_ROOTS) if (existsSync(join(root, "cgroup.procs"))) return join(root, "system.slice", unit);
  return undefined;
}

export function cgroupPids(dir: string | undefined): number[] {
  if (!dir || !existsSync(dir)) return [];
  const out: number[] = [];
  const walk = (d: string) => {
    for (const p of (readText(join(d, "cgroup.procs")) ?? "").split("\n")) if (/^\d+$/.test(p)) out.push(Number(p));
    for (const e of readdirSafe(d)) {
      const sub = join(d, e);
      try {
        if (statSync(sub).isDirectory()) walk(sub);
      } catch {
        // gone meanwhile
      }
    }
  };
  walk(dir);
  return out.filter((p) => alive(p));
}

export function signal(pid: number, sig: string): void {
  try {
    process.kill(pid, sig as NodeJS.Signals);
  } catch {
    // already gone
  }
}

export function note(unit: string, message: string): void {
  try {
    mkdirSync(LOG_DIR, { recursive: true });
    writeFileSync(logFile(unit), `${new Date().toISOString()} ${unit}: ${message}\n`, { flag: "a" });
  } catch {
    // logging must never fail a command
  }
}

/** A lock per unit (mkdir is atomic), broken when its holder is gone. */
export function withUnitLock<T>(unit: string, fn: () => T): T {
  mkdirSync(RUN_DIR, { recursive: true });
  const lock = join(RUN_DIR, `.${unit}.lock`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, "pid"), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = readNumber(join(lock, "pid"));
      if ((holder !== undefined && !alive(holder)) || Date.now() > deadline) rmSync(lock, { recursive: true, force: true });
      else sleep(20);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export function isUp(rt: Runtime): boolean {
  return (rt.active === "active" || rt.active === "activating" || rt.active === "reloading") && !(rt.sub === "auto-restart" && !rt.supervisor);
}
