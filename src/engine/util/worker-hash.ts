import { close, open } from "node:fs";
import { availableParallelism } from "node:os";
import { Writable } from "node:stream";
import { Worker } from "node:worker_threads";
import { WRITE_PIECE } from "./fs";

/**
 * Large downloads are hashed (sha256) and written to their file on worker threads, so the main
 * thread only receives: it copies the incoming chunks into 1 MiB batch buffers and transfers
 * them to a worker, which hashes each batch, writes it with plain write() calls of at most
 * 64 KiB (see fileSink) and hands the buffer back for reuse. Measured on a 500 MiB pull (2
 * cores): hashing and writing on the main thread's side (a hashing pass-through into a file
 * stream, each write a round trip through libuv's thread pool) took ~1.2 s of CPU, the
 * worker ~0.9 s; reused buffers also spare a fresh megabyte (page faults, garbage) per batch.
 */
const BATCH_BYTES = 1 << 20;

/** Batches of one file sent and not yet handed back; more makes the writer wait (backpressure). */
const MAX_IN_FLIGHT = 4;

// Inline source: works from the compiled dist and from TypeScript run by the test runner alike.
// The worker writes to a file descriptor the main thread opened and closes only after the
// worker acknowledged the job's end or abort, so no write can land in a reused descriptor.
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { writeSync } = require("node:fs");
const { createHash } = require("node:crypto");
const jobs = new Map();
function writeAll(fd, bytes) {
  for (let offset = 0; offset < bytes.length; ) {
    const n = writeSync(fd, bytes, offset, Math.min(${WRITE_PIECE}, bytes.length - offset));
    if (n === 0) throw Object.assign(new Error("the write stored no bytes"), { code: "EIO" });
    offset += n;
  }
}
parentPort.on("message", (m) => {
  const j = jobs.get(m.id);
  if (m.type === "start") jobs.set(m.id, { fd: m.fd, hash: createHash("sha256"), size: 0, failed: false });
  else if (m.type === "data") {
    if (j && !j.failed) {
      const bytes = new Uint8Array(m.buffer, 0, m.length);
      j.hash.update(bytes);
      j.size += m.length;
      try {
        writeAll(j.fd, bytes);
      } catch (err) {
        j.failed = true;
        parentPort.postMessage({ type: "failed", id: m.id, message: err.message, code: err.code });
      }
    }
    parentPort.postMessage({ type: "spare", id: m.id, buffer: m.buffer }, [m.buffer]);
  } else if (m.type === "end") {
    jobs.delete(m.id);
    parentPort.postMessage({ type: "done", id: m.id, digest: "sha256:" + j.hash.digest("hex"), size: j.size });
  } else if (m.type === "abort") {
    jobs.delete(m.id);
    parentPort.postMessage({ type: "aborted", id: m.id });
  }
});
`;

/**
 * `sha256:<hex>`: the same shape as engine/image's `Digest`, spelled out here because util is the
 * bottom floor and imports nothing from image (the two types are interchangeable).
 */
type Digest = `sha256:${string}`;

type Result = { digest: Digest; size: number };

type WorkerMessage =
  | { type: "spare"; id: number; buffer: ArrayBuffer }
  | { type: "failed"; id: number; message: string; code?: string }
  | { type: "done"; id: number; digest: Digest; size: number }
  | { type: "aborted"; id: number };

interface Job {
  id: number;
  worker: Worker;
  inFlight: number;
  /** Called when fewer than MAX_IN_FLIGHT batches are out again. */
  wake: (() => void) | undefined;
  onFailed(err: Error): void;
  /** The job's end (`done`) or abort acknowledged by its worker. */
  settle?: { resolve(r: Result | undefined): void; reject(e: Error): void };
}

/** Spare batch buffers kept while jobs are open: enough for a few files in flight. */
const MAX_SPARE = 8;

class WriterPool {
  private readonly workers: Worker[] = [];
  private readonly load = new Map<Worker, number>();
  private readonly jobs = new Map<number, Job>();
  private spare: ArrayBuffer[] = [];
  private nextId = 0;

  constructor(private readonly size: number) {}

  /**
   * Starts every worker the pool may have, idle: a worker's start-up (a thread, an isolate,
   * its modules) takes 0.1-0.3 s on a busy machine, and a file's first batches wait for it.
   */
  warm(): void {
    while (this.workers.length < this.size) this.spawn();
  }

  /** Workers started so far (tests look at it). */
  get started(): number {
    return this.workers.length;
  }

  /** Opens a job writing to `fd` on the least loaded worker. */
  start(fd: number, onFailed: (err: Error) => void): Job {
    const worker = this.pick();
    const job: Job = { id: this.nextId++, worker, inFlight: 0, wake: undefined, onFailed };
    this.jobs.set(job.id, job);
    this.load.set(worker, (this.load.get(worker) ?? 0) + 1);
    worker.ref();
    worker.postMessage({ type: "start", id: job.id, fd });
    return job;
  }

  /** A batch buffer of BATCH_BYTES: a recycled one when the workers have handed one back. */
  buffer(): ArrayBuffer {
    return this.spare.pop() ?? new ArrayBuffer(BATCH_BYTES);
  }

  /** Hands the first `length` bytes of `buffer` to the job's worker; the buffer is gone from this thread. */
  feed(job: Job, buffer: ArrayBuffer, length: number): void {
    job.inFlight++;
    job.worker.postMessage({ type: "data", id: job.id, buffer, length }, [buffer]);
  }

  /** Digest and size of everything fed, once the worker has written it all. */
  finish(job: Job): Promise<Result> {
    return this.settle(job, "end") as Promise<Result>;
  }

  /** Resolves once the worker has dropped the job: it writes nothing more to the file. */
  async abort(job: Job): Promise<void> {
    await this.settle(job, "abort").catch(() => undefined);
  }

  private settle(job: Job, type: "end" | "abort"): Promise<Result | undefined> {
    return new Promise((resolve, reject) => {
      job.settle = { resolve, reject };
      job.worker.postMessage({ type, id: job.id });
    });
  }

  private release(job: Job): void {
    this.jobs.delete(job.id);
    const left = (this.load.get(job.worker) ?? 1) - 1;
    this.load.set(job.worker, left);
    // An idle worker must not keep the process alive, nor idle buffers hold memory.
    if (left <= 0) job.worker.unref();
    if (this.jobs.size === 0) this.spare = [];
  }

  private pick(): Worker {
    const idle = this.workers.find((w) => (this.load.get(w) ?? 0) === 0);
    if (idle) return idle;
    if (this.workers.length < this.size) return this.spawn();
    return this.workers.reduce((a, b) => ((this.load.get(a) ?? 0) <= (this.load.get(b) ?? 0) ? a : b));
  }

  private onMessage(msg: WorkerMessage): void {
    const job = this.jobs.get(msg.id);
    if (msg.type === "spare") {
      if (this.jobs.size > 0 && this.spare.length < MAX_SPARE) this.spare.push(msg.buffer);
      if (!job) return;
      job.inFlight--;
      if (job.wake && job.inFlight < MAX_IN_FLIGHT) {
        const wake = job.wake;
        job.wake = undefined;
        wake();
      }
      return;
    }
    if (!job) return;
    if (msg.type === "failed") {
      job.onFailed(Object.assign(new Error(msg.message), msg.code ? { code: msg.code } : {}));
      return;
    }
    this.release(job);
    job.settle?.resolve(msg.type === "done" ? { digest: msg.digest, size: msg.size } : undefined);
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on("message", (msg: WorkerMessage) => this.onMessage(msg));
    worker.on("error", (err) => {
      // A dead worker fails the jobs it held (it writes nothing more); later jobs get a new one.
      this.workers.splice(this.workers.indexOf(worker), 1);
      const failure = new Error(`hashing and writing failed: ${err.message}`);
      for (const job of [...this.jobs.values()]) {
        if (job.worker !== worker) continue;
        this.release(job);
        job.onFailed(failure);
        job.settle?.reject(failure);
      }
    });
    this.workers.push(worker);
    return worker;
  }
}

let pool: WriterPool | undefined;

function writerPool(): WriterPool {
  pool ??= new WriterPool(Math.max(1, Math.min(2, availableParallelism())));
  return pool;
}

/**
 * Starts the hashing workers ahead of the first large file (a pull calls it before it asks for
 * the manifest, so their start-up overlaps the registry's round trips). Idle workers do not
 * keep the process alive.
 */
export function startHashingWorkers(): void {
  writerPool().warm();
}

/** Hashing workers started so far in this process (tests and benchmarks look at it). */
export function hashingWorkersStarted(): number {
  return pool?.started ?? 0;
}

/**
 * A new file (`path`, created or truncated) that the bytes written to this stream go into,
 * hashed and written on a worker thread; `result()` gives their digest and size once the
 * stream has finished (every byte is in the file then; it is not fsynced).
 */
export class HashingFileSink extends Writable {
  private fd: number | undefined;
  private closing: Promise<Error | null> | undefined;
  private job: Job | undefined;
  private batch: Uint8Array | undefined;
  private batchBytes = 0;
  private outcome: Result | undefined;
  /** The end of the job, from _final on: the descriptor stays open until it is settled. */
  private ending: Promise<unknown> | undefined;

  constructor(private readonly path: string) {
    super({ highWaterMark: 1 << 20 });
  }

  override _construct(done: (err?: Error | null) => void): void {
    open(this.path, "w", 0o666, (err, fd) => {
      if (err) return done(err);
      this.fd = fd;
      this.job = writerPool().start(fd, (failure) => this.destroy(failure));
      done();
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    const job = this.job!;
    for (let offset = 0; offset < chunk.length;) {
      this.batch ??= new Uint8Array(pool!.buffer());
      const n = Math.min(BATCH_BYTES - this.batchBytes, chunk.length - offset);
      this.batch.set(chunk.subarray(offset, offset + n), this.batchBytes);
      this.batchBytes += n;
      offset += n;
      if (this.batchBytes === BATCH_BYTES) this.post();
    }
    if (job.inFlight < MAX_IN_FLIGHT) done();
    else job.wake = () => done();
  }

  override _final(done: (err?: Error | null) => void): void {
    this.post();
    const job = this.job!;
    this.job = undefined;
    const ending = pool!.finish(job);
    this.ending = ending.catch(() => undefined);
    ending.then(
      (result) => {
        this.outcome = result;
        this.closeFile(done);
      },
      (err: Error) => this.closeFile(() => done(err)),
    );
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    const job = this.job;
    this.job = undefined;
    // The descriptor is closed only once the worker has let go of it.
    const stopped = job ? pool!.abort(job) : (this.ending ?? Promise.resolve());
    void stopped.then(() => this.closeFile((closeErr) => done(err ?? closeErr ?? null)));
  }

  /** The digest and size of everything written; only valid after the stream finished. */
  result(): Result {
    if (!this.outcome) throw new Error("internal: hash requested before the file was written");
    return this.outcome;
  }

  private post(): void {
    if (!this.batch || this.batchBytes === 0) return;
    // The batch buffer is our own ArrayBuffer (never a slice of Node's shared pool), so it can
    // be transferred; the worker hands it back for reuse.
    pool!.feed(this.job!, this.batch.buffer as ArrayBuffer, this.batchBytes);
    this.batch = undefined;
    this.batchBytes = 0;
  }

  /** Closes the file once; a second caller (end and destroy can meet) waits for the same close. */
  private closeFile(done: (err?: Error | null) => void): void {
    if (!this.closing) {
      const fd = this.fd;
      this.fd = undefined;
      this.closing = new Promise((resolve) => (fd === undefined ? resolve(null) : close(fd, (err) => resolve(err))));
    }
    void this.closing.then((err) => done(err));
  }
}
