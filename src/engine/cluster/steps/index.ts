/**
 * The step kinds, one home each (steps/<kind>.ts: how it runs, what it records), listed in one
 * table; the runner looks a plan step's kind up there. Their names are plan/kinds.ts's.
 */
import type { ClusterContext } from "../host/context";
import { parsePluginKind } from "../plan/kinds";
import type { PlanStep, RecordedHost } from "../plan";
import type { ClusterRecord } from "../state/record";
import { bootstrap } from "./bootstrap";
import { apiServerSans, certificateRenewal } from "./certificates";
import { check } from "./check";
import { cleanup } from "./cleanup";
import { distribute } from "./distribute";
import { hostSettings } from "./host-settings";
import { initHost } from "./init-host";
import { join } from "./join";
import type { StepJournal } from "./executor";
import { stepContext, type RecordContext, type StepKindDef, type StepRunnerOptions } from "./kind";
import { launch } from "./launch";
import { leave } from "./leave";
import { mirrors } from "./mirrors";
import { plugin } from "./plugin";
import { pullThrough } from "./pull-through";
import { push } from "./push";
import { registry, registryRemoval } from "./registry";
import { render } from "./render";
import { reset } from "./reset";
import { upgrade } from "./upgrade";

/** Every step kind there is, in the order a cluster meets them. */
export const STEP_KINDS: readonly StepKindDef[] = [
  distribute,
  render,
  registryRemoval,
  registry,
  push,
  mirrors,
  pullThrough,
  initHost,
  bootstrap,
  join,
  check,
  upgrade,
  hostSettings,
  apiServerSans,
  certificateRenewal,
  launch,
  leave,
  reset,
  cleanup,
  plugin,
];

const BY_KIND = new Map(STEP_KINDS.map((k) => [k.kind, k]));

/** The home of a step's kind (every plugin step has the plugin kind's). */
export function stepKindOf(kind: string): StepKindDef {
  const found = BY_KIND.get(kind) ?? (parsePluginKind(kind) ? plugin : undefined);
  if (!found) throw new Error(`unknown step kind ${kind}`);
  return found;
}

/** Runs one plan step on its host, by its kind. Everything here is idempotent: a step re-run after a failure converges. */
export function stepRunner(cluster: ClusterContext, opts: StepRunnerOptions): (step: PlanStep, signal?: AbortSignal, journal?: StepJournal) => Promise<void> {
  const ctx = stepContext(cluster, opts);
  return async (step, signal, journal) => {
    const host = cluster.hosts.get(step.host);
    if (!host) throw new Error(`step ${step.id} is for ${step.host}, which is not a host of this cluster`);
    const kind = stepKindOf(step.kind);
    // Forced removal of a host that is gone: what the cluster does about it, on the first master.
    if (opts.unreachable?.has(host.ip)) return kind.runUnreachable?.(ctx, step, host, signal);
    return kind.run(ctx, step, host, signal, journal);
  };
}

/** What finishing a step means for the record, by its kind: a joined host is a member, a host that left is not, a cleaned one is gone; labels and taints as set. */
export function stepRecorder(rc: RecordContext): (step: PlanStep, host: RecordedHost, record: ClusterRecord) => void {
  return (step, host, record) => stepKindOf(step.kind).record?.(host, record, rc);
}

export { runRuntimeCommand, runtimeContextOf, runtimeHost, BOOTSTRAP_APPS_LABEL } from "./runtime-command";
export { executePlan, ApplyError, type ExecutorOptions, type StepJournal } from "./executor";
export type { RecordContext, StepContext, StepKindDef, StepRunnerOptions } from "./kind";
