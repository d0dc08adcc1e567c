import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { WorkerHashingStream } from "../../../src/engine/util/worker-hash";

async function hashThrough(chunks: Buffer[]): Promise<{ digest: string; size: number; passed: Buffer }> {
  const hasher = new WorkerHashingStream();
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    hasher,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  return { ...(await hasher.result()), passed: Buffer.concat(out) };
}

describe("hashing on a worker thread", () => {
  // Sizes around the 1 MiB batch and Node's 4 KiB buffer-pool limit, where a pooled slice
  // would make the transfer to the worker fail.
  it.each([
    ["empty", [0]],
    ["tiny", [1]],
    ["pool-sized tail", [1 << 20, 100]],
    ["exact batch", [1 << 20]],
    ["many small chunks", Array.from({ length: 3000 }, () => 997)],
    ["large odd", [3 << 20, 12345, 7]],
  ])("gives the same digest as an inline sha256 and passes every byte on (%s)", async (_name, sizes) => {
    const chunks = (sizes as number[]).map((n) => randomBytes(n));
    const whole = Buffer.concat(chunks);
    const r = await hashThrough(chunks);
    expect(r.digest).toBe(`sha256:${createHash("sha256").update(whole).digest("hex")}`);
    expect(r.size).toBe(whole.length);
    expect(r.passed.equals(whole)).toBe(true);
  });
});
