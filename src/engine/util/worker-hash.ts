import { Transform, type TransformCallback } from "node:stream";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

/**
 * sha256 on worker threads while data streams through, so verifying large downloads does not
 * compete with the main thread that receives and writes them (one JS thread hashing 500 MiB is
 * ~0.7 s of a pull). Chunks are copied into 1 MiB batch buffers that are transferred to the
 * worker and handed back after hashing, so a long download reuses a few buffers instead of
 * allocating (and page-faulting, and collecting) a fresh megabyte for every batch.
 */
const BATCH_BYTES = 1 << 20;

// Inline source: works from the compiled dist and from TypeScript run by the test runner alike.
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const jobs = new Map();
parentPort.on("message", (m) => {
  if (m.type === "start") jobs.set(m.id, { hash: createHash("sha256"), size: 0 });
  else if (m.type === "data") {
    const j = jobs.get(m.id);
    if (j) { j.hash.update(new Uint8Array(m.buffer, 0, m.length)); j.size += m.length; }
    parentPort.postMessage({ type: "spare", buffer: m.buffer }, [m.buffer]);
  } else if (m.type === "end") {
    const j = jobs.get(m.id); jobs.delete(m.id);
    parentPort.postMessage({ type: "done", id: m.id, digest: "sha256:" + j.hash.digest("hex"), size: j.size });
  } else if (m.type === "abort") jobs.delete(m.id);
});
`;

/**
 * `sha256:<hex>`: the same shape as engine/image's `Digest`, spelled out here because util is the
 * bottom floor and imports nothing from image (the two types are interchangeable).
 */
type Digest = `sha256:${string}`;

type Result = { digest: Digest; size: number };

/** Spare batch buffers kept while jobs are open: enough for a few streams in flight. */
const MAX_SPARE = 8;

class HashPool {
  private readonly workers: Worker[] = [];
  private readonly load = new Map<Worker, number>();
  private readonly waiting = new Map<number, { resolve(r: Result): void; reject(e: Error): void; worker: Worker }>();
  private spare: ArrayBuffer[] = [];
  private open = 0;
  private nextId = 0;

  constructor(private readonly size: number) {}

  /** Opens a hashing job on the least loaded worker. */
  start(): Job {
    const worker = this.pick();
    const id = this.nextId++;
    this.load.set(worker, (this.load.get(worker) ?? 0) + 1);
    this.open++;
    worker.ref();
    worker.postMessage({ type: "start", id });
    return { id, worker };
  }

  /** A batch buffer of BATCH_BYTES: a recycled one when the workers have handed one back. */
  buffer(): ArrayBuffer {
    return this.spare.pop() ?? new ArrayBuffer(BATCH_BYTES);
  }

  /** Hands the first `length` bytes of `buffer` to the job's worker; the buffer is gone from this thread. */
  feed(job: Job, buffer: ArrayBuffer, length: number): void {
    job.worker.postMessage({ type: "data", id: job.id, buffer, length }, [buffer]);
  }

  finish(job: Job): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.waiting.set(job.id, { resolve, reject, worker: job.worker });
      job.worker.postMessage({ type: "end", id: job.id });
    });
  }

  abort(job: Job): void {
    job.worker.postMessage({ type: "abort", id: job.id });
    this.release(job.worker);
  }

  private release(worker: Worker): void {
    const left = (this.load.get(worker) ?? 1) - 1;
    this.load.set(worker, left);
    // An idle worker must not keep the process alive, nor idle buffers hold memory.
    if (left <= 0) worker.unref();
    if (--this.open <= 0) this.spare = [];
  }

  private pick(): Worker {
    const idle = this.workers.find((w) => (this.load.get(w) ?? 0) === 0);
    if (idle) return idle;
    if (this.workers.length < this.size) return this.spawn();
    return this.workers.reduce((a, b) => ((this.load.get(a) ?? 0) <= (this.load.get(b) ?? 0) ? a : b));
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on("message", (msg: { type: "spare"; buffer: ArrayBuffer } | { type: "done"; id: number; digest: Digest; size: number }) => {
      if (msg.type === "spare") {
        if (this.open > 0 && this.spare.length < MAX_SPARE) this.spare.push(msg.buffer);
        return;
      }
      const w = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      this.release(worker);
      w?.resolve({ digest: msg.digest, size: msg.size });
    });
    worker.on("error", (err) => {
      // A dead worker fails the jobs it held; later jobs get a new worker.
      this.workers.splice(this.workers.indexOf(worker), 1);
      for (const [id, w] of this.waiting) {
        if (w.worker !== worker) continue;
        this.waiting.delete(id);
        w.reject(new Error(`hashing failed: ${err.message}`));
      }
    });
    this.workers.push(worker);
    return worker;
  }
}

type Job = { id: number; worker: Worker };

let pool: HashPool | undefined;

/** A pass-through stream whose bytes are hashed on a worker thread; `result()` after it ended. */
export class WorkerHashingStream extends Transform {
  private readonly job: Job;
  private batch: Uint8Array | undefined;
  private batchBytes = 0;
  private done: Promise<Result> | undefined;

  constructor() {
    super({ highWaterMark: 1 << 20 });
    pool ??= new HashPool(Math.max(1, Math.min(2, availableParallelism())));
    this.job = pool.start();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let offset = 0;
    while (offset < chunk.length) {
      this.batch ??= new Uint8Array(pool!.buffer());
      const n = Math.min(BATCH_BYTES - this.batchBytes, chunk.length - offset);
      this.batch.set(chunk.subarray(offset, offset + n), this.batchBytes);
      this.batchBytes += n;
      offset += n;
      if (this.batchBytes === BATCH_BYTES) this.post();
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.post();
    this.done = pool!.finish(this.job);
    cb();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (!this.done) pool!.abort(this.job);
    cb(err);
  }

  /** The digest and size of everything that passed; only valid after the stream ended. */
  result(): Promise<Result> {
    if (!this.done) return Promise.reject(new Error("internal: hash requested before the stream ended"));
    return this.done;
  }

  private post(): void {
    if (!this.batch || this.batchBytes === 0) return;
    // The batch buffer is our own ArrayBuffer (never a slice of Node's shared pool), so it can
    // be transferred; the worker hands it back for reuse.
    pool!.feed(this.job, this.batch.buffer as ArrayBuffer, this.batchBytes);
    this.batch = undefined;
    this.batchBytes = 0;
  }
}
