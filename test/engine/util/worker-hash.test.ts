import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { readdirSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HashingFileSink } from "../../../src/engine/util/worker-hash";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sealant-worker-hash-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function writeThrough(chunks: Buffer[]): Promise<{ digest: string; size: number; file: Buffer }> {
  const path = join(dir, `file-${n++}`);
  const sink = new HashingFileSink(path);
  await pipeline(Readable.from(chunks), sink);
  return { ...sink.result(), file: await readFile(path) };
}

/** Open file descriptors of this process. */
function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

describe("hashing and writing a file on a worker thread", () => {
  // Sizes around the 1 MiB batch and Node's 4 KiB buffer-pool limit, where a pooled slice
  // would make the transfer to the worker fail.
  it.each([
    ["empty", [0]],
    ["tiny", [1]],
    ["pool-sized tail", [1 << 20, 100]],
    ["exact batch", [1 << 20]],
    ["many small chunks", Array.from({ length: 3000 }, () => 997)],
    ["large odd", [3 << 20, 12345, 7]],
  ])("gives the same digest as an inline sha256 and writes every byte (%s)", async (_name, sizes) => {
    const chunks = (sizes as number[]).map((s) => randomBytes(s));
    const whole = Buffer.concat(chunks);
    const r = await writeThrough(chunks);
    expect(r.digest).toBe(`sha256:${createHash("sha256").update(whole).digest("hex")}`);
    expect(r.size).toBe(whole.length);
    expect(r.file.equals(whole)).toBe(true);
  });

  it("keeps several files apart when they are written at once (more files than workers, buffers reused)", async () => {
    const contents = Array.from({ length: 6 }, (_, i) => Array.from({ length: 9 }, () => randomBytes(700_000 + i)));
    const results = await Promise.all(contents.map((chunks) => writeThrough(chunks)));
    results.forEach((r, i) => {
      const whole = Buffer.concat(contents[i]!);
      expect(r.digest).toBe(`sha256:${createHash("sha256").update(whole).digest("hex")}`);
      expect(r.file.equals(whole)).toBe(true);
    });
  });

  it("fails with the disk's error when a write fails, and closes the file", async () => {
    const before = openFds();
    // /dev/full: a real device whose every write fails with ENOSPC, as a full disk would.
    const sink = new HashingFileSink("/dev/full");
    await expect(pipeline(Readable.from([randomBytes(3 << 20)]), sink)).rejects.toThrow(/ENOSPC|no space/);
    // The pipeline fails at the first error; the sink closes once the worker has let go.
    if (!sink.closed) await once(sink, "close");
    expect(openFds()).toBe(before);
  });

  it("closes the file when the source fails midway (after the worker has let go of it)", async () => {
    const before = openFds();
    const path = join(dir, "broken");
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent++ < 3) this.push(randomBytes(1 << 20));
        else this.destroy(new Error("the connection closed"));
      },
    });
    const sink = new HashingFileSink(path);
    await expect(pipeline(source, sink)).rejects.toThrow("the connection closed");
    if (!sink.closed) await once(sink, "close");
    expect(openFds()).toBe(before);
  });
});
