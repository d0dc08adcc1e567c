import { resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import {
  applyCluster,
  checkCluster,
  execOnCluster,
  resetCluster,
  unlockCluster,
  type ApplyResult,
  type ClusterEvent,
  type ClusterOptions,
} from "../../engine/cluster";
import { formatPlan } from "../../engine/cluster/plan";
import { loadClusterfile, formatProblem, type ClusterSpec } from "../../engine/cluster/spec";
import { parseIpList, removeHosts } from "../../engine/cluster/spec-edit";
import { parseMirrors, Session } from "../../engine/session";
import { HostsError } from "../../engine/ssh";
import { parse } from "../args";
import { UsageError } from "../errors";
import { printJson } from "../format";
import { Progress } from "../progress";
import { applySummary, ClusterPrinter, seconds } from "../cluster-output";
import type { Command } from "./command";

/*
 * The cluster commands: a Clusterfile (sealant's `sealant.io/v1 Cluster` or sealer's v2) in,
 * the engine's apply / reset / check / exec / unlock out. Progress for people goes to stderr,
 * results to stdout (or JSON with --json). The spec is never printed: it holds secrets.
 */

const CLUSTERFILE_HELP = `  -f, --file FILE              the Clusterfile: sealant's (apiVersion: sealant.io/v1, kind:
                               Cluster) or sealer's (sealer.io/v2) (default: ./Clusterfile)`;
const SESSION_HELP = `      --insecure               allow plain HTTP / unverified TLS to non-loopback registries
                               (when the image must be pulled)
      --registry-mirror R=HOST fetch images of registry R from HOST (repeatable; also
                               SEALANT_REGISTRY_MIRRORS="docker.io=host:5000,...")`;
const OUTPUT_HELP = `  -v, --verbose                show the output of every remote command, prefixed by host
  -q, --quiet                  no progress`;

const common = {
  file: { type: "string", short: "f", default: "Clusterfile" },
  insecure: { type: "boolean", default: false },
  "registry-mirror": { type: "string", multiple: true },
  quiet: { type: "boolean", short: "q", default: false },
} as const;

/** The common options and -v, for the commands that run steps on hosts. */
const withVerbose = { ...common, verbose: { type: "boolean", short: "v", default: false } } as const;

interface CommonValues {
  file: string;
  insecure: boolean;
  "registry-mirror"?: string[] | undefined;
  verbose?: boolean;
  quiet: boolean;
}

/** The Clusterfile, its key files read; its warnings (e.g. an image not pinned by digest) on stderr. */
async function readClusterfile(path: string, progress: Progress): Promise<ClusterSpec> {
  let parsed;
  try {
    parsed = await loadClusterfile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EISDIR" || code === "EACCES") {
      const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : "permission denied";
      throw new Error(`cannot read the Clusterfile ${resolve(path)}: ${why}${path === "Clusterfile" ? " (give one with -f FILE)" : ""}`);
    }
    throw err;
  }
  for (const w of parsed.warnings) progress.line(`warning: ${formatProblem(w)}`);
  return parsed.spec;
}

async function openSession(values: CommonValues): Promise<Session> {
  let mirrors: Record<string, string>;
  try {
    mirrors = parseMirrors((values["registry-mirror"] ?? []).join(","));
  } catch (err) {
    throw new UsageError(`--registry-mirror: ${(err as Error).message}`);
  }
  return Session.open({ insecure: values.insecure, mirrors });
}

/** Clusterfile + session + progress printer, closed whatever happens. */
async function withCluster<T>(
  values: CommonValues & { json?: boolean },
  fn: (o: { spec: ClusterSpec; session: Session; progress: Progress; events: ClusterPrinter }) => Promise<T>,
): Promise<T> {
  const progress = new Progress(values.quiet || values.json === true);
  const spec = await readClusterfile(values.file, progress);
  const session = await openSession(values);
  try {
    return await fn({
      spec,
      session,
      progress,
      events: new ClusterPrinter(
        progress,
        values.verbose === true,
        spec.hosts.flatMap((g) => g.ips),
      ),
    });
  } finally {
    session.close();
  }
}

/** The command's signal, also aborted after the spec's whole-operation timeout (`timeouts.apply`). */
async function withDeadline<T>(signal: AbortSignal, spec: ClusterSpec, what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ms = spec.timeouts.apply * 1000;
  // Past setTimeout's range (~24.8 days) there is no deadline worth keeping.
  if (!(ms > 0 && ms <= 2 ** 31 - 1)) return fn(signal);
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(new Error(`${what} did not finish within ${spec.timeouts.apply} s (spec.timeouts.apply): stopped; re-run it to resume`)),
    ms,
  );
  timer.unref();
  try {
    return await fn(AbortSignal.any([signal, deadline.signal]));
  } finally {
    clearTimeout(timer);
  }
}

function asking(yes: boolean): boolean {
  return !yes && process.stdin.isTTY === true && process.stderr.isTTY === true;
}

/** Asks when `asking`; otherwise the answer is yes. */
async function confirm(question: string, yes: boolean): Promise<boolean> {
  if (!asking(yes)) return true;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

function clusterOptions(session: Session, spec: ClusterSpec, events: ClusterPrinter, signal: AbortSignal, command: string): ClusterOptions {
  return { session, spec, onEvent: events.on, signal, command };
}

function noPositionals(positionals: string[], name: string, usage: string): void {
  if (positionals.length > 0) throw new UsageError(`${name} takes no arguments (got ${positionals.join(" ")}); the Clusterfile is given with -f\n\n${usage}`);
}

// --- apply -----------------------------------------------------------------------------------

const applyUsage = `Usage: sealant apply [-f Clusterfile] [--dry-run] [--verify] [--json] [OPTIONS]

Make the cluster match the Clusterfile: create it, join and remove hosts, roll a new image or
configuration through the hosts. sealant reads the cluster's record from its masters, plans,
checks the hosts the plan touches, then runs the plan phase by phase; an interrupted apply
re-run resumes where it stopped. One apply at a time per cluster (see sealant unlock).

${CLUSTERFILE_HELP}
      --dry-run                print the plan and change nothing (same as sealant plan)
      --verify                 ask every member whether it still holds its files; a host reset
                               out of band is set up and joined again
      --json                   print {plan, record, sent, dryRun} as JSON on stdout
${SESSION_HELP}
${OUTPUT_HELP}`;

export const apply: Command = {
  usage: applyUsage,
  async run(args, signal) {
    const flags = {
      ...withVerbose,
      "dry-run": { type: "boolean", default: false },
      verify: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    } as const;
    const { values, positionals } = parse(args, flags, applyUsage);
    noPositionals(positionals, "apply", applyUsage);
    await withCluster(values, async ({ spec, session, events }) => {
      const verifyHosts = values.verify;
      if (values["dry-run"])
        return printPlan(await applyCluster({ ...clusterOptions(session, spec, events, signal, "sealant plan"), dryRun: true, verifyHosts }), values.json);
      await runApply(spec, session, events, signal, values.json, "sealant apply", "applied", verifyHosts);
    });
  },
};

async function runApply(
  spec: ClusterSpec,
  session: Session,
  events: ClusterPrinter,
  signal: AbortSignal,
  json: boolean,
  command: string,
  verb: string,
  verifyHosts = false,
  forceRemoval = false,
): Promise<ApplyResult> {
  const started = Date.now();
  const result = await withDeadline(signal, spec, "the apply", (s) =>
    applyCluster({ ...clusterOptions(session, spec, events, s, command), verifyHosts, forceRemoval }),
  );
  if (json) printJson(result);
  else process.stdout.write(applySummary(result, Date.now() - started, verb));
  return result;
}

function printPlan(r: ApplyResult, json: boolean): void {
  if (json) printJson(r);
  else process.stdout.write(`${formatPlan(r.plan)}\n`);
}

// --- plan ------------------------------------------------------------------------------------

const planUsage = `Usage: sealant plan [-f Clusterfile] [--json] [OPTIONS]

Show what 'sealant apply' would do, phase by phase and host by host, and change nothing.
sealant connects to the hosts to read the cluster's record and check them.

${CLUSTERFILE_HELP}
      --json                   print the plan as JSON
${SESSION_HELP}
${OUTPUT_HELP}`;

export const plan: Command = {
  usage: planUsage,
  async run(args, signal) {
    const { values, positionals } = parse(args, { ...withVerbose, json: { type: "boolean", default: false } }, planUsage);
    noPositionals(positionals, "plan", planUsage);
    await withCluster(values, async ({ spec, session, events }) => {
      const r = await applyCluster({ ...clusterOptions(session, spec, events, signal, "sealant plan"), dryRun: true });
      if (values.json) printJson(r.plan);
      else process.stdout.write(`${formatPlan(r.plan)}\n`);
    });
  },
};

// --- delete ----------------------------------------------------------------------------------

const deleteUsage = `Usage: sealant delete [-f Clusterfile] --nodes IP[,IP...] [--force] [--dry-run] [--json] [OPTIONS]

Remove hosts from the cluster: an apply of the Clusterfile without them (they leave the
cluster, are reset, and lose sealant's files). Groups left without hosts are dropped; the last
master cannot be removed (use sealant reset for the whole cluster). The Clusterfile itself is
not changed: take the hosts out of it too, or the next apply joins them again.

${CLUSTERFILE_HELP}
      --nodes IP[,IP...]       the hosts to remove, any role (repeatable; sealer's ranges
                               such as 192.168.0.2-192.168.0.5 work)
      --masters IP[,IP...]     the same (sealer's spelling for masters)
      --force                  remove hosts that cannot be reached anyway: the cluster forgets
                               them (e.g. their Kubernetes node and etcd member), their own
                               files stay; without it an unreachable host fails the delete
      --dry-run                print the plan and change nothing
      --json                   print {plan, record, sent, dryRun} as JSON on stdout
  -y, --yes                    do not ask for confirmation on a terminal
${SESSION_HELP}
${OUTPUT_HELP}`;

export const del: Command = {
  usage: deleteUsage,
  async run(args, signal) {
    const { values, positionals } = parse(
      args,
      {
        ...withVerbose,
        nodes: { type: "string", multiple: true },
        masters: { type: "string", multiple: true },
        force: { type: "boolean", default: false },
        "dry-run": { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        yes: { type: "boolean", short: "y", default: false },
      },
      deleteUsage,
    );
    noPositionals(positionals, "delete", deleteUsage);
    let ips: string[];
    try {
      ips = parseIpList([...(values.nodes ?? []), ...(values.masters ?? [])]);
    } catch (err) {
      throw new UsageError(`--nodes: ${(err as Error).message}\n\n${deleteUsage}`);
    }
    if (ips.length === 0) throw new UsageError(`delete needs the hosts to remove: --nodes IP[,IP...]\n\n${deleteUsage}`);
    await withCluster(values, async ({ spec, session, events, progress }) => {
      const smaller = removeHosts(spec, ips);
      if (values["dry-run"] || asking(values.yes)) {
        const dry = await applyCluster({ ...clusterOptions(session, smaller, events, signal, "sealant plan"), dryRun: true, forceRemoval: values.force });
        if (values["dry-run"]) return printPlan(dry, values.json);
        if (!(await confirm(`${formatPlan(dry.plan)}\nRemove ${ips.join(", ")} from cluster ${spec.name}?`, values.yes)))
          throw new Error("not confirmed: nothing changed");
      }
      await runApply(smaller, session, events, signal, values.json, "sealant delete", "updated", false, values.force);
      progress.line(
        `note: ${values.file} still lists ${ips.join(", ")}: remove ${ips.length === 1 ? "it" : "them"} there too, or the next 'sealant apply' joins ${ips.length === 1 ? "it" : "them"} again`,
      );
    });
  },
};

// --- reset -----------------------------------------------------------------------------------

const resetUsage = `Usage: sealant reset [-f Clusterfile] [--force] [--json] [OPTIONS]

Tear the cluster down: every host the Clusterfile or the cluster's record names runs the
runtime's reset, then loses sealant's files (images, registry, record, lock). Safe to re-run.

${CLUSTERFILE_HELP}
      --force                  leave out hosts that cannot be reached (their files stay)
      --json                   print {plan, skipped} as JSON on stdout
  -y, --yes                    do not ask for confirmation on a terminal
${SESSION_HELP}
${OUTPUT_HELP}`;

export const reset: Command = {
  usage: resetUsage,
  async run(args, signal) {
    const { values, positionals } = parse(
      args,
      {
        ...withVerbose,
        force: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        yes: { type: "boolean", short: "y", default: false },
      },
      resetUsage,
    );
    noPositionals(positionals, "reset", resetUsage);
    await withCluster(values, async ({ spec, session, events }) => {
      if (!(await confirm(`Reset cluster ${spec.name}? Its hosts lose the cluster and everything sealant put there.`, values.yes)))
        throw new Error("not confirmed: nothing changed");
      const started = Date.now();
      const r = await withDeadline(signal, spec, "the reset", (s) =>
        resetCluster({ ...clusterOptions(session, spec, events, s, "sealant reset"), force: values.force }),
      );
      if (values.json) return printJson(r);
      const hosts = [...new Set(r.plan.phases.flatMap((p) => p.steps.map((st) => st.host)))];
      process.stdout.write(
        `cluster ${spec.name} reset on ${hosts.length} host${hosts.length === 1 ? "" : "s"} in ${seconds(Date.now() - started)}${hosts.length ? `: ${hosts.join(", ")}` : ""}\n` +
          (r.skipped.length ? `  left out (unreachable, --force; their files stay): ${r.skipped.join(", ")}\n` : ""),
      );
    });
  },
};

// --- check -----------------------------------------------------------------------------------

const checkUsage = `Usage: sealant check [-f Clusterfile] [--json] [OPTIONS]

Check every host of the Clusterfile: reachable, a member of the cluster on its image, and the
runtime's own check passing. Exits 1 when a host is not healthy.

${CLUSTERFILE_HELP}
      --json                   print {healthy, record, hosts} as JSON on stdout
${SESSION_HELP}
${OUTPUT_HELP}`;

export const check: Command = {
  usage: checkUsage,
  async run(args, signal) {
    const { values, positionals } = parse(args, { ...withVerbose, json: { type: "boolean", default: false } }, checkUsage);
    noPositionals(positionals, "check", checkUsage);
    return withCluster(values, async ({ spec, session, events }) => {
      const r = await checkCluster(clusterOptions(session, spec, events, signal, "sealant check"));
      if (values.json) printJson(r);
      else {
        const width = Math.max(...r.hosts.map((h) => h.ip.length));
        const bad = r.hosts.filter((h) => !h.ok).length;
        const lines = r.hosts.map(
          (h) => `${h.ip.padEnd(width)}  ${h.ok ? "ok" : `problem: ${(h.problem ?? "").replace(/\n/g, `\n${" ".repeat(width + 11)}`)}`}`,
        );
        lines.push(
          r.healthy
            ? `cluster ${spec.name} is healthy (${r.hosts.length} host${r.hosts.length === 1 ? "" : "s"})`
            : `cluster ${spec.name} is not healthy: ${bad} of ${r.hosts.length} host${r.hosts.length === 1 ? "" : "s"} failed the check`,
        );
        process.stdout.write(`${lines.join("\n")}\n`);
      }
      return r.healthy ? 0 : 1;
    });
  },
};

// --- exec ------------------------------------------------------------------------------------

const execUsage = `Usage: sealant exec [-f Clusterfile] [--roles ROLE[,ROLE]] [--ips IP[,IP]] -- COMMAND [ARG...]

Run a shell command as root on the cluster's hosts, in parallel. Each line of output is
printed as it arrives, prefixed by the host's IP (stdout to stdout, stderr to stderr). The
words after -- are joined with spaces and run by the host's shell, as ssh does. Exits 1 when
the command fails on any host, naming every such host.

${CLUSTERFILE_HELP}
  -r, --roles ROLE[,ROLE]      only hosts with one of these roles (master, node, ...)
      --ips IP[,IP]            only these hosts (sealer's ranges work)
${SESSION_HELP}
  -q, --quiet                  no warnings`;

export const exec: Command = {
  usage: execUsage,
  async run(args, signal) {
    const { values, positionals } = parse(
      args,
      { ...common, roles: { type: "string", short: "r", multiple: true }, ips: { type: "string", multiple: true } },
      execUsage,
    );
    if (positionals.length === 0) throw new UsageError(`exec needs a command: sealant exec -f Clusterfile -- COMMAND [ARG...]\n\n${execUsage}`);
    const command = positionals.join(" ");
    const roles = (values.roles ?? [])
      .flatMap((r) => r.split(","))
      .map((r) => r.trim())
      .filter((r) => r !== "");
    let ips: string[];
    try {
      ips = parseIpList(values.ips ?? []);
    } catch (err) {
      throw new UsageError(`--ips: ${(err as Error).message}\n\n${execUsage}`);
    }
    await withCluster(values, async ({ spec, session, progress }) => {
      const out = (stream: "stdout" | "stderr", host: string, line: string): void => {
        (stream === "stdout" ? process.stdout : process.stderr).write(`${host}: ${line}\n`);
      };
      const onEvent = (e: ClusterEvent): void => {
        if (e.type === "output") out(e.stream, e.host, e.line);
        else if (e.type === "warning") progress.line(`warning: ${e.host ? `${e.host}: ` : ""}${e.text}`);
      };
      try {
        // Output arrives as events, line by line (a last line without a newline included).
        await execOnCluster({ session, spec, onEvent, signal, script: command, ...(roles.length ? { roles } : {}), ...(ips.length ? { ips } : {}) });
      } catch (err) {
        if (!(err instanceof HostsError)) throw err;
        const lines = err.message.split("\n").slice(1).join("\n");
        throw new Error(`the command failed on ${err.failures.length} of ${err.total} host${err.total === 1 ? "" : "s"}:\n${lines}`);
      }
    });
  },
};

// --- unlock ----------------------------------------------------------------------------------

const unlockUsage = `Usage: sealant unlock [-f Clusterfile] [OPTIONS]

Break the cluster's lock (held on its first master while an apply, delete or reset runs) when
what held it is gone, e.g. its machine crashed. Prints who held it. Breaking the lock of an
apply that is still running lets two applies change the cluster at once: check first.

${CLUSTERFILE_HELP}
${SESSION_HELP}
  -q, --quiet                  no warnings`;

export const unlock: Command = {
  usage: unlockUsage,
  async run(args, signal) {
    const { values, positionals } = parse(args, common, unlockUsage);
    noPositionals(positionals, "unlock", unlockUsage);
    await withCluster(values, async ({ spec, session, events }) => {
      const owner = await unlockCluster(clusterOptions(session, spec, events, signal, "sealant unlock"));
      process.stdout.write(
        owner
          ? `broke the lock of cluster ${spec.name}: it was held by ${owner.user}@${owner.machine} (pid ${owner.pid}, ${owner.command}) since ${owner.since}\n`
          : `cluster ${spec.name} was not locked (or its lock had no owner yet); it is unlocked now\n`,
      );
    });
  },
};
