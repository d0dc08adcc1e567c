/**
 * One step of a MODULE plugin: the plugin's `run` with its context (the hosts in scope over the
 * cluster's own connections, the redacted spec, a logger, a signal), under its timeout, its
 * attempts and checkpoints kept in the cluster's record so a re-run after a failure resumes.
 */
import { redact, shellQuote } from "../../ssh";
import type { ClusterHost } from "../host/connect";
import { runStreamed } from "../host/commands";
import type { PlanStep, PluginRunRecord } from "../plan";
import type { PluginSpec } from "../spec";
import type { StepJournal } from "./executor";
import { planAction, type StepContext } from "./kind";
import type { PluginContext, PluginHost } from "../plugins/api";
import { PluginError, type PluginWhere } from "../plugins/errors";
import type { LoadedPlugin } from "../plugins/load";
import { envForPlugin, specForPlugin } from "../plugins/secrets";

/** What `ctx.fail` throws: the plugin's own message, said as it is. */
class PluginFailure extends Error {}

/** After the timeout, how long the plugin's commands get to be stopped before the step reports. */
const STOP_GRACE_MS = 5_000;
/** A checkpoint is a small record of progress, not a data store. */
const MAX_CHECKPOINT_BYTES = 64 * 1024;

export interface PluginStepOptions {
  /** Run it anew although its failed attempt saved no checkpoint and it is not idempotent (`--retry-plugin`). */
  retry: boolean;
}

export async function runPluginStep(
  sc: StepContext,
  step: PlanStep,
  host: ClusterHost,
  phase: string,
  spec: PluginSpec,
  loaded: LoadedPlugin,
  journal: StepJournal | undefined,
  opts: PluginStepOptions,
  parent?: AbortSignal,
): Promise<void> {
  const where: PluginWhere = { plugin: spec.name, module: spec.module!, phase, host: host.ip };
  const def = loaded.definition;
  const run = beginAttempt(journal, step, where, def.idempotent, opts.retry);
  await journal?.save();

  const stop = new AbortController();
  const onParent = (): void => stop.abort(parent?.reason);
  parent?.addEventListener("abort", onParent, { once: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stop.abort(new Error("timed out"));
  }, loaded.timeoutMs);
  const { cluster } = sc;
  const seen = specForPlugin(cluster.spec, spec.secrets);
  const say = (stream: "stdout" | "stderr", text: string): void =>
    cluster.emit({ type: "output", host: host.ip, step: step.id, stream, line: redact(`[${spec.name}] ${text}`, seen.secrets) });
  const hosts = hostsInScope(sc, step, spec).map((h) => pluginHost(sc, h, step, stop.signal, seen.secrets, spec.secrets));
  const ctx: PluginContext = {
    name: spec.name,
    phase: phase as PluginContext["phase"],
    config: spec.config,
    cluster: {
      name: cluster.spec.name,
      image: cluster.image.ref,
      action: planAction(sc.opts.plan),
      env: envForPlugin({ ...cluster.image.metadata.env, ...cluster.spec.env }, spec.secrets),
      spec: seen.spec,
    },
    host: hosts.find((h) => h.ip === host.ip) ?? pluginHost(sc, host, step, stop.signal, seen.secrets, spec.secrets),
    hosts,
    attempt: run?.attempts ?? 1,
    checkpoints: structuredClone(run?.checkpoints ?? {}),
    async checkpoint(key, value) {
      stop.signal.throwIfAborted();
      if (!run || !journal) return;
      const text = JSON.stringify(value);
      if (text === undefined) throw new PluginFailure(`checkpoint ${key}: the value is not JSON`);
      run.checkpoints[key] = JSON.parse(text) as unknown;
      if (JSON.stringify(run.checkpoints).length > MAX_CHECKPOINT_BYTES) throw new PluginFailure(`checkpoints hold more than ${MAX_CHECKPOINT_BYTES} bytes`);
      await journal.save();
    },
    log: { info: (m) => say("stdout", m), warn: (m) => say("stderr", m) },
    signal: stop.signal,
    fail(message): never {
      throw new PluginFailure(message);
    },
  };

  const running = Promise.resolve().then(() => def.run(ctx));
  const stopped = new Promise<never>((_, reject) => stop.signal.addEventListener("abort", () => reject(stop.signal.reason as Error), { once: true }));
  try {
    await Promise.race([running, stopped]);
  } catch (err) {
    // Whatever the plugin still runs gets the abort: its commands are killed before we report.
    stop.abort(err);
    await Promise.race([running.catch(() => undefined), new Promise((r) => setTimeout(r, STOP_GRACE_MS))]);
    const reason = timedOut
      ? `timed out after ${loaded.timeoutMs / 1000}s (its timeout; the commands it was running were stopped)`
      : parent?.aborted
        ? "cancelled"
        : err instanceof PluginFailure
          ? err.message
          : `failed: ${redact((err as Error)?.message ?? String(err), seen.secrets)}`;
    if (run) run.error = reason;
    throw new PluginError(where, reason);
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener("abort", onParent);
    stop.abort(new Error("the plugin's step has ended"));
  }
  finishAttempt(journal, step);
}

/** Counts this attempt in the record (saved before it runs, so an interruption counts too); refuses a blind re-run of a plugin that is not idempotent. */
function beginAttempt(journal: StepJournal | undefined, step: PlanStep, where: PluginWhere, idempotent: boolean, retry: boolean): PluginRunRecord | undefined {
  const rec = journal?.record.hosts.find((h) => h.ip === step.host);
  if (!rec) return undefined;
  const runs = (rec.pluginRuns ??= {});
  const prev = runs[step.id];
  if (prev && !idempotent && !retry && Object.keys(prev.checkpoints).length === 0) {
    throw new PluginError(
      where,
      `its attempt ${prev.attempts} did not finish (${prev.error ?? "interrupted"}) and saved no checkpoint; it is not idempotent, so running it again could repeat what it did. ` +
        `See what it changed, then run it anew with sealant apply --retry-plugin ${where.plugin}`,
    );
  }
  const run: PluginRunRecord = { attempts: (prev?.attempts ?? 0) + 1, checkpoints: prev?.checkpoints ?? {} };
  runs[step.id] = run;
  return run;
}

function finishAttempt(journal: StepJournal | undefined, step: PlanStep): void {
  const rec = journal?.record.hosts.find((h) => h.ip === step.host);
  if (!rec?.pluginRuns) return;
  delete rec.pluginRuns[step.id];
  if (Object.keys(rec.pluginRuns).length === 0) delete rec.pluginRuns;
}

/** The hosts a step's plugin may work on: its scope (every host when it has none), the hosts leaving only in the phases about leaving. */
function hostsInScope(sc: StepContext, step: PlanStep, spec: PluginSpec): ClusterHost[] {
  const leaving = /clean|uninstall/.test(step.kind);
  const removed = new Set(sc.opts.removed);
  return [...sc.cluster.hosts.values()].filter(
    (h) => (leaving || !removed.has(h.ip)) && (!spec.scope?.length || spec.scope.some((s) => s === h.ip || h.roles.includes(s))),
  );
}

function pluginHost(sc: StepContext, h: ClusterHost, step: PlanStep, signal: AbortSignal, secrets: readonly string[], withSecrets: boolean): PluginHost {
  const { cluster } = sc;
  const exec = async (command: string, o: Parameters<PluginHost["exec"]>[1] = {}, anyExitCode = true) => {
    signal.throwIfAborted();
    const conn = await cluster.pool.get(h, signal);
    const r = await runStreamed(conn, {
      command,
      env: o.env ?? {},
      step: step.id,
      timeoutMs: o.timeoutMs ?? sc.commandMs,
      signal,
      emit: cluster.emit,
      secrets,
      anyExitCode,
      ...(o.stdin !== undefined ? { stdin: typeof o.stdin === "string" ? o.stdin : Buffer.from(o.stdin) } : {}),
    });
    return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  return {
    ip: h.ip,
    roles: h.roles,
    ...(cluster.facts.get(h.ip)?.hostname ? { hostname: cluster.facts.get(h.ip)!.hostname } : {}),
    env: envForPlugin(h.env, withSecrets),
    exec: (command, o) => exec(command, o),
    run: (command, o) => exec(command, o, false),
    async upload(path, content, o = {}) {
      if (!path.startsWith("/")) throw new PluginFailure(`upload ${path}: give an absolute path`);
      const mode = (o.mode ?? 0o644).toString(8);
      const p = shellQuote(path);
      await exec(`mkdir -p "$(dirname ${p})" && t=${p}.sealant-tmp.$$ && cat > "$t" && chmod ${mode} "$t" && mv -f "$t" ${p}`, { stdin: content }, false);
    },
  };
}
