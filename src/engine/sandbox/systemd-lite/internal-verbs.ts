import { enabledUnits } from "./enablement";
import { serviceEnvironment } from "./environment";
import { Fail } from "./errors";
import { stateDir } from "./paths";
import { unitCgroup, withUnitLock } from "./runtime";
import { startScript } from "./start-script";
import { startUnit } from "./start-stop";
import { loadService, mustLoad, type Service } from "./unit-file";

// The verbs only the host itself uses: __boot (by the init) and __prepare (by a unit's supervisor).

/** Starts every enabled unit (After= among them orders the start); run once by the host's init. */
export function boot(): number {
  const units = enabledUnits()
    .map((n) => loadService(n))
    .filter((s): s is Service => !!s && !s.masked);
  const order: Service[] = [];
  const visiting = new Set<string>();
  const visit = (s: Service) => {
    if (order.includes(s) || visiting.has(s.name)) return;
    visiting.add(s.name);
    for (const dep of s.after) {
      const d = units.find((u) => u.name === dep);
      if (d) visit(d);
    }
    order.push(s);
  };
  units.forEach(visit);
  let rc = 0;
  for (const s of order) {
    try {
      withUnitLock(s.name, () => startUnit(s, { noBlock: false }));
      process.stdout.write(`boot: started ${s.name}\n`);
    } catch (err) {
      process.stdout.write(`boot: ${(err as Error).message}\n`);
      rc = 1;
    }
  }
  return rc;
}

/** Prints the start script of one attempt (called by the supervisor before every start). */
export function prepare(arg: string): number {
  const svc = mustLoad(arg, "start");
  const { env, missing } = serviceEnvironment(svc);
  if (missing.length) throw new Fail(`${svc.name}: Failed to load environment files: ${missing.join(", ")}: No such file or directory`, 1);
  process.stdout.write(startScript(svc, env, { state: stateDir(svc.name), cgroup: unitCgroup(svc.name) }));
  return 0;
}
