import { readFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { basename, dirname } from "node:path";
import { enabledState } from "./enablement";
import type { Options } from "./options";
import { RUN_DIR, UNIT_DIRS, logFile } from "./paths";
import { cgroupPids, runtime, unitCgroup } from "./runtime";
import { readdirSafe, readText } from "./safe-read";
import { loadService, uniqueDirs, unitName, type Service } from "./unit-file";

// The read-only commands: status, show, cat, list-units, list-unit-files.

function formatSince(d: Date | undefined): string {
  if (!d) return "";
  const ago = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
  return ` since ${d.toUTCString()}; ${ago}s ago`;
}

function cmdline(pid: number): string {
  return (readText(`/proc/${pid}/cmdline`) ?? "").replace(/\0+$/, "").replace(/\0/g, " ");
}

export function status(arg: string, opts: Options): number {
  const svc = loadService(arg);
  const name = unitName(arg);
  if (!svc) {
    process.stderr.write(`Unit ${name} could not be found.\n`);
    return 4;
  }
  const rt = runtime(name);
  const out: string[] = [];
  const dot = rt.active === "active" ? "●" : rt.active === "failed" ? "×" : "○";
  out.push(`${dot} ${name} - ${svc.description}`);
  if (svc.masked) out.push(`     Loaded: masked (Reason: Unit ${name} is masked.)`);
  else out.push(`     Loaded: loaded (${svc.fragment}; ${enabledState(svc)}; preset: enabled)`);
  if (svc.dropIns.length) {
    const byDir = new Map<string, string[]>();
    for (const p of svc.dropIns) byDir.set(dirname(p), [...(byDir.get(dirname(p)) ?? []), basename(p)]);
    let first = true;
    for (const [dir, files] of byDir) {
      out.push(`${first ? "    Drop-In: " : "             "}${dir}`, `             └─${files.join(", ")}`);
      first = false;
    }
  }
  const result = rt.active === "failed" ? ` (Result: ${rt.result})` : "";
  out.push(`     Active: ${rt.active} (${rt.sub})${result}${formatSince(rt.since)}`);
  if (rt.main) out.push(`   Main PID: ${rt.main} (${(readText(`/proc/${rt.main}/comm`) ?? "?").trim()})`);
  else if (rt.exit !== undefined)
    out.push(`    Process: ExecStart (code=${rt.exit > 128 ? "killed" : "exited"}, status=${rt.exit > 128 ? rt.exit - 128 : rt.exit})`);
  const cg = unitCgroup(name);
  const pids = cgroupPids(cg);
  if (pids.length) {
    out.push(`     CGroup: /system.slice/${name}`);
    pids.forEach((p, i) => out.push(`             ${i === pids.length - 1 ? "└─" : "├─"}${p} ${cmdline(p)}`));
  }
  const log = readText(logFile(name));
  if (log && opts.lines > 0) out.push("", ...log.trimEnd().split("\n").slice(-opts.lines));
  process.stdout.write(`${out.join("\n")}\n`);
  return rt.active === "active" || rt.active === "reloading" ? 0 : 3;
}

export function show(arg: string, opts: Options): number {
  const svc = loadService(arg);
  const name = unitName(arg);
  const rt = runtime(name);
  const usec = (s: number) => (Number.isFinite(s) ? `${Math.round(s * 1e6)}` : "infinity");
  const props: [string, string][] = [
    ["Id", name],
    ["Names", name],
    ["Description", svc?.description ?? name],
    ["LoadState", !svc ? "not-found" : svc.masked ? "masked" : "loaded"],
    ["ActiveState", rt.active],
    ["SubState", rt.sub],
    ["UnitFileState", svc ? enabledState(svc) : ""],
    ["Result", rt.result],
    ["MainPID", String(rt.main ?? 0)],
    ["ExecMainPID", String(rt.main ?? 0)],
    ["ExecMainStatus", String(rt.exit ?? 0)],
    ["NRestarts", String(rt.restarts)],
    ["FragmentPath", svc && !svc.masked ? svc.fragment : ""],
    ["DropInPaths", svc?.dropIns.join(" ") ?? ""],
    ["Type", svc?.type ?? ""],
    ["Restart", svc?.restart ?? "no"],
    ["RestartUSec", usec(svc?.restartSec ?? 0.1)],
    ["KillMode", svc?.killMode ?? "control-group"],
    ["KillSignal", String(signalNumber(svc?.killSignal ?? "SIGTERM"))],
    ["TimeoutStopUSec", usec(svc?.timeoutStopSec ?? 90)],
    ["Environment", svc ? svc.environment.map(([k, v]) => `${k}=${v}`).join(" ") : ""],
    ["EnvironmentFiles", svc ? svc.environmentFiles.map((f) => `${f.replace(/^-/, "")} (ignore_errors=${f.startsWith("-") ? "yes" : "no"})`).join(" ") : ""],
    ["WorkingDirectory", svc?.workingDirectory ?? ""],
    ["RemainAfterExit", svc?.remainAfterExit ? "yes" : "no"],
    ["ControlGroup", rt.supervisor || rt.main ? `/system.slice/${name}` : ""],
    ["ActiveEnterTimestamp", rt.since && rt.active === "active" ? rt.since.toUTCString() : ""],
  ];
  // systemctl prints in its own order whatever order -p named them; unknown names print nothing
  const out = props.filter(([k]) => !opts.properties.length || opts.properties.includes(k)).map(([k, v]) => (opts.value ? v : `${k}=${v}`));
  process.stdout.write(`${out.join("\n")}\n`);
  return 0;
}

export function signalNumber(sig: string): number {
  return (osConstants.signals as Record<string, number>)[sig] ?? 15;
}

export function catUnit(svc: Service): void {
  for (const f of [svc.fragment, ...svc.dropIns]) process.stdout.write(`# ${f}\n${readFileSync(f, "utf8").replace(/\n?$/, "\n")}\n`);
}

export function listUnits(): number {
  const rows = readdirSafe(RUN_DIR)
    .filter((u) => u.endsWith(".service"))
    .sort()
    .map((u) => {
      const rt = runtime(u);
      return [u, "loaded", rt.active, rt.sub, loadService(u)?.description ?? u];
    });
  const w = [0, 1, 2, 3].map((i) => Math.max(["UNIT", "LOAD", "ACTIVE", "SUB"][i]!.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i < 4 ? c.padEnd(w[i]!) : c)).join(" ");
  process.stdout.write(`${[fmt(["UNIT", "LOAD", "ACTIVE", "SUB", "DESCRIPTION"]), ...rows.map(fmt)].join("\n")}\n\n${rows.length} loaded units listed.\n`);
  return 0;
}

export function listUnitFiles(): number {
  const names = new Set<string>();
  for (const d of uniqueDirs(UNIT_DIRS)) for (const f of readdirSafe(d)) if (f.endsWith(".service") && !f.includes("@.")) names.add(f);
  const rows: string[][] = [];
  for (const n of [...names].sort()) {
    const s = loadService(n);
    if (s) rows.push([n, enabledState(s)]);
  }
  const w = Math.max(9, ...rows.map((r) => r[0]!.length));
  process.stdout.write(
    `${["UNIT FILE".padEnd(w) + " STATE", ...rows.map((r) => `${r[0]!.padEnd(w)} ${r[1]}`)].join("\n")}\n\n${rows.length} unit files listed.\n`,
  );
  return 0;
}
