import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serviceEnvironment } from "./environment";
import { Fail } from "./errors";
import type { Options } from "./options";
import { BASE_PATH, LOG_DIR, SUPERVISE, logFile, stateDir } from "./paths";
import { cgroupPids, note, runtime, signal, sleep, unitCgroup } from "./runtime";
import type { Service } from "./unit-file";
import { parseExecLine, shQuote } from "./unit-syntax";

// Starting a unit (a detached supervisor, see files.ts's supervise), running its control
// commands, and stopping it per KillMode=/KillSignal=/TimeoutStopSec=.

export function startUnit(svc: Service, opts: Pick<Options, "noBlock">): void {
  if (svc.type === "forking" || svc.type === "dbus")
    throw new Fail(`Failed to start ${svc.name}: Type=${svc.type} is not emulated by this sandbox host's systemctl`, 1);
  const rt = runtime(svc.name);
  if (rt.supervisor || rt.main || (rt.active === "active" && rt.sub === "exited")) return;
  const d = stateDir(svc.name);
  mkdirSync(d, { recursive: true });
  for (const f of ["stopping", "main.pid", "exit", "reached", "attempt", "result", "supervisor.pid"]) rmSync(join(d, f), { force: true });
  const cgroup = unitCgroup(svc.name);
  if (cgroup) {
    try {
      mkdirSync(cgroup, { recursive: true });
    } catch {
      // no cgroup tracking: KillMode falls back to the main process
    }
  }
  mkdirSync(LOG_DIR, { recursive: true });
  writeFileSync(
    join(d, "policy"),
    [
      `TYPE=${shQuote(svc.type)}`,
      `RESTART=${shQuote(svc.restart)}`,
      `RESTART_SEC=${shQuote(String(Number.isFinite(svc.restartSec) ? svc.restartSec : 0.1))}`,
      `REMAIN=${svc.remainAfterExit ? "yes" : "no"}`,
      `LOG=${shQuote(logFile(svc.name))}`,
      `DESC=${shQuote(svc.description)}`,
      "",
    ].join("\n"),
  );
  writeFileSync(join(d, "state"), "activating start\n");
  const log = openSync(logFile(svc.name), "a");
  try {
    const child = spawn("/bin/sh", [SUPERVISE, svc.name], { detached: true, stdio: ["ignore", log, log], env: { PATH: BASE_PATH } });
    // Known at once (the supervisor writes the same pid): until then the unit must not look orphaned.
    if (child.pid) writeFileSync(join(d, "supervisor.pid"), `${child.pid}\n`);
    child.unref();
  } finally {
    closeSync(log);
  }
  if (opts.noBlock) return;
  const deadline = Date.now() + (svc.type === "oneshot" ? 24 * 3600_000 : 90_000);
  for (;;) {
    sleep(10);
    const now = runtime(svc.name);
    const reached = existsSync(join(d, "reached"));
    if (svc.type !== "oneshot" && reached) return;
    if (
      now.sub === "auto-restart" ||
      now.active === "failed" ||
      (now.active === "inactive" && !now.supervisor) ||
      (now.active === "active" && now.sub === "exited")
    ) {
      if (svc.type === "oneshot" && now.result === "success" && now.active !== "failed" && now.sub !== "auto-restart") return;
      throw new Fail(
        `Job for ${svc.name} failed because the control process exited with error code.\nSee "systemctl status ${svc.name}" and "journalctl -xeu ${svc.name}" for details.`,
        1,
      );
    }
    if (Date.now() > deadline) throw new Fail(`Job for ${svc.name} failed because a timeout was exceeded.`, 1);
  }
}

export function runCommands(svc: Service, lines: string[], what: string): number {
  const { env } = serviceEnvironment(svc);
  let rc = 0;
  for (const raw of lines) {
    const line = parseExecLine(raw, env);
    if (!line.argv.length) continue;
    const log = openSync(logFile(svc.name), "a");
    try {
      const r = spawnSync(line.argv[0]!, line.argv.slice(1), {
        env: Object.fromEntries(env),
        stdio: ["ignore", log, log],
        cwd: "/",
        timeout: Number.isFinite(svc.timeoutStopSec) ? svc.timeoutStopSec * 1000 : undefined,
      });
      const code = r.status ?? 1;
      if (code !== 0 && !line.ignoreFailure) {
        note(svc.name, `${what} ${line.argv[0]} failed with status ${code}`);
        rc = code;
        break;
      }
    } finally {
      closeSync(log);
    }
  }
  return rc;
}

export function stopUnit(svc: Service): void {
  const d = stateDir(svc.name);
  let rt = runtime(svc.name);
  const cgroup = unitCgroup(svc.name);
  if (!rt.supervisor && !rt.main && cgroupPids(cgroup).length === 0) {
    if (existsSync(d) && rt.active !== "failed") writeFileSync(join(d, "state"), "inactive dead\n");
    return;
  }
  note(svc.name, `Stopping ${svc.description}...`);
  writeFileSync(join(d, "stopping"), "");
  writeFileSync(join(d, "state"), "deactivating stop\n");
  if (svc.execStop.length && rt.main) runCommands(svc, svc.execStop, "ExecStop");
  const timeout = Number.isFinite(svc.timeoutStopSec) ? svc.timeoutStopSec * 1000 : 24 * 3600_000;
  const deadline = Date.now() + timeout;
  const sig = svc.killSignal;
  let signalled = false;
  let killed = false;
  for (;;) {
    rt = runtime(svc.name);
    const members = svc.killMode === "control-group" || svc.killMode === "mixed" ? cgroupPids(cgroup) : [];
    if (!killed && Date.now() > deadline) {
      note(svc.name, `State 'stop-sigterm' timed out. Killing.`);
      for (const p of [rt.main, ...members]) if (p) signal(p, "SIGKILL");
      killed = true;
    } else if (!signalled && svc.killMode !== "none") {
      if (rt.main) signal(rt.main, sig);
      if (svc.killMode === "control-group") for (const p of members) if (p !== rt.main) signal(p, sig);
      signalled = true;
    }
    if (!rt.main && members.length && svc.killMode === "mixed") for (const p of members) signal(p, "SIGKILL");
    if (!rt.main && rt.supervisor) signal(rt.supervisor, "SIGTERM"); // wakes it from a restart delay
    const remaining = svc.killMode === "control-group" || svc.killMode === "mixed" ? cgroupPids(cgroup) : [];
    if (!rt.main && !rt.supervisor && remaining.length === 0) break;
    if (killed && Date.now() > deadline + 5000) {
      if (rt.supervisor) signal(rt.supervisor, "SIGKILL");
      break;
    }
    sleep(20);
  }
  writeFileSync(join(d, "state"), "inactive dead\n");
  for (const f of ["stopping", "main.pid", "supervisor.pid"]) rmSync(join(d, f), { force: true });
}
