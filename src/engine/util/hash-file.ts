import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { Digest } from "../image/digest";

/**
 * sha256 of a file on worker threads, so verifying a large download does not compete with the
 * main thread that is receiving and writing the next ones. Small files are hashed inline: a
 * worker round trip costs more than hashing a few hundred KiB.
 */
const INLINE_LIMIT = 1 << 20;

// Inline source: works from the compiled dist and from TypeScript run by the test runner alike.
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const { createReadStream } = require("node:fs");
parentPort.on("message", ({ id, path }) => {
  const hash = createHash("sha256");
  let size = 0;
  createReadStream(path, { highWaterMark: 1 << 20 })
    .on("data", (chunk) => { size += chunk.length; hash.update(chunk); })
    .on("end", () => parentPort.postMessage({ id, digest: "sha256:" + hash.digest("hex"), size }))
    .on("error", (err) => parentPort.postMessage({ id, error: err.message }));
});
`;

interface Job {
  resolve(r: { digest: Digest; size: number }): void;
  reject(err: Error): void;
}

class HashPool {
  private readonly workers: Worker[] = [];
  private readonly busy = new Map<Worker, number>();
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;

  constructor(private readonly size: number) {}

  hash(path: string): Promise<{ digest: Digest; size: number }> {
    const worker = this.pick();
    const id = this.nextId++;
    this.busy.set(worker, (this.busy.get(worker) ?? 0) + 1);
    worker.ref();
    return new Promise((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
      worker.postMessage({ id, path });
    });
  }

  private pick(): Worker {
    const idle = this.workers.find((w) => (this.busy.get(w) ?? 0) === 0);
    if (idle) return idle;
    if (this.workers.length < this.size) return this.spawn();
    return this.workers.reduce((a, b) => ((this.busy.get(a) ?? 0) <= (this.busy.get(b) ?? 0) ? a : b));
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on("message", (msg: { id: number; digest?: Digest; size?: number; error?: string }) => {
      const job = this.jobs.get(msg.id);
      this.jobs.delete(msg.id);
      const left = (this.busy.get(worker) ?? 1) - 1;
      this.busy.set(worker, left);
      // An idle worker must not keep the process alive.
      if (left === 0) worker.unref();
      if (!job) return;
      if (msg.error !== undefined) job.reject(new Error(`hashing failed: ${msg.error}`));
      else job.resolve({ digest: msg.digest!, size: msg.size! });
    });
    worker.on("error", (err) => {
      // A dead worker fails what it held; the next job gets a new one.
      this.workers.splice(this.workers.indexOf(worker), 1);
      for (const [id, job] of this.jobs) {
        job.reject(err);
        this.jobs.delete(id);
      }
    });
    this.workers.push(worker);
    return worker;
  }
}

let pool: HashPool | undefined;

export async function hashFile(path: string, knownSize?: number): Promise<{ digest: Digest; size: number }> {
  if (knownSize !== undefined && knownSize <= INLINE_LIMIT) {
    const hash = createHash("sha256");
    let size = 0;
    for await (const chunk of createReadStream(path)) {
      size += (chunk as Buffer).length;
      hash.update(chunk as Buffer);
    }
    return { digest: `sha256:${hash.digest("hex")}`, size };
  }
  pool ??= new HashPool(Math.max(1, Math.min(2, availableParallelism())));
  return pool.hash(path);
}
