import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import type { ClusterOptions } from "../../engine/cluster";
import { loadClusterfile, formatProblem, type ClusterSpec } from "../../engine/cluster/spec";
import { parseMirrors, Session } from "../../engine/session";
import { UsageError } from "../errors";
import { REGISTRY_HELP, registryOptions, registrySessionOptions } from "../args";
import { Progress } from "../progress";
import { ClusterPrinter } from "../cluster-output";

/*
 * What the cluster commands (cluster.ts: apply, plan, delete; cluster-ops.ts: reset, check,
 * exec, unlock) share: the Clusterfile, the session, options and their help, confirmation.
 * The cluster commands: a Clusterfile (sealant's `sealant.io/v1 Cluster` or sealer's v2) in,
 * the engine's apply / reset / check / exec / unlock out. Progress for people goes to stderr,
 * results to stdout (or JSON with --json). The spec is never printed: it holds secrets.
 */

export const CLUSTERFILE_HELP = `  -f, --file FILE              the Clusterfile: sealant's (apiVersion: sealant.io/v1, kind:
                               Cluster) or sealer's (sealer.io/v2) (default: ./Clusterfile)`;
export const SESSION_HELP = `${REGISTRY_HELP}
                               (these apply when the image must be pulled)
      --registry-mirror R=HOST fetch images of registry R from HOST (repeatable; also
                               SEALANT_REGISTRY_MIRRORS="docker.io=host:5000,...")`;
export const OUTPUT_HELP = `  -v, --verbose                show the output of every remote command, prefixed by host
  -q, --quiet                  no progress`;

export const common = {
  file: { type: "string", short: "f", default: "Clusterfile" },
  ...registryOptions,
  "registry-mirror": { type: "string", multiple: true },
  quiet: { type: "boolean", short: "q", default: false },
} as const;

/** The common options and -v, for the commands that run steps on hosts. */
export const withVerbose = { ...common, verbose: { type: "boolean", short: "v", default: false } } as const;

export interface CommonValues {
  file: string;
  insecure: boolean;
  "allow-http-credentials": boolean;
  timeout?: string | undefined;
  "registry-mirror"?: string[] | undefined;
  verbose?: boolean;
  quiet: boolean;
}

/** The directory of the Clusterfile each spec was read from: its MODULE plugins resolve from there. */
const clusterfileDirs = new WeakMap<ClusterSpec, string>();

/** A spec made from another (fewer hosts, say) keeps the Clusterfile's directory for its plugins. */
export function derivedSpec(from: ClusterSpec, to: ClusterSpec): ClusterSpec {
  const dir = clusterfileDirs.get(from);
  if (dir !== undefined) clusterfileDirs.set(to, dir);
  return to;
}

/** The Clusterfile, its key files read; its warnings (e.g. an image not pinned by digest) on stderr. */
export async function readClusterfile(path: string, progress: Progress): Promise<ClusterSpec> {
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
  clusterfileDirs.set(parsed.spec, dirname(resolve(path)));
  return parsed.spec;
}

export async function openSession(values: CommonValues): Promise<Session> {
  let mirrors: Record<string, string>;
  try {
    mirrors = parseMirrors((values["registry-mirror"] ?? []).join(","));
  } catch (err) {
    throw new UsageError(`--registry-mirror: ${(err as Error).message}`);
  }
  return Session.open({ ...registrySessionOptions(values), mirrors });
}

/** Clusterfile + session + progress printer, closed whatever happens. */
export async function withCluster<T>(
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
export async function withDeadline<T>(signal: AbortSignal, spec: ClusterSpec, what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
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

export function asking(yes: boolean): boolean {
  return !yes && process.stdin.isTTY === true && process.stderr.isTTY === true;
}

/** Asks when `asking`; otherwise the answer is yes. */
export async function confirm(question: string, yes: boolean): Promise<boolean> {
  if (!asking(yes)) return true;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

export function clusterOptions(session: Session, spec: ClusterSpec, events: ClusterPrinter, signal: AbortSignal, command: string): ClusterOptions {
  const pluginBase = clusterfileDirs.get(spec);
  return { session, spec, onEvent: events.on, signal, command, ...(pluginBase !== undefined ? { pluginBase } : {}) };
}

export function noPositionals(positionals: string[], name: string, usage: string): void {
  if (positionals.length > 0) throw new UsageError(`${name} takes no arguments (got ${positionals.join(" ")}); the Clusterfile is given with -f\n\n${usage}`);
}

// --- apply -----------------------------------------------------------------------------------
