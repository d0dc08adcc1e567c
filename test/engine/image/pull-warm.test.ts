/**
 * A pull starts the hashing workers (large blobs are hashed and written on them) before it asks
 * for the manifest, so their start-up — 0.1-0.3 s each on a busy machine — overlaps the
 * registry's round trips instead of holding up the first large blob's data.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { build } from "../../../src/engine/build";
import { pullImage, pushImage } from "../../../src/engine/image/transfer";
import { Session } from "../../../src/engine/session";
import { hashingWorkersStarted } from "../../../src/engine/util/worker-hash";
import { sharedRegistries } from "../../support/registry";

const temps: string[] = [];
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});
async function temp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

describe("pull start-up", () => {
  it("GIVEN a fresh process and an image of small blobs WHEN it is pulled THEN the hashing workers were started up front, ready for large blobs", async () => {
    const reg = sharedRegistries().upstream;
    const src = await Session.open({ home: await temp("sealant-warm-src-") });
    const ctx = await temp("sealant-warm-ctx-");
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nCOPY data.bin data.bin\n");
    await writeFile(join(ctx, "data.bin"), `warm ${Math.random()}\n`.repeat(100));
    await build(src, { context: ctx, tag: "warm/app:1" });
    await pushImage(src.store, "warm/app:1", { clientFor: src.clientFor, destination: `${reg.host}/warm/app:1` });
    // No blob of this image is large enough for a worker: before this change none was started.
    expect(hashingWorkersStarted()).toBe(0);
    const dst = await Session.open({ home: await temp("sealant-warm-dst-") });
    await pullImage(dst.store, `${reg.host}/warm/app:1`, { clientFor: dst.clientFor });
    expect(hashingWorkersStarted()).toBe(Math.min(2, availableParallelism()));
    expect((await dst.store.list()).map((i) => i.ref)).toContain(`${reg.host}/warm/app:1`);
  });
});
