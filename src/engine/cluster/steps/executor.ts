import { HostsError, type HostFailure } from "../../ssh";
import { mapLimit } from "../../util/concurrency";
import type { ClusterEvent } from "../host/context";
import type { Plan, PlanPhase, PlanStep, RecordedHost } from "../plan";
import type { ClusterRecord } from "../state/record";

/** A phase of the plan failed: which phase, and every host that failed in it. */
export class ApplyError extends Error {
  constructor(
    readonly phase: PlanPhase,
    readonly failure: HostsError,
  ) {
    const n = failure.failures.length;
    super(`${phase.title} failed on ${n === 1 ? "1 host" : `${n} hosts`}:\n${failure.message.replace(/^\d+ hosts? failed( \(of \d+\))?:\n/, "")}`);
    this.name = "ApplyError";
  }

  get hosts(): string[] {
    return this.failure.hosts;
  }
}

export interface ExecutorOptions {
  plan: Plan;
  /** The record being brought up to date; changed in place as steps finish. */
  record: ClusterRecord;
  runStep(step: PlanStep, signal: AbortSignal | undefined, journal: StepJournal): Promise<void>;
  /** Writes the record: to the first master after each step; `everywhere` (every master) when a phase fails. The caller writes everywhere at the end. */
  persist(record: ClusterRecord, everywhere: boolean): Promise<void>;
  /** What finishing a step means for the host's membership (join → member, leave → not, cleanup → gone). */
  afterStep?(step: PlanStep, host: RecordedHost, record: ClusterRecord): void;
  parallelism: number;
  emit(e: ClusterEvent): void;
  signal?: AbortSignal;
}

/** The record as the run changes it, for a step that keeps more than done/not done (a plugin's checkpoints). */
export interface StepJournal {
  readonly record: ClusterRecord;
  /** Persists the record as it is now, in order with the executor's own writes. */
  save(): Promise<void>;
}

/**
 * Runs the plan's phases in order. Each finished step is recorded on its host in the cluster
 * record and persisted (on the first master after each step; on every master when a phase fails), so a
 * re-run plans only what is left. Parallel phases try every step and then fail with one error
 * naming every failed host; serial phases stop at the first failure.
 */
export async function executePlan(opts: ExecutorOptions): Promise<void> {
  const { record } = opts;
  let writing: Promise<void> = Promise.resolve();
  let writeError: unknown;
  // Writes are chained so they land in order; each captures the record as it is then.
  const persistSoon = (): void => {
    const snapshot = structuredClone(record);
    writing = writing
      .then(() => opts.persist(snapshot, false))
      .catch((err: unknown) => {
        writeError ??= err;
      });
  };
  const journal: StepJournal = {
    record,
    async save() {
      record.generation++;
      persistSoon();
      await writing;
      if (writeError !== undefined) throw writeError;
    },
  };
  for (const phase of opts.plan.phases) {
    opts.signal?.throwIfAborted();
    opts.emit({ type: "phase", name: phase.name, title: phase.title, steps: phase.steps.length });
    const failures: HostFailure[] = [];
    const run = async (step: PlanStep): Promise<boolean> => {
      const started = Date.now();
      opts.emit({ type: "step", host: step.host, id: step.id, description: step.description, status: "start" });
      try {
        await opts.runStep(step, opts.signal, journal);
      } catch (error) {
        failures.push({ host: step.host, error });
        opts.emit({
          type: "step",
          host: step.host,
          id: step.id,
          description: step.description,
          status: "failed",
          error: error instanceof Error ? error.message : String(error),
          ms: Date.now() - started,
        });
        return false;
      }
      const host = record.hosts.find((h) => h.ip === step.host);
      if (host) {
        // A version of a step replaces the host's other versions of it: done is what is there now.
        const kind = step.id.split("@")[0]!;
        if (step.id.includes("@")) host.done = host.done.filter((id) => !id.startsWith(`${kind}@`));
        if (!host.done.includes(step.id)) host.done.push(step.id);
        opts.afterStep?.(step, host, record);
      }
      record.generation++;
      persistSoon();
      opts.emit({ type: "step", host: step.host, id: step.id, description: step.description, status: "done", ms: Date.now() - started });
      return true;
    };
    if (phase.mode === "serial") {
      for (const step of phase.steps) if (!(await run(step))) break;
    } else {
      await mapLimit(phase.steps, opts.parallelism, run);
    }
    await writing;
    if (failures.length > 0) {
      // Keep what did finish, on every master still reachable, then report the failed hosts.
      record.generation++;
      await opts.persist(record, true).catch(() => undefined);
      const order = new Map(phase.steps.map((s, i) => [s.host, i]));
      failures.sort((a, b) => (order.get(a.host) ?? 0) - (order.get(b.host) ?? 0));
      throw new ApplyError(phase, new HostsError(failures, new Set(phase.steps.map((s) => s.host)).size));
    }
    if (writeError !== undefined) throw writeError;
  }
}
