import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { build } from "../../../src/engine/build";
import { pullImage, pushImage } from "../../../src/engine/image/transfer";
import { Session } from "../../../src/engine/session";
import type { Digest } from "../../../src/engine/image/digest";
import { blobDataPath, sharedRegistries } from "../../support/registry";

const temps: string[] = [];
async function temp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

async function builtImage(session: Session, tag: string, platforms?: string[], randomBytesPerFile = 0): Promise<Digest> {
  const ctx = await temp("sealant-transfer-ctx-");
  await writeFile(join(ctx, "Kubefile"), "FROM scratch\nCOPY data-${ARCH}.bin data.bin\n");
  for (const arch of ["amd64", "arm64"]) {
    await writeFile(
      join(ctx, `data-${arch}.bin`),
      Buffer.concat([Buffer.from(`${tag} ${arch} ${Math.random()}\n`.repeat(1000)), randomBytes(randomBytesPerFile)]),
    );
  }
  const r = await build(session, {
    context: ctx,
    tag,
    ...(platforms ? { platforms: platforms.map((a) => ({ os: "linux", architecture: a })) } : {}),
  });
  return r.digest;
}

describe("pull", () => {
  // Small blobs are hashed while streaming, large ones (> 4 MiB) on a worker thread after writing.
  it.each([
    ["small", 0],
    ["large", 6 << 20],
  ])("refuses a %s blob whose content does not match its digest and leaves no image behind", async (_label, extra) => {
    // GIVEN an image pushed to a real registry, then one of its layers corrupted on the registry's disk
    const reg = sharedRegistries().upstream;
    const src = await Session.open({ home: await temp("sealant-src-") });
    await builtImage(src, "corrupt/app:1", undefined, extra);
    await pushImage(src.store, "corrupt/app:1", { clientFor: src.clientFor, destination: `${reg.host}/corrupt/app:1` });
    const { manifest } = await src.store.manifestFor((await src.store.resolve("corrupt/app:1")).descriptor);
    const layer = manifest.layers[0]!;
    const data = await src.store.readBlob(layer.digest);
    data[data.length - 10] ^= 0xff;
    await writeFile(blobDataPath(reg.storageDir, layer.digest), data);
    // WHEN a fresh store pulls it
    const dst = await Session.open({ home: await temp("sealant-dst-") });
    // THEN the pull fails naming the blob, and the store shows nothing and holds no such blob
    await expect(pullImage(dst.store, `${reg.host}/corrupt/app:1`, { clientFor: dst.clientFor })).rejects.toThrow(/digest mismatch/);
    expect(await dst.store.list()).toEqual([]);
    expect(await dst.store.hasBlob(layer.digest)).toBe(false);
    src.close();
    dst.close();
  });
});

describe("pull order", () => {
  it("starts the largest blobs first, whatever their order in the manifest (the config comes first there)", async () => {
    // GIVEN an image whose layer is larger than its config, in a real registry
    const reg = sharedRegistries().upstream;
    const src = await Session.open({ home: await temp("sealant-src-") });
    await builtImage(src, "order/app:1", undefined, 1 << 20);
    await pushImage(src.store, "order/app:1", { clientFor: src.clientFor, destination: `${reg.host}/order/app:1` });
    const { manifest } = await src.store.manifestFor((await src.store.resolve("order/app:1")).descriptor);
    // WHEN a fresh store pulls it one blob at a time
    const dst = await Session.open({ home: await temp("sealant-dst-") });
    const started: Digest[] = [];
    await pullImage(dst.store, `${reg.host}/order/app:1`, {
      clientFor: dst.clientFor,
      concurrency: 1,
      onEvent: (e) => {
        if (e.type === "blob" && e.state === "start") started.push(e.digest);
      },
    });
    // THEN the layer started before the config
    expect(started).toEqual([manifest.layers[0]!.digest, manifest.config.digest]);
    src.close();
    dst.close();
  });
});

describe("multi-platform push and pull", () => {
  it("round-trips an index with every platform, or one platform when asked", async () => {
    const reg = sharedRegistries().upstream;
    const src = await Session.open({ home: await temp("sealant-src-") });
    const digest = await builtImage(src, "multi/app:1", ["amd64", "arm64"]);
    const pushed = await pushImage(src.store, "multi/app:1", { clientFor: src.clientFor, destination: `${reg.host}/multi/app:1` });
    expect(pushed.digest).toBe(digest);
    // all platforms
    const all = await Session.open({ home: await temp("sealant-all-") });
    const pulledAll = await pullImage(all.store, `${reg.host}/multi/app:1`, { clientFor: all.clientFor });
    expect(pulledAll.digest).toBe(digest);
    expect((await all.store.readIndexBlob(digest)).manifests).toHaveLength(2);
    // one platform: that platform's manifest, stored under the name
    const one = await Session.open({ home: await temp("sealant-one-") });
    const pulledOne = await pullImage(one.store, `${reg.host}/multi/app:1`, { clientFor: one.clientFor, platform: { os: "linux", architecture: "arm64" } });
    const index = await src.store.readIndexBlob(digest);
    expect(pulledOne.digest).toBe(index.manifests.find((m) => m.platform?.architecture === "arm64")!.digest);
    // pushing again sends no blob
    const again = await pushImage(src.store, "multi/app:1", { clientFor: src.clientFor, destination: `${reg.host}/multi/app:1` });
    expect(again.blobs.transferred).toBe(0);
    for (const s of [src, all, one]) s.close();
  });
});
