import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import type { Digest } from "../../../../src/engine/image/digest";
import { RegistryClient } from "../../../../src/engine/image/registry";
import { sharedRegistries } from "../../../support/registry";

const MiB = 1024 * 1024;
const { upstream } = sharedRegistries();
const client = new RegistryClient(upstream.host, { chunkSize: 8 * MiB });
afterAll(() => client.close());

/** A reproducible stream of `mib` MiB, generated piece by piece (never whole in memory). */
function generated(mib: number, base: Buffer): () => Readable {
  return () =>
    Readable.from(
      (function* () {
        for (let i = 0; i < mib; i++) {
          const piece = Buffer.from(base);
          piece.writeUInt32BE(i, 0);
          yield piece;
        }
      })(),
      { objectMode: false },
    );
}

async function digestOf(stream: Readable): Promise<{ digest: Digest; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    hash.update(c);
    size += c.length;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

/** Peak of Node's ArrayBuffer memory (where Buffers live) while `fn` runs. */
async function peakBufferMemory<T>(fn: () => Promise<T>): Promise<{ result: T; peak: number }> {
  const start = process.memoryUsage().arrayBuffers;
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers - start)), 5);
  try {
    const result = await fn();
    return { result, peak };
  } finally {
    clearInterval(timer);
  }
}

describe("large blobs are streamed", () => {
  it.each([
    ["monolithic", false],
    ["chunked", true],
  ])("GIVEN a 128 MiB blob WHEN pushed %s and pulled THEN it round-trips without being held in memory whole", async (_name, chunked) => {
    const open = generated(128, randomBytes(MiB));
    const desc = await digestOf(open());
    const repo = `streaming/big-${chunked ? "chunked" : "mono"}-${process.pid}-${Date.now().toString(36)}`;

    const pushed = await peakBufferMemory(() => client.pushBlob(repo, desc, open, { chunked }));
    const pulled = await peakBufferMemory(async () => digestOf(await client.openBlob(repo, desc.digest, { size: desc.size })));

    expect(pushed.result).toBe("uploaded");
    expect(pulled.result).toEqual(desc);
    // Held whole, the blob alone would be 128 MiB; what is measured is in-flight data plus
    // garbage the GC has not collected yet (typically 20-35 MiB here).
    expect(pushed.peak).toBeLessThan(80 * MiB);
    expect(pulled.peak).toBeLessThan(80 * MiB);
  });
});
