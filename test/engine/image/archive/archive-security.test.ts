import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import * as tar from "tar-stream";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ArchiveError, loadArchive, saveArchive } from "../../../../src/engine/image/archive";
import { sha256, type Digest } from "../../../../src/engine/image/digest";
import { MediaType } from "../../../../src/engine/image/media-types";
import { ImageStore, REF_NAME_ANNOTATION, type StoredImage } from "../../../../src/engine/image/store";
import type { Descriptor, Index, Manifest } from "../../../../src/engine/image/types";

// ---- helpers ----

let work: string;
let counter = 0;

async function tempDir(name: string): Promise<string> {
  return mkdtemp(join(work, `${name}-${counter++}-`));
}

type Entry = { header: Partial<tar.Header> & { name: string }; body?: Buffer };

async function makeTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const collected = (async () => {
    const chunks: Buffer[] = [];
    for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
    return Buffer.concat(chunks);
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const header = { mode: 0o644, mtime: new Date(0), ...e.header };
      if (e.body !== undefined) pack.entry(header, e.body, (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, (err) => (err ? reject(err) : resolve())).end(undefined);
    });
  }
  pack.finalize();
  return collected;
}

const file = (name: string, body: Buffer | string): Entry => ({ header: { name, type: "file" }, body: Buffer.from(body) });
const blobName = (d: string): string => `blobs/sha256/${d.slice("sha256:".length)}`;
const LAYOUT = file("oci-layout", JSON.stringify({ imageLayoutVersion: "1.0.0" }));

/** A small valid image, as raw blobs (the archive is built from these by each test). */
interface Fixture {
  layer: Buffer;
  config: Buffer;
  manifest: Buffer;
  manifestDesc: Descriptor;
  blobs: Map<Digest, Buffer>;
}

function fixture(): Fixture {
  const layer = gzipSync(randomBytes(2048));
  const layerDesc: Descriptor = { mediaType: MediaType.ociLayerGzip, digest: sha256(layer), size: layer.length };
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [sha256("x")] } }));
  const configDesc: Descriptor = { mediaType: MediaType.ociConfig, digest: sha256(config), size: config.length };
  const m: Manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDesc, layers: [layerDesc] };
  const manifest = Buffer.from(JSON.stringify(m));
  const manifestDesc: Descriptor = { mediaType: MediaType.ociManifest, digest: sha256(manifest), size: manifest.length };
  const blobs = new Map<Digest, Buffer>([
    [layerDesc.digest, layer],
    [configDesc.digest, config],
    [manifestDesc.digest, manifest],
  ]);
  return { layer, config, manifest, manifestDesc, blobs };
}

function indexJson(manifests: Descriptor[], name = "docker.io/library/evil:1"): Entry {
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: manifests.map((m) => ({ ...m, annotations: { [REF_NAME_ANNOTATION]: name } })),
  };
  return file("index.json", JSON.stringify(index));
}

function blobEntries(f: Fixture, skip?: Digest): Entry[] {
  return [...f.blobs].filter(([d]) => d !== skip).map(([d, b]) => file(blobName(d), b));
}

// ---- a target store that already holds one image: a failed load must leave it as it was ----

let store: ImageStore;
let before: StoredImage[];
let archiveDir: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "sealant-archive-sec-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});
beforeEach(async () => {
  store = await ImageStore.open(await tempDir("home"));
  const f = fixture();
  for (const b of f.blobs.values()) await store.putBlob(b);
  await store.setTag("existing:1", f.manifestDesc);
  before = await store.list();
  archiveDir = await tempDir("archives");
});

async function writeArchive(name: string, data: Buffer): Promise<string> {
  const path = join(archiveDir, name);
  await writeFile(path, data);
  return path;
}

/** THEN: rejected with an ArchiveError matching `message`, the store's names unchanged, no temp files left. */
async function expectRejected(path: string, message: RegExp, entry?: string): Promise<ArchiveError> {
  let caught: unknown;
  try {
    await loadArchive(store, path);
  } catch (err) {
    caught = err;
  }
  expect(caught, "load should fail").toBeInstanceOf(ArchiveError);
  const err = caught as ArchiveError;
  if (process.env.SHOW_ARCHIVE_ERRORS) console.log(err.message);
  expect(err.message).toMatch(message);
  expect(err.message).toContain(path);
  if (entry !== undefined) expect(err.entry).toBe(entry);
  expect(await store.list()).toEqual(before);
  const stray = (await readdir(join(store.root, "blobs", "sha256"))).filter((n) => !/^[a-f0-9]{64}$/.test(n));
  expect(stray, "temp files left in the store").toEqual([]);
  return err;
}

describe("loadArchive accepts", () => {
  it("index.json before or after the blobs, and ./-prefixed names with directory entries", async () => {
    // GIVEN the same image archived in two entry orders
    const f = fixture();
    const first = await writeArchive("first.tar", await makeTar([LAYOUT, indexJson([f.manifestDesc], "a:1"), ...blobEntries(f)]));
    const last = await writeArchive(
      "last.tar",
      await makeTar([
        { header: { name: "./", type: "directory" } },
        { header: { name: "./blobs/sha256/", type: "directory" } },
        ...blobEntries(f).map((e) => ({ ...e, header: { ...e.header, name: `./${e.header.name}` } })),
        indexJson([f.manifestDesc], "b:1"),
        LAYOUT,
      ]),
    );
    // WHEN both are loaded THEN both give the image
    expect((await loadArchive(store, first)).map((l) => [l.ref, l.digest])).toEqual([["docker.io/library/a:1", f.manifestDesc.digest]]);
    expect((await loadArchive(store, last)).map((l) => [l.ref, l.digest])).toEqual([["docker.io/library/b:1", f.manifestDesc.digest]]);
  });

  it("a stream, a repeated identical entry, and docker-save extras (manifest.json)", async () => {
    const f = fixture();
    const data = await makeTar([
      LAYOUT,
      ...blobEntries(f),
      ...blobEntries(f),
      indexJson([f.manifestDesc]),
      file("manifest.json", "[]"),
      file("repositories", "{}"),
    ]);
    const loaded = await loadArchive(store, Readable.from([data]), { label: "stdin" });
    expect(loaded.map((l) => l.ref)).toEqual(["docker.io/library/evil:1"]);
  });
});

describe("loadArchive rejects, before anything becomes visible", () => {
  it("a ../ path component", async () => {
    const f = fixture();
    const path = await writeArchive("x.tar", await makeTar([LAYOUT, file("../evil", "pwned"), ...blobEntries(f), indexJson([f.manifestDesc])]));
    await expectRejected(path, /"\.\.\/evil".*path traversal/, "../evil");
  });

  it("a .. component hidden inside a blob path", async () => {
    const f = fixture();
    const path = await writeArchive(
      "x.tar",
      await makeTar([LAYOUT, ...blobEntries(f), file("blobs/sha256/../../../etc/x", "pwned"), indexJson([f.manifestDesc])]),
    );
    await expectRejected(path, /path traversal/);
  });

  it("an absolute path", async () => {
    const f = fixture();
    const path = await writeArchive("x.tar", await makeTar([LAYOUT, file("/abs", "pwned"), ...blobEntries(f), indexJson([f.manifestDesc])]));
    await expectRejected(path, /"\/abs".*absolute path/, "/abs");
  });

  it("a symlink escaping the root", async () => {
    const f = fixture();
    const [layerDigest] = f.blobs.keys();
    const path = await writeArchive(
      "x.tar",
      await makeTar([LAYOUT, { header: { name: blobName(layerDigest!), type: "symlink", linkname: "../../../../etc/passwd" } }, indexJson([f.manifestDesc])]),
    );
    await expectRejected(path, /symlink entries are not allowed.*etc\/passwd/, blobName(layerDigest!));
  });

  it("a hardlink (even one inside the archive)", async () => {
    const f = fixture();
    const path = await writeArchive(
      "x.tar",
      await makeTar([LAYOUT, ...blobEntries(f), { header: { name: "extra", type: "link", linkname: "oci-layout" } }, indexJson([f.manifestDesc])]),
    );
    await expectRejected(path, /link entries are not allowed/, "extra");
  });

  it("device and fifo entries", async () => {
    const f = fixture();
    for (const type of ["character-device", "block-device", "fifo"] as const) {
      const path = await writeArchive(
        `${type}.tar`,
        await makeTar([LAYOUT, { header: { name: "dev", type } }, ...blobEntries(f), indexJson([f.manifestDesc])]),
      );
      await expectRejected(path, new RegExp(`${type} entries are not allowed`), "dev");
    }
  });

  it("a blob whose content does not match its name", async () => {
    const f = fixture();
    const [layerDigest] = f.blobs.keys();
    const entries = [LAYOUT, indexJson([f.manifestDesc]), ...blobEntries(f, layerDigest), file(blobName(layerDigest!), randomBytes(100))];
    const path = await writeArchive("x.tar", await makeTar(entries));
    await expectRejected(path, /does not match its name \(digest mismatch/, blobName(layerDigest!));
    expect(await store.hasBlob(layerDigest!)).toBe(false);
  });

  it("blob names that are not blobs/sha256/<64 hex>", async () => {
    const f = fixture();
    for (const name of ["blobs/sha256/abc", "blobs/sha512/" + "a".repeat(128), "blobs/sha256/" + "A".repeat(64), "blobs/evil"]) {
      const path = await writeArchive("x.tar", await makeTar([LAYOUT, ...blobEntries(f), file(name, "x"), indexJson([f.manifestDesc])]));
      await expectRejected(path, /blobs\/sha256\/ followed by 64 lowercase hex/, name);
    }
  });

  it("a duplicate entry with different content", async () => {
    const f = fixture();
    const dupIndex = await writeArchive(
      "idx.tar",
      await makeTar([LAYOUT, indexJson([f.manifestDesc]), ...blobEntries(f), indexJson([f.manifestDesc], "docker.io/library/other:2")]),
    );
    await expectRejected(dupIndex, /duplicate entry with different content/, "index.json");
    const [layerDigest] = f.blobs.keys();
    const dupBlob = await writeArchive(
      "blob.tar",
      await makeTar([LAYOUT, ...blobEntries(f), file(blobName(layerDigest!), "other"), indexJson([f.manifestDesc])]),
    );
    await expectRejected(dupBlob, /duplicate entry with different content/, blobName(layerDigest!));
  });

  it("an index.json that references a blob the archive lacks (even one the store has)", async () => {
    const f = fixture();
    const [layerDigest] = f.blobs.keys();
    // The target store already holds this layer: an archive must still be complete.
    await store.putBlob(f.layer);
    const path = await writeArchive("x.tar", await makeTar([LAYOUT, indexJson([f.manifestDesc]), ...blobEntries(f, layerDigest)]));
    await expectRejected(path, new RegExp(`references blob ${layerDigest}.*not in the archive`));
  });

  it("a descriptor whose size differs from the blob's", async () => {
    const f = fixture();
    const path = await writeArchive("x.tar", await makeTar([LAYOUT, indexJson([{ ...f.manifestDesc, size: f.manifestDesc.size + 1 }]), ...blobEntries(f)]));
    await expectRejected(path, /says it is \d+ bytes, the archive has \d+/);
  });

  it("an oversize index.json", async () => {
    const f = fixture();
    const big = file("index.json", " ".repeat(16 * 1024 * 1024 + 1));
    const path = await writeArchive("x.tar", await makeTar([LAYOUT, big, ...blobEntries(f)]));
    await expectRejected(path, /is 16777217 bytes, more than the 16777216 bytes allowed/, "index.json");
  });

  it("an unknown or missing oci-layout", async () => {
    const f = fixture();
    const v2 = await writeArchive(
      "v2.tar",
      await makeTar([file("oci-layout", '{"imageLayoutVersion":"2.0.0"}'), indexJson([f.manifestDesc]), ...blobEntries(f)]),
    );
    await expectRejected(v2, /unsupported imageLayoutVersion "2\.0\.0"/, "oci-layout");
    const none = await writeArchive("none.tar", await makeTar([indexJson([f.manifestDesc]), ...blobEntries(f)]));
    await expectRejected(none, /no oci-layout/);
  });

  it("a missing or malformed index.json", async () => {
    const f = fixture();
    await expectRejected(await writeArchive("a.tar", await makeTar([LAYOUT, ...blobEntries(f)])), /no index\.json/);
    await expectRejected(await writeArchive("b.tar", await makeTar([LAYOUT, file("index.json", "{nope"), ...blobEntries(f)])), /not valid JSON/, "index.json");
    const badDigest = file(
      "index.json",
      JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaType.ociManifest, digest: "sha256:../../x", size: 1 }] }),
    );
    await expectRejected(await writeArchive("c.tar", await makeTar([LAYOUT, badDigest])), /manifests\[0\] has digest/, "index.json");
  });

  it("garbage bytes (not a tar)", async () => {
    await expectRejected(await writeArchive("garbage.tar", randomBytes(10_000)), /not a valid tar archive/);
    await expectRejected(await writeArchive("short.tar", Buffer.from("hello, not a tar")), /truncated or not a tar/);
    await expectRejected(await writeArchive("empty.tar", Buffer.alloc(0)), /no oci-layout/);
  });

  it("a missing file", async () => {
    await expectRejected(join(archiveDir, "nope.tar"), /does not exist/);
  });

  it("a truncated tar, plain or gzip'd", async () => {
    const f = fixture();
    const whole = await makeTar([LAYOUT, indexJson([f.manifestDesc]), ...blobEntries(f)]);
    // Cut inside the first blob's content (oci-layout and index.json take 4 blocks, its header 1).
    const cut = whole.subarray(0, 512 * 6 + 700);
    const [firstDigest] = f.blobs.keys();
    await expectRejected(await writeArchive("cut.tar", cut), /truncated/);
    expect(await store.hasBlob(firstDigest!)).toBe(false); // the cut blob never landed
    const gz = gzipSync(whole);
    await expectRejected(await writeArchive("cut.tar.gz", gz.subarray(0, gz.length - 30)), /gzip stream is corrupt or truncated/);
  });

  it("an image named only by a bare tag when no repository is given (fails fast, before the blobs)", async () => {
    const f = fixture();
    const path = await writeArchive("x.tar", await makeTar([LAYOUT, indexJson([f.manifestDesc], "latest"), ...blobEntries(f)]));
    await expectRejected(path, /bare tag "latest"/, "index.json");
    const fresh = await ImageStore.open(await tempDir("home"));
    await expect(loadArchive(fresh, path)).rejects.toThrow(/bare tag/);
    // Failing on index.json (the first entry) means no blob was even stored.
    expect((await readdir(join(fresh.root, "blobs", "sha256"))).length).toBe(0);
  });

  it("two different images that would get the same name", async () => {
    const a = fixture();
    const b = fixture();
    const index: Index = {
      schemaVersion: 2,
      manifests: [
        { ...a.manifestDesc, annotations: { [REF_NAME_ANNOTATION]: "app:1" } },
        { ...b.manifestDesc, annotations: { [REF_NAME_ANNOTATION]: "docker.io/library/app:1" } },
      ],
    };
    const path = await writeArchive("x.tar", await makeTar([LAYOUT, file("index.json", JSON.stringify(index)), ...blobEntries(a), ...blobEntries(b)]));
    await expectRejected(path, /would both be named docker\.io\/library\/app:1/);
  });
});

describe("a sealant archive survives its own checks", () => {
  it("save then load into a fresh store, from a file and from a gzip stream", async () => {
    const out = join(await tempDir("out"), "x.tar");
    await saveArchive(store, ["existing:1"], out);
    const fresh = await ImageStore.open(await tempDir("home"));
    const loaded = await loadArchive(fresh, Readable.from([gzipSync(await readFile(out))]));
    expect(loaded.map((l) => [l.ref, l.digest])).toEqual(before.map((b) => [b.ref, b.descriptor.digest]));
    expect(await fresh.list()).toEqual(before);
  });
});
