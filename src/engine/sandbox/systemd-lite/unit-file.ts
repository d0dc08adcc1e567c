import { existsSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { hostname } from "node:os";
import { basename, join } from "node:path";
import { Fail } from "./errors";
import { UNIT_DIRS } from "./paths";
import { isLink, readdirSafe } from "./safe-read";
import { parseBoolean, parseEnvironmentAssignments, parseTimespan, parseUnitText } from "./unit-syntax";

// A service unit as systemd resolves it: unit file, template, mask, drop-ins, specifiers.

export interface Service {
  /** `kubelet.service`. */
  name: string;
  /** The unit file read (for a template instance, the template's). */
  fragment: string;
  dropIns: string[];
  masked: boolean;
  description: string;
  type: string;
  execStartPre: string[];
  execStart: string[];
  execStartPost: string[];
  execStop: string[];
  execReload: string[];
  environment: [string, string][];
  environmentFiles: string[];
  workingDirectory: string;
  restart: string;
  restartSec: number;
  killMode: string;
  killSignal: string;
  timeoutStopSec: number;
  remainAfterExit: boolean;
  after: string[];
  wantedBy: string[];
  requiredBy: string[];
  alias: string[];
  hasInstall: boolean;
}

/** `kubelet` -> `kubelet.service`. */
export function unitName(arg: string): string {
  const base = arg.includes("/") ? basename(arg) : arg;
  return /\.[a-z]+$/.test(base) ? base : `${base}.service`;
}

export function uniqueDirs(dirs: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const d of dirs) {
    let real: string;
    try {
      real = realpathSync(d);
    } catch {
      continue;
    }
    if (seen.has(real)) continue;
    seen.add(real);
    out.push(d);
  }
  return out;
}

function specifiers(name: string): (text: string) => string {
  const stem = name.replace(/\.[a-z]+$/, "");
  const at = stem.indexOf("@");
  const prefix = at >= 0 ? stem.slice(0, at) : stem;
  const instance = at >= 0 ? stem.slice(at + 1) : "";
  const map: Record<string, string> = {
    n: name,
    N: stem,
    p: prefix,
    P: prefix,
    i: instance,
    I: instance,
    t: "/run",
    h: "/root",
    u: "root",
    U: "0",
    H: hostname(),
    "%": "%",
  };
  return (text) => text.replace(/%([a-zA-Z%])/g, (m, c: string) => map[c] ?? m);
}

/**
 * Loads `name` from `dirs` (highest priority first): the unit file, its drop-ins in file-name order,
 * every setting resolved as systemd would (an empty assignment resets a list). Undefined if none exists.
 */
export function loadService(arg: string, dirs: string[] = UNIT_DIRS): Service | undefined {
  const name = unitName(arg);
  const paths = uniqueDirs(dirs);
  const template = name.replace(/@[^.]*\./, "@.");
  let fragment: string | undefined;
  let masked = false;
  for (const candidate of template === name ? [name] : [name, template]) {
    for (const d of paths) {
      const p = join(d, candidate);
      if (!existsSync(p) && !isLink(p)) continue;
      if (isLink(p) && readlinkSync(p) === "/dev/null") masked = true;
      else fragment = p;
      break;
    }
    if (fragment || masked) break;
  }
  if (!fragment && !masked) return undefined;
  const dropIns = new Map<string, string>();
  for (const d of [...paths].reverse()) {
    for (const dirName of [`${template}.d`, `${name}.d`]) {
      const dir = join(d, dirName);
      for (const f of readdirSafe(dir)) if (f.endsWith(".conf")) dropIns.set(f, join(dir, f));
    }
  }
  const orderedDropIns = [...dropIns.keys()].sort().map((k) => dropIns.get(k)!);
  const spec = specifiers(name);
  const svc: Service = {
    name,
    fragment: fragment ?? "/dev/null",
    dropIns: orderedDropIns,
    masked,
    description: name,
    type: "simple",
    execStartPre: [],
    execStart: [],
    execStartPost: [],
    execStop: [],
    execReload: [],
    environment: [],
    environmentFiles: [],
    workingDirectory: "",
    restart: "no",
    restartSec: 0.1,
    killMode: "control-group",
    killSignal: "SIGTERM",
    timeoutStopSec: 90,
    remainAfterExit: false,
    after: [],
    wantedBy: [],
    requiredBy: [],
    alias: [],
    hasInstall: false,
  };
  if (masked) return svc;
  const lists: Record<string, keyof Service> = {
    ExecStartPre: "execStartPre",
    ExecStart: "execStart",
    ExecStartPost: "execStartPost",
    ExecStop: "execStop",
    ExecReload: "execReload",
    EnvironmentFile: "environmentFiles",
    After: "after",
    WantedBy: "wantedBy",
    RequiredBy: "requiredBy",
    Alias: "alias",
  };
  for (const file of [svc.fragment, ...orderedDropIns]) {
    const sections = parseUnitText(readFileSync(file, "utf8"));
    if (sections["Install"]?.length) svc.hasInstall = true;
    for (const [section, entries] of Object.entries(sections)) {
      for (const [key, rawValue] of entries) {
        const value = spec(rawValue);
        const listKey = lists[key];
        if (listKey && (section === "Service" || section === "Unit" || section === "Install")) {
          const list = svc[listKey] as string[];
          if (value === "") list.length = 0;
          else if (key === "After" || key === "WantedBy" || key === "RequiredBy" || key === "Alias") list.push(...value.split(/\s+/));
          else list.push(value);
          continue;
        }
        if (section === "Unit" && key === "Description") svc.description = value;
        if (section !== "Service") continue;
        if (key === "Type") svc.type = value;
        else if (key === "Environment") {
          if (value === "") svc.environment = [];
          else svc.environment.push(...parseEnvironmentAssignments(value));
        } else if (key === "WorkingDirectory") svc.workingDirectory = value;
        else if (key === "Restart") svc.restart = value;
        else if (key === "RestartSec") svc.restartSec = parseTimespan(value, 0.1);
        else if (key === "KillMode") svc.killMode = value;
        else if (key === "KillSignal") svc.killSignal = value.startsWith("SIG") ? value : `SIG${value}`;
        else if (key === "TimeoutStopSec" || key === "TimeoutSec") svc.timeoutStopSec = parseTimespan(value, 90);
        else if (key === "RemainAfterExit") svc.remainAfterExit = parseBoolean(value, false);
      }
    }
  }
  return svc;
}

export function mustLoad(arg: string, verb: string): Service {
  const svc = loadService(arg);
  const name = unitName(arg);
  if (!name.endsWith(".service"))
    throw new Fail(`Failed to ${verb} ${name}: only service units are emulated in this sandbox host (no targets, sockets, timers, ...).`, 1);
  if (!svc) throw new Fail(`Failed to ${verb} ${name}: Unit ${name} ${verb === "stop" ? "not loaded" : "not found"}.`, 5);
  if (svc.masked && verb !== "stop") throw new Fail(`Failed to ${verb} ${name}: Unit ${name} is masked.`, 1);
  return svc;
}
