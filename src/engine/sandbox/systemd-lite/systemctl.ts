/**
 * `systemctl` for Kubernetes-capable sandbox hosts, which have no systemd: a stand-in emulating the
 * host's init system for what Kubernetes' set-up drives (kubeadm's initsystem, sealer-style
 * scripts). It is a sandbox feature, not part of sealant's product. Inside a host it is
 * /usr/lib/sealant-sandbox/systemctl.{js,ts}, run by the machine's Node through /usr/bin/systemctl;
 * it imports only Node's built-in modules so it runs as one copied file (compiled, or as TypeScript
 * with Node's type stripping).
 *
 * EMULATED
 * - Unit files: `<name>.service` from /etc/systemd/system, /run/systemd/system, /lib/systemd/system
 *   (first found wins; a link to /dev/null is a mask), template units (`foo@bar.service` from
 *   `foo@.service`), drop-ins `<name>.service.d/*.conf` from the same directories (ordered by file
 *   name; /etc beats /lib for the same name), `\` line continuation, `#`/`;` comments, the
 *   specifiers %n %N %p %i %I %t %h %H %%.
 * - [Service]: Type= simple|exec|notify|idle (running once the main process is spawned; no
 *   READY=1 protocol) and oneshot (+ RemainAfterExit=); ExecStartPre=, ExecStart=, ExecStartPost=,
 *   ExecStop=, ExecReload= with the `-` prefix (failure ignored), an empty assignment resetting the
 *   list (a drop-in replacing ExecStart=), systemd's quoting and escapes, `${VAR}` (one word) and
 *   `$VAR` (split at whitespace) from the unit's environment; Environment=, EnvironmentFile= (`-`:
 *   optional; read anew at every start, overriding Environment=); WorkingDirectory= (`-`, `~`);
 *   Restart= no|always|on-success|on-failure|on-abnormal|on-abort with RestartSec=; KillMode=
 *   control-group|mixed|process|none, KillSignal=, TimeoutStopSec= (then SIGKILL).
 * - [Install]: WantedBy=, RequiredBy=, Alias= as real links under /etc/systemd/system; units linked
 *   from any `/etc/systemd/system/*.wants|*.requires` start when the host boots (`__boot`, run by
 *   the host's init), so a restarted host brings its services back.
 * - Commands: start, stop, restart, try-restart, reload, reload-or-restart, enable [--now],
 *   disable [--now], reenable, mask, unmask, is-active, is-enabled, is-failed, status, show
 *   [-p P,...] [--value], cat, kill [-s SIG], reset-failed, daemon-reload (a no-op: unit files are
 *   read afresh by every command), list-units, list-unit-files; options -q, --now, --no-block,
 *   --no-pager and other display options (accepted, ignored). Exit codes as systemctl's (0; 1;
 *   3 = not active; 4 = no such unit for status; 5 = unit not found for start/stop).
 * - A supervisor per started unit (/usr/lib/sealant-sandbox/supervise, POSIX sh): runs the unit's
 *   commands, restarts it per Restart=, and appends its output and journal-like lines to
 *   /var/log/units/<unit without .service>.log. Each unit's processes are tracked in a cgroup
 *   `/system.slice/<unit>` of the name=systemd hierarchy (or the unified one), as systemd does.
 *   Runtime state lives in /run/sealant-systemd/<unit>/ (a tmpfs: a reboot forgets it).
 *
 * NOT EMULATED: targets, sockets, timers, paths, mounts and other unit types; dependencies and
 * ordering (Requires=, Wants=, After= only order the boot); Type=forking and Type=dbus (refused);
 * the sd_notify protocol; User=/Group= and every sandboxing, resource and limit setting (Limit*=,
 * OOMScoreAdjust=, TasksMax=, Delegate=, Protect*=, ...: the service runs as root with the host's
 * limits); StandardOutput=/StandardError= (always the unit's log file); StartLimit*= (a unit
 * restarts for ever); conditions and asserts; timeouts for starting; `systemctl --user`; the
 * journal itself (use the log files); log rotation. Concurrent systemctl calls on the same unit
 * are serialised by a lock directory.
 */
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { constants as osConstants, hostname } from "node:os";
import { basename, dirname, join } from "node:path";

// ---------------------------------------------------------------------------------------------
// Paths inside a host

export const UNIT_DIRS = ["/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"];
const ETC_UNITS = "/etc/systemd/system";
export const RUN_DIR = "/run/sealant-systemd";
export const LOG_DIR = "/var/log/units";
const LIB_DIR = "/usr/lib/sealant-sandbox";
const SUPERVISE = `${LIB_DIR}/supervise`;
const BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const CGROUP_ROOTS = ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"];

// ---------------------------------------------------------------------------------------------
// Pure parsing (exported for tests)

/** `[Section]` -> its `Key=Value` assignments in file order (keys and values trimmed). */
export type UnitSections = Record<string, [string, string][]>;

export function parseUnitText(text: string): UnitSections {
  const out: UnitSections = {};
  const lines = text.split(/\r?\n/);
  let section = "";
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    // A trailing backslash joins the next line (comment lines in between are skipped), with a space.
    while (line.endsWith("\\") && i + 1 < lines.length) {
      const next = lines[++i]!.trim();
      if (next.startsWith("#") || next.startsWith(";")) {
        line = `${line.slice(0, -1)} \\`;
        continue;
      }
      line = `${line.slice(0, -1)} ${next}`;
    }
    if (line.startsWith("[") && line.endsWith("]")) {
      section = line.slice(1, -1).trim();
      out[section] ??= [];
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0 || !section) continue;
    out[section]!.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return out;
}

/** systemd time spans: `10`, `10s`, `100ms`, `1min 30s`, `2h`, `infinity` -> seconds. */
export function parseTimespan(text: string, fallback: number): number {
  const t = text.trim();
  if (t === "") return fallback;
  if (t === "infinity") return Infinity;
  const units: Record<string, number> = { us: 1e-6, usec: 1e-6, ms: 1e-3, msec: 1e-3, s: 1, sec: 1, second: 1, seconds: 1, m: 60, min: 60, minute: 60, minutes: 60, h: 3600, hr: 3600, hour: 3600, hours: 3600, d: 86400, day: 86400, days: 86400 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)\s*([a-z]*)/g;
  let m: RegExpExecArray | null;
  let matched = "";
  while ((m = re.exec(t))) {
    const unit = m[2] === "" ? "s" : m[2]!;
    if (!(unit in units)) return fallback;
    total += Number(m[1]) * units[unit]!;
    matched += m[0];
  }
  return matched.replace(/\s/g, "") === t.replace(/\s/g, "") && matched !== "" ? total : fallback;
}

export function parseBoolean(text: string | undefined, fallback: boolean): boolean {
  if (text === undefined || text === "") return fallback;
  if (/^(1|yes|y|true|t|on)$/i.test(text)) return true;
  if (/^(0|no|n|false|f|off)$/i.test(text)) return false;
  return fallback;
}

/** A word of a command line: its unquoted text, and the variable name if it was written as a bare `$NAME`. */
export interface Word {
  text: string;
  bareVar?: string;
}

const ESCAPES: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", s: " ", "\\": "\\", '"': '"', "'": "'", ";": ";" };

/** Splits a value into words the way systemd does (whitespace; "double" and 'single' quotes; C escapes). */
export function splitWords(text: string): Word[] {
  const words: Word[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && /\s/.test(text[i]!)) i++;
    if (i >= n) break;
    let out = "";
    let raw = "";
    let quoted = false;
    while (i < n && !/\s/.test(text[i]!)) {
      const c = text[i]!;
      if (c === '"' || c === "'") {
        quoted = true;
        const q = c;
        i++;
        while (i < n && text[i] !== q) {
          if (text[i] === "\\" && q === '"' && i + 1 < n) {
            const [s, len] = unescapeAt(text, i);
            out += s;
            i += len;
          } else out += text[i++];
        }
        i++; // closing quote
        continue;
      }
      if (c === "\\" && i + 1 < n) {
        const [s, len] = unescapeAt(text, i);
        out += s;
        raw += text.slice(i, i + len);
        i += len;
        continue;
      }
      out += c;
      raw += c;
      i++;
    }
    const bare = !quoted && /^\$[A-Za-z_][A-Za-z0-9_]*$/.test(raw) ? raw.slice(1) : undefined;
    words.push(bare ? { text: out, bareVar: bare } : { text: out });
  }
  return words;
}

function unescapeAt(text: string, i: number): [string, number] {
  const c = text[i + 1]!;
  if (c in ESCAPES) return [ESCAPES[c]!, 2];
  if (c === "x" && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) return [String.fromCharCode(parseInt(text.slice(i + 2, i + 4), 16)), 4];
  if (/^[0-7]{3}$/.test(text.slice(i + 1, i + 4))) return [String.fromCharCode(parseInt(text.slice(i + 1, i + 4), 8)), 4];
  return [c, 2];
}

/** `Environment=` values: space-separated `KEY=VALUE` assignments, quotes allowed. */
export function parseEnvironmentAssignments(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const w of splitWords(text)) {
    const eq = w.text.indexOf("=");
    if (eq > 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(w.text.slice(0, eq))) out.push([w.text.slice(0, eq), w.text.slice(eq + 1)]);
  }
  return out;
}

/** An `EnvironmentFile=`: `KEY=VALUE` lines, `#`/`;` comments, optional quotes around the value, `\` continuation. */
export function parseEnvironmentFile(text: string): [string, string][] {
  const out: [string, string][] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    while (line.endsWith("\\") && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i]!;
    line = line.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.startsWith("export ")) line = line.slice(7).trim();
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) continue;
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      value = value.slice(1, -1).replace(/\\(["\\`$])/g, "$1");
    } else if (value.length >= 2 && value.startsWith("'") && value.endsWith("'")) {
      value = value.slice(1, -1);
    }
    out.push([key, value]);
  }
  return out;
}

/** One `Exec*=` line, parsed with the environment of this start. */
export interface ExecLine {
  argv: string[];
  /** `-` prefix: a failure is not the unit's failure. */
  ignoreFailure: boolean;
}

/** Prefixes (`-`, `@`, `:`, `+`, `!`), words, and `${VAR}` / `$VAR` expansion (`$$` is a literal `$`). */
export function parseExecLine(raw: string, env: Map<string, string>): ExecLine {
  let text = raw.trim();
  let ignoreFailure = false;
  let argv0 = false;
  let expand = true;
  for (;;) {
    const c = text[0];
    if (c === "-") ignoreFailure = true;
    else if (c === "@") argv0 = true;
    else if (c === ":") expand = false;
    else if (c !== "+" && c !== "!") break;
    text = text.slice(1);
  }
  const words = splitWords(text);
  const argv: string[] = [];
  for (const [i, w] of words.entries()) {
    if (argv0 && i === 1) continue; // `@path argv0 args`: our exec cannot set argv[0]; the program keeps its path as argv[0]
    if (!expand) {
      argv.push(w.text);
      continue;
    }
    if (w.bareVar !== undefined) {
      argv.push(...(env.get(w.bareVar) ?? "").split(/\s+/).filter(Boolean));
      continue;
    }
    argv.push(w.text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name: string | undefined) => (m === "$$" ? "$" : (env.get(name!) ?? ""))));
  }
  return { argv, ignoreFailure };
}

/** Single-quoted for sh. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// ---------------------------------------------------------------------------------------------
// Units

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

function uniqueDirs(dirs: string[]): string[] {
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
  const map: Record<string, string> = { n: name, N: stem, p: prefix, P: prefix, i: instance, I: instance, t: "/run", h: "/root", u: "root", U: "0", H: hostname(), "%": "%" };
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

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function readText(p: string): string | undefined {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return undefined;
  }
}

/** The environment a start sees: PATH, then Environment=, then every EnvironmentFile= (read now). */
export function serviceEnvironment(svc: Service, read: (path: string) => string | undefined = readText): { env: Map<string, string>; missing: string[] } {
  const env = new Map<string, string>([["PATH", BASE_PATH]]);
  for (const [k, v] of svc.environment) env.set(k, v);
  const missing: string[] = [];
  for (const entry of svc.environmentFiles) {
    for (const spec of entry.split(/\s+/).filter(Boolean)) {
      const optional = spec.startsWith("-");
      const path = optional ? spec.slice(1) : spec;
      const text = read(path);
      if (text === undefined) {
        if (!optional) missing.push(path);
        continue;
      }
      for (const [k, v] of parseEnvironmentFile(text)) env.set(k, v);
    }
  }
  return { env, missing };
}

/**
 * The shell script for one start attempt (the supervisor runs it): join the unit's cgroup, change
 * directory, ExecStartPre=, then the main process (exec'd, so its PID is the script's), ExecStartPost=.
 */
export function startScript(svc: Service, env: Map<string, string>, paths: { state: string; cgroup?: string }): string {
  const envArgs = [...env.entries()].map(([k, v]) => shQuote(`${k}=${v}`)).join(" ");
  const run = (line: ExecLine) => `env -i ${envArgs} ${line.argv.map(shQuote).join(" ")}`;
  const lines = [`# ${svc.name}: one start, written by systemctl at ${new Date().toISOString()} (environment files read then)`, `S=${shQuote(paths.state)}`, `echo $$ > "$S/main.pid"`];
  if (paths.cgroup) lines.push(`[ ! -w ${shQuote(`${paths.cgroup}/cgroup.procs`)} ] || echo $$ > ${shQuote(`${paths.cgroup}/cgroup.procs`)}`);
  let wd = svc.workingDirectory;
  const wdOptional = wd.startsWith("-");
  if (wdOptional) wd = wd.slice(1);
  if (wd === "~") wd = "/root";
  if (wd) lines.push(`cd ${shQuote(wd)}${wdOptional ? " 2> /dev/null || cd /" : " || { echo 'Changing to the requested working directory failed'; exit 200; }"}`);
  else lines.push("cd /");
  const step = (raw: string) => {
    const line = parseExecLine(raw, env);
    if (!line.argv.length) return;
    lines.push(`${run(line)} || ${line.ignoreFailure ? ":" : "exit $?"}`);
  };
  svc.execStartPre.forEach(step);
  const reached = `cat "$S/attempt" > "$S/reached" 2> /dev/null; echo 'active running' > "$S/state"`;
  if (svc.type === "oneshot") {
    svc.execStart.forEach(step);
    svc.execStartPost.forEach(step);
    lines.push("exit 0");
    return `${lines.join("\n")}\n`;
  }
  const main = parseExecLine(svc.execStart[0] ?? "", env);
  if (!main.argv.length) {
    lines.push(`echo '${svc.name} has no ExecStart= setting'`, "exit 1");
    return `${lines.join("\n")}\n`;
  }
  if (!svc.execStartPost.length) {
    lines.push(reached, `exec ${run(main)}`);
    return `${lines.join("\n")}\n`;
  }
  lines.push(`${run(main)} &`, "m=$!", `echo "$m" > "$S/main.pid"`, reached);
  for (const raw of svc.execStartPost) {
    const line = parseExecLine(raw, env);
    if (line.argv.length) lines.push(`${run(line)} || ${line.ignoreFailure ? ":" : '{ rc=$?; kill -TERM "$m"; wait "$m"; exit "$rc"; }'}`);
  }
  lines.push('wait "$m"', "exit $?");
  return `${lines.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------------
// Runtime state of started units

const sleepBuf = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number) => Atomics.wait(sleepBuf, 0, 0, ms);

const stateDir = (unit: string) => join(RUN_DIR, unit);
const logFile = (unit: string) => join(LOG_DIR, `${unit.replace(/\.service$/, "")}.log`);

function readNumber(p: string): number | undefined {
  const t = readText(p)?.trim();
  return t && /^\d+$/.test(t) ? Number(t) : undefined;
}

function procState(pid: number): string | undefined {
  const s = readText(`/proc/${pid}/stat`);
  return s === undefined ? undefined : s.slice(s.lastIndexOf(")") + 2, s.lastIndexOf(")") + 3);
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  const st = procState(pid);
  return st !== undefined && st !== "Z" && st !== "X";
}

interface Runtime {
  active: string;
  sub: string;
  supervisor?: number;
  main?: number;
  exit?: number;
  result: string;
  restarts: number;
  since?: Date;
}

function runtime(unit: string): Runtime {
  const d = stateDir(unit);
  const [active = "inactive", sub = "dead"] = (readText(join(d, "state")) ?? "inactive dead").trim().split(/\s+/);
  const supervisor = readNumber(join(d, "supervisor.pid"));
  const main = readNumber(join(d, "main.pid"));
  const rt: Runtime = { active, sub, result: readText(join(d, "result"))?.trim() || "success", restarts: Math.max(0, (readNumber(join(d, "attempt")) ?? 1) - 1) };
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

function unitCgroup(unit: string): string | undefined {
  for (const root of CGROUP_ROOTS) if (existsSync(join(root, "cgroup.procs"))) return join(root, "system.slice", unit);
  return undefined;
}

function cgroupPids(dir: string | undefined): number[] {
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

function signal(pid: number, sig: string): void {
  try {
    process.kill(pid, sig as NodeJS.Signals);
  } catch {
    // already gone
  }
}

function note(unit: string, message: string): void {
  try {
    mkdirSync(LOG_DIR, { recursive: true });
    writeFileSync(logFile(unit), `${new Date().toISOString()} ${unit}: ${message}\n`, { flag: "a" });
  } catch {
    // logging must never fail a command
  }
}

/** A lock per unit (mkdir is atomic), broken when its holder is gone. */
function withUnitLock<T>(unit: string, fn: () => T): T {
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

// ---------------------------------------------------------------------------------------------
// Commands

class Fail extends Error {
  code: number;
  constructor(message: string, code: number) {
    super(message);
    this.code = code;
  }
}

interface Options {
  now: boolean;
  quiet: boolean;
  noBlock: boolean;
  value: boolean;
  properties: string[];
  lines: number;
  signal: string;
}

function mustLoad(arg: string, verb: string): Service {
  const svc = loadService(arg);
  const name = unitName(arg);
  if (!name.endsWith(".service")) throw new Fail(`Failed to ${verb} ${name}: only service units are emulated in this sandbox host (no targets, sockets, timers, ...).`, 1);
  if (!svc) throw new Fail(`Failed to ${verb} ${name}: Unit ${name} ${verb === "stop" ? "not loaded" : "not found"}.`, 5);
  if (svc.masked && verb !== "stop") throw new Fail(`Failed to ${verb} ${name}: Unit ${name} is masked.`, 1);
  return svc;
}

function isUp(rt: Runtime): boolean {
  return (rt.active === "active" || rt.active === "activating" || rt.active === "reloading") && !(rt.sub === "auto-restart" && !rt.supervisor);
}

function startUnit(svc: Service, opts: Pick<Options, "noBlock">): void {
  if (svc.type === "forking" || svc.type === "dbus") throw new Fail(`Failed to start ${svc.name}: Type=${svc.type} is not emulated by this sandbox host's systemctl`, 1);
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
    [`TYPE=${shQuote(svc.type)}`, `RESTART=${shQuote(svc.restart)}`, `RESTART_SEC=${shQuote(String(Number.isFinite(svc.restartSec) ? svc.restartSec : 0.1))}`, `REMAIN=${svc.remainAfterExit ? "yes" : "no"}`, `LOG=${shQuote(logFile(svc.name))}`, `DESC=${shQuote(svc.description)}`, ""].join("\n"),
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
    if (now.sub === "auto-restart" || now.active === "failed" || (now.active === "inactive" && !now.supervisor) || (now.active === "active" && now.sub === "exited")) {
      if (svc.type === "oneshot" && now.result === "success" && now.active !== "failed" && now.sub !== "auto-restart") return;
      throw new Fail(`Job for ${svc.name} failed because the control process exited with error code.\nSee "systemctl status ${svc.name}" and "journalctl -xeu ${svc.name}" for details.`, 1);
    }
    if (Date.now() > deadline) throw new Fail(`Job for ${svc.name} failed because a timeout was exceeded.`, 1);
  }
}

function runCommands(svc: Service, lines: string[], what: string): number {
  const { env } = serviceEnvironment(svc);
  let rc = 0;
  for (const raw of lines) {
    const line = parseExecLine(raw, env);
    if (!line.argv.length) continue;
    const log = openSync(logFile(svc.name), "a");
    try {
      const r = spawnSync(line.argv[0]!, line.argv.slice(1), { env: Object.fromEntries(env), stdio: ["ignore", log, log], cwd: "/", timeout: Number.isFinite(svc.timeoutStopSec) ? svc.timeoutStopSec * 1000 : undefined });
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

function stopUnit(svc: Service): void {
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

function wantsLinks(name: string): string[] {
  const out: string[] = [];
  for (const e of readdirSafe(ETC_UNITS)) {
    if (!/\.(wants|requires)$/.test(e)) continue;
    const link = join(ETC_UNITS, e, name);
    if (isLink(link) || existsSync(link)) out.push(link);
  }
  return out;
}

function enableUnit(svc: Service, quiet: boolean): void {
  const links: string[] = [];
  for (const t of svc.wantedBy) links.push(join(ETC_UNITS, `${t}.wants`, svc.name));
  for (const t of svc.requiredBy) links.push(join(ETC_UNITS, `${t}.requires`, svc.name));
  for (const a of svc.alias) links.push(join(ETC_UNITS, a));
  if (!links.length) {
    if (!quiet) {
      process.stderr.write(
        `The unit files have no installation config (WantedBy=, RequiredBy=, Also=,\nAlias= settings in the [Install] section, and DefaultInstance= for template\nunits). This means they are not meant to be enabled or disabled using systemctl.\n`,
      );
    }
    return;
  }
  for (const link of links) {
    if (isLink(link) || existsSync(link)) continue;
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(svc.fragment, link);
    if (!quiet) process.stderr.write(`Created symlink ${link} → ${svc.fragment}.\n`);
  }
}

function disableUnit(svc: Service, quiet: boolean): void {
  const links = wantsLinks(svc.name);
  for (const a of svc.alias) if (isLink(join(ETC_UNITS, a))) links.push(join(ETC_UNITS, a));
  for (const link of links) {
    unlinkSync(link);
    if (!quiet) process.stderr.write(`Removed "${link}".\n`);
  }
}

function enabledState(svc: Service): string {
  if (svc.masked) return "masked";
  if (wantsLinks(svc.name).length) return "enabled";
  if (svc.alias.some((a) => isLink(join(ETC_UNITS, a)))) return "enabled";
  return svc.hasInstall ? "disabled" : "static";
}

function formatSince(d: Date | undefined): string {
  if (!d) return "";
  const ago = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
  return ` since ${d.toUTCString()}; ${ago}s ago`;
}

function cmdline(pid: number): string {
  return (readText(`/proc/${pid}/cmdline`) ?? "").replace(/\0+$/, "").replace(/\0/g, " ");
}

function status(arg: string, opts: Options): number {
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
  else if (rt.exit !== undefined) out.push(`    Process: ExecStart (code=${rt.exit > 128 ? "killed" : "exited"}, status=${rt.exit > 128 ? rt.exit - 128 : rt.exit})`);
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

function show(arg: string, opts: Options): number {
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

function signalNumber(sig: string): number {
  return (osConstants.signals as Record<string, number>)[sig] ?? 15;
}

function catUnit(svc: Service): void {
  for (const f of [svc.fragment, ...svc.dropIns]) process.stdout.write(`# ${f}\n${readFileSync(f, "utf8").replace(/\n?$/, "\n")}\n`);
}

function enabledUnits(): string[] {
  const names: string[] = [];
  for (const e of readdirSafe(ETC_UNITS).sort()) {
    if (!/\.(wants|requires)$/.test(e)) continue;
    for (const u of readdirSafe(join(ETC_UNITS, e)).sort()) if (u.endsWith(".service") && !names.includes(u)) names.push(u);
  }
  return names;
}

/** Starts every enabled unit (After= among them orders the start); run once by the host's init. */
function boot(): number {
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
function prepare(arg: string): number {
  const svc = mustLoad(arg, "start");
  const { env, missing } = serviceEnvironment(svc);
  if (missing.length) throw new Fail(`${svc.name}: Failed to load environment files: ${missing.join(", ")}: No such file or directory`, 1);
  process.stdout.write(startScript(svc, env, { state: stateDir(svc.name), cgroup: unitCgroup(svc.name) }));
  return 0;
}

function listUnits(): number {
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

function listUnitFiles(): number {
  const names = new Set<string>();
  for (const d of uniqueDirs(UNIT_DIRS)) for (const f of readdirSafe(d)) if (f.endsWith(".service") && !f.includes("@.")) names.add(f);
  const rows: string[][] = [];
  for (const n of [...names].sort()) {
    const s = loadService(n);
    if (s) rows.push([n, enabledState(s)]);
  }
  const w = Math.max(9, ...rows.map((r) => r[0]!.length));
  process.stdout.write(`${["UNIT FILE".padEnd(w) + " STATE", ...rows.map((r) => `${r[0]!.padEnd(w)} ${r[1]}`)].join("\n")}\n\n${rows.length} unit files listed.\n`);
  return 0;
}

const FLAGS = new Set(["--now", "-q", "--quiet", "--no-block", "--no-pager", "--system", "-l", "--full", "--value", "-a", "--all", "-f", "--force", "--no-reload", "--no-legend", "--plain", "--no-ask-password", "--runtime", "-r", "--recursive", "--wait"]);
const WITH_VALUE = new Set(["-p", "--property", "-n", "--lines", "-t", "--type", "--state", "-s", "--signal", "--kill-whom", "--kill-who", "-o", "--output", "--job-mode", "-H", "--host", "-M", "--machine"]);

export function main(argv: string[]): number {
  const opts: Options = { now: false, quiet: false, noBlock: false, value: false, properties: [], lines: 10, signal: "SIGTERM" };
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      words.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const [flag, inline] = a.startsWith("--") && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    if (flag === "--user") {
      process.stderr.write("systemctl --user is not emulated in this sandbox host\n");
      return 1;
    }
    if (WITH_VALUE.has(flag)) {
      const v = inline ?? argv[++i] ?? "";
      if (flag === "-p" || flag === "--property") opts.properties.push(...v.split(",").filter(Boolean));
      else if (flag === "-n" || flag === "--lines") opts.lines = Number(v) || 0;
      else if (flag === "-s" || flag === "--signal") opts.signal = v.startsWith("SIG") ? v : `SIG${v}`;
      continue;
    }
    if (/^-[A-Za-z]{2,}$/.test(flag)) {
      // combined short flags, e.g. -ql
      for (const c of flag.slice(1)) if (!FLAGS.has(`-${c}`)) return unknownOption(a);
      if (flag.includes("q")) opts.quiet = true;
      continue;
    }
    if (!FLAGS.has(flag)) return unknownOption(a);
    if (flag === "--now") opts.now = true;
    else if (flag === "-q" || flag === "--quiet") opts.quiet = true;
    else if (flag === "--no-block") opts.noBlock = true;
    else if (flag === "--value") opts.value = true;
  }
  const [verb = "list-units", ...units] = words;
  try {
    return run(verb, units, opts);
  } catch (err) {
    if (err instanceof Fail) {
      if (err.message) process.stderr.write(`${err.message}\n`);
      return err.code;
    }
    throw err;
  }
}

function unknownOption(a: string): number {
  process.stderr.write(`systemctl: unrecognized option '${a}'\n`);
  return 1;
}

function needUnits(units: string[]): void {
  if (!units.length) throw new Fail(`Too few arguments.`, 1);
}

function run(verb: string, units: string[], opts: Options): number {
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

// Run as a program only when installed in a host (never when imported, e.g. by tests).
if (/\/sealant-sandbox\/systemctl\.[jt]s$/.test(process.argv[1] ?? "")) process.exitCode = main(process.argv.slice(2));
