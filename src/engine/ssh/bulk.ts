/**
 * Bulk sends on worker threads: a pool of workers (one per core) that each keep their own
 * ssh2 connections to hosts and stream local files into commands there (bulk-worker.ts). The
 * main thread's ssh2 connection stays the control channel (commands, the kill of an aborted
 * send); only the bytes move off it, so several hosts' streams use every core.
 *
 * A worker connects with the main connection's credentials, passed in memory (postMessage),
 * and accepts only the host key the main connection verified, byte for byte.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { bulkWorkerMain, type BulkFromWorker, type BulkJob, type BulkToWorker } from "./bulk-worker";
import { SshError } from "./errors";

export type { BulkConnect } from "./bulk-worker";

/** A worker's job as the caller gives it (the fields are documented on BulkJob), and what it is told back. */
export interface BulkSendOptions extends Omit<BulkJob, "type" | "id" | "progressIntervalMs"> {
  signal?: AbortSignal;
  progressIntervalMs?: number;
  onBytes?(bytes: number): void;
  /** The command's pid on the host, once it reported it (to kill its process group on abort). */
  onPid?(pid: number): void;
}

export interface BulkSendResult {
  bytes: number;
  code?: number;
  signal?: string;
  stdout: string;
  stderr: string;
  aborted: boolean;
}

interface Pending {
  opts: BulkSendOptions;
  worker: Worker;
  resolve(r: BulkSendResult): void;
  reject(e: Error): void;
  aborted: boolean;
}

const WORKER_SOURCE = `(${bulkWorkerMain.toString()})()`;

/** The pool's workers; spawned on demand, idle workers do not keep the process alive. */
export class BulkPool {
  private readonly workers: Worker[] = [];
  private readonly load = new Map<Worker, number>();
  private readonly pending = new Map<number, Pending>();
  /** Which worker holds a main connection's worker connection: its sends stay on that worker. */
  private readonly homes = new Map<string, Worker>();
  private nextId = 0;
  /** Sends started so far (what tests and benchmarks look at to see the bulk path taken). */
  sends = 0;
  /** Per host (as dialled): worker connections opened and bytes on their wire, for benchmarks. */
  readonly stats = new Map<string, { connects: number; wireOut: number; wireIn: number }>();

  constructor(readonly size: number = availableParallelism()) {}

  /** Streams `file` into the command `line` on the host; resolves with its exit, like exec. */
  send(host: string, opts: BulkSendOptions): Promise<BulkSendResult> {
    const worker = this.workerFor(opts.connect.key);
    const id = this.nextId++;
    this.sends++;
    return new Promise<BulkSendResult>((resolve, reject) => {
      const p: Pending = { opts, worker, resolve, reject, aborted: false };
      this.pending.set(id, p);
      this.load.set(worker, (this.load.get(worker) ?? 0) + 1);
      worker.ref();
      const onAbort = (): void => {
        p.aborted = true;
        worker.postMessage({ type: "abort", id } satisfies BulkToWorker);
      };
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener("abort", onAbort, { once: true });
      const settle = (): void => {
        opts.signal?.removeEventListener("abort", onAbort);
        this.pending.delete(id);
        this.release(worker);
      };
      p.resolve = (r) => {
        settle();
        resolve(r);
      };
      p.reject = (e) => {
        settle();
        reject(e instanceof SshError ? e : new SshError(host, e.message, { cause: e }));
      };
      const job: BulkJob = {
        type: "job",
        id,
        connect: opts.connect,
        line: opts.line,
        ...(opts.head ? { head: opts.head } : {}),
        file: opts.file,
        gunzip: opts.gunzip,
        ...(opts.growsTo !== undefined ? { growsTo: opts.growsTo } : {}),
        pidMarker: opts.pidMarker,
        progressIntervalMs: opts.progressIntervalMs ?? 250,
      };
      worker.postMessage(job);
    });
  }

  /** Closes the worker connection that belongs to a main connection (it is being closed). */
  forget(key: string): void {
    const worker = this.homes.get(key);
    this.homes.delete(key);
    worker?.postMessage({ type: "forget", key } satisfies BulkToWorker);
  }

  /** Stops every worker; sends in flight fail (a retry gets fresh workers). */
  async stop(): Promise<void> {
    const all = this.workers.splice(0);
    this.homes.clear();
    await Promise.all(all.map((w) => w.terminate()));
  }

  private workerFor(key: string): Worker {
    const home = this.homes.get(key);
    if (home && this.workers.includes(home)) return home;
    const idle = this.workers.find((w) => (this.load.get(w) ?? 0) === 0 && ![...this.homes.values()].includes(w));
    const worker =
      idle ?? (this.workers.length < this.size ? this.spawn() : this.workers.reduce((a, b) => ((this.load.get(a) ?? 0) <= (this.load.get(b) ?? 0) ? a : b)));
    this.homes.set(key, worker);
    return worker;
  }

  private release(worker: Worker): void {
    const left = (this.load.get(worker) ?? 1) - 1;
    this.load.set(worker, left);
    if (left <= 0) worker.unref();
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ssh2: require.resolve("ssh2") } });
    worker.unref();
    this.workers.push(worker);
    worker.on("message", (m: BulkFromWorker) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      const stat = (): { connects: number; wireOut: number; wireIn: number } => {
        const host = p.opts.connect.host;
        if (!this.stats.has(host)) this.stats.set(host, { connects: 0, wireOut: 0, wireIn: 0 });
        return this.stats.get(host)!;
      };
      if (m.type === "connected") stat().connects++;
      else if (m.type === "pid") p.opts.onPid?.(m.pid);
      else if (m.type === "progress") p.opts.onBytes?.(m.bytes);
      else if (m.type === "done") {
        p.opts.onBytes?.(m.bytes);
        stat().wireOut += m.wireOut;
        stat().wireIn += m.wireIn;
        p.resolve({
          bytes: m.bytes,
          ...(m.code !== undefined ? { code: m.code } : {}),
          ...(m.signal !== undefined ? { signal: m.signal } : {}),
          stdout: m.stdout,
          stderr: m.stderr,
          aborted: p.aborted,
        });
      } else {
        p.reject(new Error(m.connect ? `bulk-send connection: ${m.message}` : m.message));
      }
    });
    const died = (why: string): void => {
      const at = this.workers.indexOf(worker);
      if (at >= 0) this.workers.splice(at, 1);
      for (const [key, w] of this.homes) if (w === worker) this.homes.delete(key);
      for (const p of [...this.pending.values()]) if (p.worker === worker) p.reject(new Error(`the bulk-send worker thread ${why}`));
    };
    worker.on("error", (err) => died(`failed: ${err.message}`));
    worker.on("exit", (code) => died(`exited (code ${code}) in the middle of the send`));
    return worker;
  }
}

let shared: BulkPool | undefined;

/**
 * The process's pool: two workers per core Node may use, or SEALANT_BULK_WORKERS=N. More than
 * one per core: hosts are pinned to a worker (its connection lives there), and with as many
 * workers as cores 3 hosts on 2 cores split 2:1, the busier worker bounding the whole send;
 * the OS shares cores among more threads evenly.
 */
export function bulkPool(): BulkPool {
  const asked = Number(process.env["SEALANT_BULK_WORKERS"]);
  shared ??= new BulkPool(Number.isInteger(asked) && asked > 0 ? asked : 2 * availableParallelism());
  return shared;
}
