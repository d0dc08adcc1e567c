import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { sha256 } from "../../../src/engine/image/digest";
import { MediaType } from "../../../src/engine/image/media-types";
import { ImageStore } from "../../../src/engine/image/store";

const temps: string[] = [];
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

describe("blobs streamed in at the same time", () => {
  it("each land whole under their own digest when their digests are not known up front (layers of builds running at once)", async () => {
    // GIVEN one store, as two builds in one process (Pulumi's parallel ImageBuilds) or two `sealant build`s share it
    const home = await mkdtemp(join(tmpdir(), "sealant-blobs-"));
    temps.push(home);
    const store = await ImageStore.open(home);
    const layers = Array.from({ length: 8 }, () => randomBytes(3 << 20));
    // WHEN eight layers of unknown digest stream in at once, each in two chunks
    const stored = await Promise.all(layers.map((l) => store.putBlobStream(Readable.from([l.subarray(0, 1 << 20), l.subarray(1 << 20)]), { what: "layer" })));
    // THEN each is stored under its own digest with its own bytes, and no temp file is left
    expect(stored.map((s) => s.digest)).toEqual(layers.map((l) => sha256(l)));
    for (const l of layers) expect(sha256(await store.readBlob(sha256(l)))).toBe(sha256(l));
    expect((await readdir(join(store.root, "blobs", "sha256"))).filter((n) => n.startsWith("."))).toEqual([]);
  });
});

describe("a source that fails", () => {
  it.each([
    ["small, digest unknown", {}],
    ["large, digest known (hashed on a worker)", { digest: `sha256:${"a".repeat(64)}` as const, size: 8 << 20 }],
  ])("before the write has started (%s): the put fails with its error, nothing is left, and the process does not crash", async (_what, expected) => {
    const home = await mkdtemp(join(tmpdir(), "sealant-blobs-"));
    temps.push(home);
    const store = await ImageStore.open(home);
    // GIVEN a source that fails at once — before the store's pipeline is listening (it creates the directory first)
    const source = new Readable({ read() {} });
    process.nextTick(() => source.destroy(new Error("connection reset by the registry")));
    // WHEN it is streamed in THEN the put rejects with that error (an unhandled 'error' would fail this test file)
    await expect(store.putBlobStream(source, { ...expected, what: "layer" })).rejects.toThrow("connection reset by the registry");
    expect((await readdir(join(store.root, "blobs", "sha256"))).filter((n) => n.startsWith("."))).toEqual([]);
  });
});

describe("naming an image", () => {
  it("refuses a name for an image one of whose blobs is gone, and leaves the names as they were", async () => {
    // GIVEN an image's manifest and config stored, and its layer deleted (as a prune beside the writer would)
    const home = await mkdtemp(join(tmpdir(), "sealant-blobs-"));
    temps.push(home);
    const store = await ImageStore.open(home);
    const layer = await store.putBlob(randomBytes(100));
    const config = await store.putJson({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }, MediaType.ociConfig);
    const manifest = await store.putJson(
      { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [{ ...layer, mediaType: MediaType.ociLayerGzip }] },
      MediaType.ociManifest,
    );
    await rm(store.blobPath(layer.digest));
    // WHEN it is to be named
    // THEN one error names the image and the missing blob, and no name was set
    await expect(store.setTag("app:1", manifest)).rejects.toThrow(
      `cannot name docker.io/library/app:1: its blob ${layer.digest} is missing from the local store`,
    );
    expect(await store.list()).toEqual([]);
  });
});
