import { existsSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { disableUnit, enabledState, enableUnit } from "./enablement";
import { Fail } from "./errors";
import { catUnit, listUnitFiles, listUnits, show, status } from "./inspect";
import { boot, prepare } from "./internal-verbs";
import type { Options } from "./options";
import { ETC_UNITS, RUN_DIR, stateDir } from "./paths";
import { cgroupPids, isUp, runtime, signal, unitCgroup, withUnitLock } from "./runtime";
import { isLink, readdirSafe } from "./safe-read";
import { runCommands, startUnit, stopUnit } from "./start-stop";
import { loadService, mustLoad, unitName } from "./unit-file";

function needUnits(units: string[]): void {
  if (!units.length) throw new Fail(`Too few arguments.`, 1);
}

export function run(verb: string, units: string[], opts: Options): number {
  switch (verb) {
    case "daemon-reload":
    case "daemon-reexec":
      return 0;
    case "__boot":
      return boot();
    case "__prepare":
      return prepare(units[0] ?? "");
    case "start":
      needUnits(units);
      for (const u of units) {
        const svc = mustLoad(u, "start");
        withUnitLock(svc.name, () => startUnit(svc, opts));
      }
      return 0;
    case "stop":
      needUnits(units);
      for (const u of units) {
        const svc = mustLoad(u, "stop");
        withUnitLock(svc.name, () => stopUnit(svc));
      }
      return 0;
    case "restart":
    case "try-restart":
    case "condrestart":
    case "force-reload":
    case "reload-or-restart":
    case "try-reload-or-restart":
      needUnits(units);
      for (const u of units) {
        const svc = mustLoad(u, "restart");
        withUnitLock(svc.name, () => {
          const up = isUp(runtime(svc.name));
          if ((verb === "try-restart" || verb === "condrestart" || verb === "try-reload-or-restart") && !up) return;
          if ((verb === "reload-or-restart" || verb === "try-reload-or-restart") && up && svc.execReload.length) {
            if (runCommands(svc, svc.execReload, "ExecReload")) throw new Fail(`Job for ${svc.name} failed.`, 1);
            return;
          }
          stopUnit(svc);
          startUnit(svc, opts);
        });
      }
      return 0;
    case "reload":
      needUnits(units);
      for (const u of units) {
        const svc = mustLoad(u, "reload");
        if (!svc.execReload.length) throw new Fail(`Failed to reload ${svc.name}: Job type reload is not applicable for unit ${svc.name}.`, 1);
        if (!isUp(runtime(svc.name))) throw new Fail(`${svc.name} is not active, cannot reload.`, 1);
        if (runCommands(svc, svc.execReload, "ExecReload")) throw new Fail(`Job for ${svc.name} failed.`, 1);
      }
      return 0;
    case "enable":
    case "reenable":
      needUnits(units);
      for (const u of units) {
        const svc = mustLoad(u, "enable");
        if (verb === "reenable") disableUnit(svc, true);
        enableUnit(svc, opts.quiet);
        if (opts.now) withUnitLock(svc.name, () => startUnit(svc, opts));
      }
      return 0;
    case "disable":
      needUnits(units);
      for (const u of units) {
        const svc = mustLoad(u, "disable");
        disableUnit(svc, opts.quiet);
        if (opts.now) withUnitLock(svc.name, () => stopUnit(svc));
      }
      return 0;
    case "mask":
      needUnits(units);
      for (const u of units) {
        const link = join(ETC_UNITS, unitName(u));
        if (existsSync(link) && !isLink(link)) throw new Fail(`Failed to mask unit: File ${link} already exists.`, 1);
        rmSync(link, { force: true });
        symlinkSync("/dev/null", link);
        if (!opts.quiet) process.stderr.write(`Created symlink ${link} → /dev/null.\n`);
        if (opts.now) withUnitLock(unitName(u), () => stopUnit(mustLoad(u, "stop")));
      }
      return 0;
    case "unmask":
      needUnits(units);
      for (const u of units) {
        const link = join(ETC_UNITS, unitName(u));
        if (isLink(link) && readlinkSync(link) === "/dev/null") {
          unlinkSync(link);
          if (!opts.quiet) process.stderr.write(`Removed "${link}".\n`);
        }
      }
      return 0;
    case "is-active": {
      needUnits(units);
      let any = false;
      for (const u of units) {
        const rt = runtime(unitName(u));
        if (rt.active === "active" || rt.active === "reloading") any = true;
        if (!opts.quiet) process.stdout.write(`${rt.active}\n`);
      }
      return any ? 0 : 3;
    }
    case "is-failed": {
      needUnits(units);
      let any = false;
      for (const u of units) {
        const rt = runtime(unitName(u));
        if (rt.active === "failed") any = true;
        if (!opts.quiet) process.stdout.write(`${rt.active}\n`);
      }
      return any ? 0 : 1;
    }
    case "is-enabled": {
      needUnits(units);
      let ok = false;
      for (const u of units) {
        const svc = loadService(u);
        if (!svc) {
          process.stderr.write(`Failed to get unit file state for ${unitName(u)}: No such file or directory\n`);
          return 1;
        }
        const st = enabledState(svc);
        if (st === "enabled" || st === "static") ok = true;
        if (!opts.quiet) process.stdout.write(`${st}\n`);
      }
      return ok ? 0 : 1;
    }
    case "status": {
      needUnits(units);
      let rc = 0;
      for (const [i, u] of units.entries()) {
        if (i) process.stdout.write("\n");
        rc = Math.max(rc, status(u, opts));
      }
      return rc;
    }
    case "show":
      needUnits(units);
      for (const u of units) show(u, opts);
      return 0;
    case "cat":
      needUnits(units);
      for (const u of units) catUnit(mustLoad(u, "cat"));
      return 0;
    case "kill":
      needUnits(units);
      for (const u of units) {
        const svc = mustLoad(u, "kill");
        const rt = runtime(svc.name);
        const pids = svc.killMode === "process" ? [rt.main] : [rt.main, ...cgroupPids(unitCgroup(svc.name))];
        for (const p of new Set(pids)) if (p) signal(p, opts.signal);
      }
      return 0;
    case "reset-failed":
      for (const u of units.length ? units.map(unitName) : readdirSafe(RUN_DIR).filter((x) => x.endsWith(".service"))) {
        if (runtime(u).active === "failed") writeFileSync(join(stateDir(u), "state"), "inactive dead\n");
      }
      return 0;
    case "list-units":
      return listUnits();
    case "list-unit-files":
      return listUnitFiles();
    default:
      throw new Fail(`Unknown command verb '${verb}'.`, 1);
  }
}
