import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { gzipSync } from "node:zlib";
import * as tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadArchive, saveArchive, type ArchiveProgress } from "../../../../src/engine/image/archive";
import { sha256 } from "../../../../src/engine/image/digest";
import { MediaType } from "../../../../src/engine/image/media-types";
import { ImageStore } from "../../../../src/engine/image/store";
import type { Descriptor, ImageConfig, Index, Manifest } from "../../../../src/engine/image/types";
import * as tools from "../../../support/tools";

// ---- helpers ----

let work: string;

/** skopeo with a permissive temp policy (test/support/tools.ts), as the independent judge. */
function skopeo(...args: string[]): Promise<string> {
  return tools.skopeo(args);
}

let counter = 0;
async function tempDir(name: string): Promise<string> {
  return mkdtemp(join(work, `${name}-${counter++}-`));
}

async function newStore(): Promise<ImageStore> {
  return ImageStore.open(await tempDir("home"));
}

/** A real gzip'd layer tar holding one file of random bytes (skopeo copies it unchanged). */
async function putLayer(store: ImageStore, bytes = 4096): Promise<{ desc: Descriptor; diffId: string }> {
  const pack = tar.pack();
  pack.entry({ name: `file-${randomBytes(4).toString("hex")}`, mode: 0o644, mtime: new Date(0) }, randomBytes(bytes));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
  const raw = Buffer.concat(chunks);
  const gz = gzipSync(raw);
  const { digest, size } = await store.putBlob(gz);
  return { desc: { mediaType: MediaType.ociLayerGzip, digest, size }, diffId: sha256(raw) };
}

async function putManifest(store: ImageStore, layers: Array<{ desc: Descriptor; diffId: string }>, arch = "amd64"): Promise<Descriptor> {
  const config: ImageConfig = {
    architecture: arch,
    os: "linux",
    config: { Labels: { "test.nonce": randomBytes(8).toString("hex") } },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId as `sha256:${string}`) },
  };
  const configDesc = await store.putJson(config, MediaType.ociConfig);
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDesc, layers: layers.map((l) => l.desc) };
  return store.putJson(manifest, MediaType.ociManifest);
}

async function makeImage(store: ImageStore, ref: string, shared: Array<{ desc: Descriptor; diffId: string }> = []): Promise<Descriptor> {
  const own = await putLayer(store);
  const desc = await putManifest(store, [...shared, own]);
  await store.setTag(ref, desc);
  return desc;
}

async function makeMultiPlatform(store: ImageStore, ref: string): Promise<Descriptor> {
  const amd = await putManifest(store, [await putLayer(store)], "amd64");
  const arm = await putManifest(store, [await putLayer(store)], "arm64");
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      { ...amd, platform: { os: "linux", architecture: "amd64" } },
      { ...arm, platform: { os: "linux", architecture: "arm64" } },
    ],
  };
  const desc = await store.putJson(index, MediaType.ociIndex);
  await store.setTag(ref, desc);
  return desc;
}

async function tarEntries(file: string): Promise<Array<{ name: string; type: string; size: number }>> {
  const extract = tar.extract();
  const out: Array<{ name: string; type: string; size: number }> = [];
  const done = (async () => {
    for await (const entry of extract) {
      out.push({ name: entry.header.name, type: entry.header.type, size: entry.header.size });
      for await (const _ of entry) {
        // drain
      }
    }
  })();
  await pipeline(createReadStream(file), extract as unknown as NodeJS.WritableStream);
  await done;
  return out;
}

async function layoutIndex(dir: string): Promise<Index> {
  return JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as Index;
}

async function allBlobsPresent(store: ImageStore, desc: Descriptor): Promise<void> {
  for (const d of await store.reachable(desc)) {
    expect(await store.blobSize(d.digest), `blob ${d.digest}`).toBe(d.size);
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "sealant-archive-"));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

// ---- save, judged by skopeo ----

describe("saveArchive", () => {
  it("writes an OCI archive skopeo reads by full reference, with a shared layer stored once", async () => {
    // GIVEN two images in the store that share a layer
    const store = await newStore();
    const shared = await putLayer(store, 8192);
    const app = await makeImage(store, "app:1.0", [shared]);
    const web = await makeImage(store, "quay.io/team/web:2", [shared]);
    const out = join(await tempDir("out"), "images.tar");

    // WHEN both are saved into one archive (any spelling of the reference is accepted)
    const progress: ArchiveProgress[] = [];
    const result = await saveArchive(store, ["app:1.0", "quay.io/team/web:2"], out, { onProgress: (p) => progress.push(p) });

    // THEN index.json names each image by its full reference
    expect(result.images.map((i) => i.ref)).toEqual(["docker.io/library/app:1.0", "quay.io/team/web:2"]);
    const entries = await tarEntries(out);
    const names = entries.map((e) => e.name);
    expect(names.slice(0, 2)).toEqual(["oci-layout", "index.json"]);
    // AND every blob is in the tar exactly once, the shared layer included
    const blobNames = names.filter((n) => n.startsWith("blobs/sha256/") && n.length > "blobs/sha256/".length);
    expect(new Set(blobNames).size).toBe(blobNames.length);
    expect(blobNames.filter((n) => n.endsWith(shared.desc.digest.slice(7)))).toHaveLength(1);
    const expectedBlobs = new Set([...(await store.reachable(app)), ...(await store.reachable(web))].map((d) => d.digest));
    expect(blobNames.length).toBe(expectedBlobs.size);
    expect(result.blobs).toBe(expectedBlobs.size);
    // AND progress ends at the total
    const last = progress[progress.length - 1]!;
    expect(last.bytes).toBe(last.totalBytes);
    expect(last.blobs).toBe(expectedBlobs.size);

    // AND skopeo selects each image by its full name, with the digest unchanged
    const inspected = JSON.parse(await skopeo("inspect", `oci-archive:${out}:docker.io/library/app:1.0`)) as { Digest: string; Layers: string[] };
    expect(inspected.Digest).toBe(app.digest);
    expect(inspected.Layers).toContain(shared.desc.digest);
    for (const [ref, desc] of [
      ["docker.io/library/app:1.0", app],
      ["quay.io/team/web:2", web],
    ] as const) {
      const dir = await tempDir("copy");
      await skopeo("copy", `oci-archive:${out}:${ref}`, `oci:${dir}:t`);
      const idx = await layoutIndex(dir);
      expect(idx.manifests[0]!.digest).toBe(desc.digest);
    }
    // AND without a name skopeo refuses to guess in a multi-image archive
    await expect(skopeo("inspect", `oci-archive:${out}`)).rejects.toThrow();
  });

  it("a single-image archive is read by skopeo without a name", async () => {
    // GIVEN a saved single-image archive
    const store = await newStore();
    const desc = await makeImage(store, "registry.local:5000/ops/tool:v3");
    const out = join(await tempDir("out"), "one.tar");
    await saveArchive(store, ["registry.local:5000/ops/tool:v3"], out);
    // WHEN skopeo inspects it without selecting a name
    const inspected = JSON.parse(await skopeo("inspect", `oci-archive:${out}`)) as { Digest: string };
    // THEN it finds the image
    expect(inspected.Digest).toBe(desc.digest);
  });

  it("names an image by its stored name whatever spelling selected it (short, pinned, digest)", async () => {
    const store = await newStore();
    const desc = await makeImage(store, "app:1");
    const dir = await tempDir("out");
    for (const spelling of ["app:1", `app:1@${desc.digest}`, desc.digest.slice(7, 19)]) {
      const result = await saveArchive(store, [spelling], join(dir, "x.tar"));
      expect(result.images.map((i) => i.ref)).toEqual(["docker.io/library/app:1"]);
    }
    const inspected = JSON.parse(await skopeo("inspect", `oci-archive:${join(dir, "x.tar")}:docker.io/library/app:1`)) as { Digest: string };
    expect(inspected.Digest).toBe(desc.digest);
  });

  it("is reproducible: the same images give the same bytes", async () => {
    const store = await newStore();
    await makeImage(store, "app:1");
    const dir = await tempDir("out");
    await saveArchive(store, ["app:1"], join(dir, "a.tar"));
    await saveArchive(store, ["app:1"], join(dir, "b.tar"));
    expect(sha256(await readFile(join(dir, "a.tar")))).toBe(sha256(await readFile(join(dir, "b.tar"))));
  });

  it("streams into a Writable", async () => {
    // GIVEN an image and a plain file stream as destination
    const store = await newStore();
    const desc = await makeImage(store, "app:1");
    const out = join(await tempDir("out"), "stream.tar");
    // WHEN saved into the stream
    await saveArchive(store, ["app:1"], createWriteStream(out));
    // THEN skopeo reads the result
    const inspected = JSON.parse(await skopeo("inspect", `oci-archive:${out}`)) as { Digest: string };
    expect(inspected.Digest).toBe(desc.digest);
  });

  it("round-trips a multi-platform index through skopeo (copy --all) and back into a store", async () => {
    // GIVEN an index image for two platforms
    const store = await newStore();
    const desc = await makeMultiPlatform(store, "app:multi");
    const dir = await tempDir("out");
    const out = join(dir, "multi.tar");
    // WHEN saved, and copied by skopeo with --all to a layout and to another archive
    await saveArchive(store, ["app:multi"], out);
    const layout = await tempDir("layout");
    await skopeo("copy", "--all", `oci-archive:${out}:docker.io/library/app:multi`, `oci:${layout}:t`);
    const again = join(dir, "again.tar");
    await skopeo("copy", "--all", `oci-archive:${out}:docker.io/library/app:multi`, `oci-archive:${again}:docker.io/library/app:multi`);
    // THEN skopeo kept the index digest
    expect((await layoutIndex(layout)).manifests[0]!.digest).toBe(desc.digest);
    const raw = JSON.parse(await skopeo("inspect", "--raw", `oci-archive:${out}:docker.io/library/app:multi`)) as Index;
    expect(raw.manifests).toHaveLength(2);
    // AND loading skopeo's archive into a fresh store gives the same index with every blob
    const target = await newStore();
    const loaded = await loadArchive(target, again);
    expect(loaded).toEqual([
      { ref: "docker.io/library/app:multi", digest: desc.digest, mediaType: MediaType.ociIndex, size: desc.size, archiveName: "docker.io/library/app:multi" },
    ]);
    const stored = await target.resolve("app:multi");
    expect(stored.descriptor.digest).toBe(desc.digest);
    await allBlobsPresent(target, stored.descriptor);
    expect(await target.reachable(stored.descriptor)).toHaveLength(1 + 2 * 3);
  });
});

// ---- load of archives written by skopeo ----

describe("loadArchive of skopeo archives", () => {
  it("keeps a full reference written by skopeo", async () => {
    // GIVEN an archive skopeo made from an OCI layout (the source store is one) under a full name
    const src = await newStore();
    const desc = await makeImage(src, "quay.io/team/web:2");
    const out = join(await tempDir("out"), "skopeo.tar");
    await skopeo("copy", `oci:${src.root}:quay.io/team/web:2`, `oci-archive:${out}:quay.io/team/web:2`);
    // WHEN loaded without options
    const target = await newStore();
    const loaded = await loadArchive(target, out);
    // THEN the image has that name and its digest
    expect(loaded.map((l) => [l.ref, l.digest])).toEqual([["quay.io/team/web:2", desc.digest]]);
    expect((await target.resolve("quay.io/team/web:2")).descriptor.digest).toBe(desc.digest);
    await allBlobsPresent(target, desc);
  });

  it("refuses to guess a repository for a bare tag, and uses one when given", async () => {
    // GIVEN an archive written by `skopeo copy ... oci-archive:x.tar:1.0` (ref.name = "1.0")
    const src = await newStore();
    const desc = await makeImage(src, "app:1.0");
    const out = join(await tempDir("out"), "bare.tar");
    await skopeo("copy", `oci:${src.root}:docker.io/library/app:1.0`, `oci-archive:${out}:1.0`);
    const target = await newStore();

    // WHEN loaded without a repository THEN it fails, saying what to pass, and names nothing
    await expect(loadArchive(target, out)).rejects.toThrow(/bare tag "1\.0".*repository/);
    expect(await target.list()).toEqual([]);

    // WHEN loaded with a repository THEN the tag is kept under that repository
    const loaded = await loadArchive(target, out, { repository: "registry.local/team/app" });
    expect(loaded.map((l) => [l.ref, l.digest, l.archiveName])).toEqual([["registry.local/team/app:1.0", desc.digest, "1.0"]]);

    // AND --tag names it outright
    const other = await newStore();
    const tagged = await loadArchive(other, out, { tag: "app:prod" });
    expect(tagged.map((l) => l.ref)).toEqual(["docker.io/library/app:prod"]);
  });

  it("requires a name for an image skopeo archived without one", async () => {
    // GIVEN `skopeo copy ... oci-archive:x.tar` (no ref.name at all)
    const src = await newStore();
    const desc = await makeImage(src, "app:1.0");
    const out = join(await tempDir("out"), "noname.tar");
    await skopeo("copy", `oci:${src.root}:docker.io/library/app:1.0`, `oci-archive:${out}`);
    const target = await newStore();
    // WHEN loaded without a tag THEN it fails asking for one
    await expect(loadArchive(target, out)).rejects.toThrow(/has no name.*--tag/);
    expect(await target.list()).toEqual([]);
    // WHEN loaded with a tag THEN that is its name
    const loaded = await loadArchive(target, out, { tag: "localhost:5000/app:1.0" });
    expect(loaded.map((l) => [l.ref, l.digest])).toEqual([["localhost:5000/app:1.0", desc.digest]]);
  });

  it("save → skopeo oci-archive → oci-archive → load keeps every digest", async () => {
    // GIVEN two images saved by sealant
    const src = await newStore();
    const shared = await putLayer(src);
    const a = await makeImage(src, "app:1.0", [shared]);
    const b = await makeImage(src, "app:2.0", [shared]);
    const dir = await tempDir("out");
    await saveArchive(src, ["app:1.0", "app:2.0"], join(dir, "mine.tar"));
    // WHEN skopeo copies one of them to its own archive, and that is loaded
    await skopeo("copy", `oci-archive:${join(dir, "mine.tar")}:docker.io/library/app:2.0`, `oci-archive:${join(dir, "theirs.tar")}:docker.io/library/app:2.0`);
    const target = await newStore();
    const loaded = await loadArchive(target, join(dir, "theirs.tar"));
    // THEN the digest survived both trips
    expect(loaded.map((l) => [l.ref, l.digest])).toEqual([["docker.io/library/app:2.0", b.digest]]);
    await allBlobsPresent(target, b);
    // AND sealant's own archive loads both
    const both = await loadArchive(await newStore(), join(dir, "mine.tar"));
    expect(both.map((l) => [l.ref, l.digest])).toEqual([
      ["docker.io/library/app:1.0", a.digest],
      ["docker.io/library/app:2.0", b.digest],
    ]);
  });

  it("loads a gzip-compressed archive", async () => {
    const src = await newStore();
    const desc = await makeImage(src, "app:gz");
    const dir = await tempDir("out");
    await saveArchive(src, ["app:gz"], join(dir, "x.tar"));
    await writeFile(join(dir, "x.tar.gz"), gzipSync(await readFile(join(dir, "x.tar"))));
    const target = await newStore();
    const loaded = await loadArchive(target, join(dir, "x.tar.gz"));
    expect(loaded.map((l) => [l.ref, l.digest])).toEqual([["docker.io/library/app:gz", desc.digest]]);
    await allBlobsPresent(target, desc);
  });

  it("maps archive names explicitly and refuses one --tag for several images", async () => {
    const src = await newStore();
    const a = await makeImage(src, "app:1");
    const b = await makeImage(src, "app:2");
    const out = join(await tempDir("out"), "two.tar");
    await saveArchive(src, ["app:1", "app:2"], out);
    await expect(loadArchive(await newStore(), out, { tag: "x:1" })).rejects.toThrow(/holds 2 images/);
    const target = await newStore();
    const loaded = await loadArchive(target, out, { names: { "docker.io/library/app:1": "registry.local/app:one" } });
    expect(loaded.map((l) => [l.ref, l.digest])).toEqual([
      ["registry.local/app:one", a.digest],
      ["docker.io/library/app:2", b.digest],
    ]);
    // AND a mapping key may be any spelling of the archive name, or the image digest
    const other = await loadArchive(await newStore(), out, { names: { "app:1": "x:1", [b.digest]: "y:2" } });
    expect(other.map((l) => l.ref)).toEqual(["docker.io/library/x:1", "docker.io/library/y:2"]);
  });
});

// ---- interrupted saves ----

describe("saveArchive failures leave nothing at the destination", () => {
  async function listDir(dir: string): Promise<string[]> {
    return (await readdir(dir)).sort();
  }

  it("a destination stream error rejects the save", async () => {
    // GIVEN an image with a layer big enough to take several writes
    const store = await newStore();
    await makeImage(store, "app:1", [await putLayer(store, 1024 * 1024)]);
    let written = 0;
    const failing = new Writable({
      write(chunk: Buffer, _enc, cb) {
        written += chunk.length;
        cb(written > 64 * 1024 ? new Error("disk full (simulated)") : null);
      },
    });
    // WHEN the destination fails midway THEN the save rejects with that error
    await expect(saveArchive(store, ["app:1"], failing)).rejects.toThrow(/disk full \(simulated\)/);
  });

  it("a corrupt store blob aborts the save; no file (and no temp file) appears, an old file stays", async () => {
    // GIVEN an image whose layer was corrupted on disk after it was stored
    const store = await newStore();
    const layer = await putLayer(store, 256 * 1024);
    await makeImage(store, "app:1", [layer]);
    const blob = store.blobPath(layer.desc.digest);
    const bytes = await readFile(blob);
    bytes[bytes.length - 10] ^= 0xff;
    await writeFile(blob, bytes);
    const dir = await tempDir("out");
    const out = join(dir, "x.tar");

    // WHEN saved THEN it fails naming the blob, and nothing is at `out`
    await expect(saveArchive(store, ["app:1"], out)).rejects.toThrow(new RegExp(`${layer.desc.digest}.*corrupt`));
    expect(await listDir(dir)).toEqual([]);

    // AND an archive already at `out` is left as it was
    await writeFile(out, "previous archive");
    await expect(saveArchive(store, ["app:1"], out)).rejects.toThrow(/corrupt/);
    expect(await readFile(out, "utf8")).toBe("previous archive");
    expect(await listDir(dir)).toEqual(["x.tar"]);
  });

  it("an abort midway leaves no file", async () => {
    const store = await newStore();
    await makeImage(store, "app:1", [await putLayer(store, 2 * 1024 * 1024)]);
    const dir = await tempDir("out");
    const ac = new AbortController();
    const save = saveArchive(store, ["app:1"], join(dir, "x.tar"), {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.bytes > 128 * 1024) ac.abort(new Error("user pressed ^C"));
      },
    });
    await expect(save).rejects.toThrow(/user pressed \^C/);
    expect(await listDir(dir)).toEqual([]);
  });

  it("an unknown image fails before anything is written", async () => {
    const store = await newStore();
    const dir = await tempDir("out");
    await expect(saveArchive(store, ["nope:1"], join(dir, "x.tar"))).rejects.toThrow(/not found/);
    expect(await listDir(dir)).toEqual([]);
    await expect(stat(join(dir, "x.tar"))).rejects.toThrow();
  });
});
