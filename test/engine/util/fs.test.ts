import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileSink, writeStreamAtomic } from "../../../src/engine/util/fs";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sealant-fs-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** write() system calls made by this process so far (all threads): the kernel's own count. */
function writeCalls(): number {
  const line = readFileSync("/proc/self/io", "utf8")
    .split("\n")
    .find((l) => l.startsWith("syscw:"));
  return Number(line!.split(/\s+/)[1]);
}

describe("writing a stream into a file", () => {
  it.each([
    ["empty", [0]],
    ["one byte", [1]],
    ["one piece exactly", [64 * 1024]],
    ["a piece and a byte", [64 * 1024 + 1]],
    ["large chunks", [3 << 20, 777, 1 << 20]],
    ["many small chunks", Array.from({ length: 500 }, () => 1000)],
  ])("stores every byte in order (%s)", async (name, sizes) => {
    const chunks = (sizes as number[]).map((n) => randomBytes(n));
    const path = join(dir, `sink-${name.replace(/ /g, "-")}`);
    await pipeline(Readable.from(chunks), fileSink(path));
    expect((await readFile(path)).equals(Buffer.concat(chunks))).toBe(true);
  });

  it("writes a large chunk in pieces of at most 64 KiB, not in one large write", async () => {
    // One 1 MiB write costs the kernel several times what sixteen 64 KiB writes do (large
    // page cache folios; see fileSink). Counted by the kernel, so other writes of this process
    // can only add to the count.
    const before = writeCalls();
    await writeStreamAtomic(join(dir, "pieces"), Readable.from([randomBytes(1 << 20)]));
    expect(writeCalls() - before).toBeGreaterThanOrEqual(16);
  });

  it("fails with the disk's error and leaves no temp file behind", async () => {
    // /dev/full: a real device whose every write fails with ENOSPC, as a full disk would.
    await expect(pipeline(Readable.from([randomBytes(100_000)]), fileSink("/dev/full"))).rejects.toThrow(/ENOSPC/);
    const target = join(dir, "failing", "blob");
    const failing = new Readable({
      read() {
        this.destroy(new Error("the connection closed"));
      },
    });
    await expect(writeStreamAtomic(target, failing)).rejects.toThrow("the connection closed");
    expect(await readdir(join(dir, "failing"))).toEqual([]);
  });

  it("creates the file with the usual mode (0666 less the umask)", async () => {
    const path = join(dir, "mode");
    await pipeline(Readable.from([Buffer.from("x")]), fileSink(path));
    const umask = process.umask();
    expect((await stat(path)).mode & 0o777).toBe(0o666 & ~umask);
  });
});
