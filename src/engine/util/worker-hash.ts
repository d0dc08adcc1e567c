import { Transform, type TransformCallback } from "node:stream";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

/**
 * sha256 on worker threads while data streams through, so verifying large downloads does not
 * compete with the main thread that receives and writes them (one JS thread hashing 500 MiB is
 * ~0.7 s of a pull). Chunks are batched to ~1 MiB before they are posted to the worker.
 */
const BATCH_BYTES = 1 << 20;

// Inline source: works from the compiled dist and from TypeScript run by the test runner alike.
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const jobs = new Map();
parentPort.on("message", (m) => {
  if (m.type === "start") jobs.set(m.id, { hash: createHash("sha256"), size: 0 });
  else if (m.type === "data") { const j = jobs.get(m.id); j.hash.update(m.chunk); j.size += m.chunk.length; }
  else if (m.type === "end") {
    const j = jobs.get(m.id); jobs.delete(m.id);
    parentPort.postMessage({ id: m.id, digest: "sha256:" + j.hash.digest("hex"), size: j.size });
  } else if (m.type === "abort") jobs.delete(m.id);
});
`;

/**
 * `sha256:<hex>`: the same shape as engine/image's `Digest`, spelled out here because util is the
 * bottom floor and imports nothing from image (the two types are interchangeable).
 */
type Digest = `sha256:${string}`;

type Result = { digest: Digest; size: number };

class HashPool {
  private readonly workers: Worker[] = [];
  private readonly load = new Map<Worker, number>();
  private readonly waiting = new Map<number, { resolve(r: Result): void; reject(e: Error): void; worker: Worker }>();
  private nextId = 0;

  constructor(private readonly size: number) {}

  /** Opens a hashing job; returns functions to feed it and to finish it. */
  open(): { id: number; worker: Worker } {
    const worker = this.pick();
    const id = this.nextId++;
    this.load.set(worker, (this.load.get(worker) ?? 0) + 1);
    worker.ref();
    worker.postMessage({ type: "start", id });
    return { id, worker };
  }

  finish(job: { id: number; worker: Worker }): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.waiting.set(job.id, { resolve, reject, worker: job.worker });
      job.worker.postMessage({ type: "end", id: job.id });
    });
  }

  abort(job: { id: number; worker: Worker }): void {
    job.worker.postMessage({ type: "abort", id: job.id });
    this.release(job.worker);
  }

  private release(worker: Worker): void {
    const left = (this.load.get(worker) ?? 1) - 1;
    this.load.set(worker, left);
    // An idle worker must not keep the process alive.
    if (left <= 0) worker.unref();
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
    worker.on("message", (msg: { id: number; digest: Digest; size: number }) => {
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

let pool: HashPool | undefined;

/** A pass-through stream whose bytes are hashed on a worker thread; `result()` after it ended. */
export class WorkerHashingStream extends Transform {
  private readonly job: { id: number; worker: Worker };
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private done: Promise<Result> | undefined;

  constructor() {
    super({ highWaterMark: 1 << 20 });
    pool ??= new HashPool(Math.max(1, Math.min(2, availableParallelism())));
    this.job = pool.open();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.batch.push(chunk);
    this.batchBytes += chunk.length;
    if (this.batchBytes >= BATCH_BYTES) this.post();
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
    if (this.batchBytes === 0) return;
    // A fresh ArrayBuffer of our own: Buffer.concat/Buffer.from may hand out a slice of Node's
    // shared pool, which cannot be transferred (and must not be detached).
    const own = new ArrayBuffer(this.batchBytes);
    const view = new Uint8Array(own);
    let offset = 0;
    for (const b of this.batch) {
      view.set(b, offset);
      offset += b.length;
    }
    this.job.worker.postMessage({ type: "data", id: this.job.id, chunk: view }, [own]);
    this.batch = [];
    this.batchBytes = 0;
  }
}
