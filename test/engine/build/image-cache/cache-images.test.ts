import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheImages, ImageCacheError, type CacheProgressEvent } from "../../../../src/engine/build/image-cache";
import { DistributionLayout, listRepositories, listTags } from "../../../../src/engine/image/distribution-layout";
import { RegistryClient } from "../../../../src/engine/image/registry";
import type { ImageSource } from "../../../../src/engine/image/source";
import { hostPlatform, type Platform } from "../../../../src/engine/image/types";
import { blobDataPath, startRegistry, type TestRegistry } from "../../../support/registry";
import { blobInfo, randomLayer, skopeo, skopeoCopy, skopeoInspect, tempDir, type BlobInfo } from "../../../support/tools";

// ---- building small images as OCI layouts, pushed to real registries with skopeo ----

interface Built {
  manifest: BlobInfo;
  config: BlobInfo;
  layers: BlobInfo[];
}

async function makeLayer(size = 8192): Promise<BlobInfo & { diffId: string }> {
  const { gz, diffId } = await randomLayer(size);
  return { ...blobInfo(gz, "application/vnd.oci.image.layer.v1.tar+gzip"), diffId };
}

async function writeBlob(dir: string, b: BlobInfo): Promise<void> {
  await fs.mkdir(path.join(dir, "blobs", "sha256"), { recursive: true });
  await fs.writeFile(path.join(dir, "blobs", "sha256", b.digest.slice(7)), b.bytes);
}

async function writeImage(dir: string, layers: Array<BlobInfo & { diffId: string }>, platform: Platform): Promise<Built> {
  for (const l of layers) await writeBlob(dir, l);
  const config = blobInfo(
    Buffer.from(
      JSON.stringify({
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      }),
    ),
    "application/vnd.oci.image.config.v1+json",
  );
  await writeBlob(dir, config);
  const manifest = blobInfo(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
        layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      }),
    ),
    "application/vnd.oci.image.manifest.v1+json",
  );
  await writeBlob(dir, manifest);
  return { manifest, config, layers };
}

async function writeIndexJson(dir: string, top: BlobInfo, tag: string): Promise<void> {
  await fs.writeFile(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await fs.writeFile(
    path.join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: top.mediaType, digest: top.digest, size: top.size, annotations: { "org.opencontainers.image.ref.name": tag } }],
    }),
  );
}

async function pushSingle(
  reg: TestRegistry,
  repo: string,
  tag: string,
  layers: Array<BlobInfo & { diffId: string }>,
  platform: Platform,
  work: string,
): Promise<Built> {
  const dir = await fs.mkdtemp(path.join(work, "layout-"));
  const built = await writeImage(dir, layers, platform);
  await writeIndexJson(dir, built.manifest, tag);
  await skopeoCopy(`oci:${dir}:${tag}`, `docker://${reg.host}/${repo}:${tag}`, { extra: ["--preserve-digests"] });
  return built;
}

async function pushMulti(
  reg: TestRegistry,
  repo: string,
  tag: string,
  images: Array<{ layers: Array<BlobInfo & { diffId: string }>; platform: Platform }>,
  work: string,
): Promise<{ index: BlobInfo; images: Built[] }> {
  const dir = await fs.mkdtemp(path.join(work, "layout-"));
  const built: Built[] = [];
  for (const i of images) built.push(await writeImage(dir, i.layers, i.platform));
  const index = blobInfo(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: built.map((b, n) => ({ mediaType: b.manifest.mediaType, digest: b.manifest.digest, size: b.manifest.size, platform: images[n]!.platform })),
      }),
    ),
    "application/vnd.oci.image.index.v1+json",
  );
  await writeBlob(dir, index);
  await writeIndexJson(dir, index, tag);
  await skopeoCopy(`oci:${dir}:${tag}`, `docker://${reg.host}/${repo}:${tag}`, { extra: ["--all", "--preserve-digests"] });
  return { index, images: built };
}

const sha = (b: Buffer | string): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const enc = (host: string): string => host.replace(":", "_");

async function rawManifest(ref: string): Promise<string> {
  return skopeo(["inspect", "--tls-verify=false", "--raw", ref]);
}

async function countBlobFiles(root: string): Promise<string[]> {
  const base = path.join(root, "docker/registry/v2/blobs/sha256");
  const out: string[] = [];
  for (const pre of await fs.readdir(base)) {
    for (const hex of await fs.readdir(path.join(base, pre))) {
      const files = await fs.readdir(path.join(base, pre, hex));
      expect(files).toEqual(["data"]); // no temp files left behind
      out.push(`sha256:${hex}`);
    }
  }
  return out.sort();
}

// ---- the scenario ----

const host = hostPlatform();
const other: Platform = host.architecture === "arm64" ? { os: "linux", architecture: "amd64" } : { os: "linux", architecture: "arm64", variant: "v8" };

let upA: TestRegistry;
let upB: TestRegistry;
let work: { path: string; cleanup: () => Promise<void> };
const clients: RegistryClient[] = [];
const sourceFor = (registry: string): RegistryClient => {
  const c = new RegistryClient(registry, { retries: 1, retryBaseDelayMs: 10 });
  clients.push(c);
  return c;
};

let base: BlobInfo & { diffId: string };
let web: Built;
let api: Built;
let webB: Built;
let multi: { index: BlobInfo; images: Built[] };

beforeAll(async () => {
  work = await tempDir("sealant-cache-");
  [upA, upB] = await Promise.all([startRegistry(), startRegistry()]);
  base = await makeLayer(16384);
  // Two repositories sharing a base layer; a multi-platform index; the same path in a second registry.
  web = await pushSingle(upA, "library/web", "1.0", [base, await makeLayer()], host, work.path);
  api = await pushSingle(upA, "team/api", "2.0", [base, await makeLayer()], host, work.path);
  multi = await pushMulti(
    upA,
    "multi/tool",
    "3.0",
    [
      { layers: [await makeLayer()], platform: host },
      { layers: [await makeLayer()], platform: other },
    ],
    work.path,
  );
  webB = await pushSingle(upB, "library/web", "1.0", [await makeLayer()], host, work.path);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.allSettled([upA?.stop(), upB?.stop()]);
  await work?.cleanup();
});

describe("cacheImages into a distribution layout served by docker-registry", () => {
  let serving: TestRegistry;
  let results: Awaited<ReturnType<typeof cacheImages>>;
  const events: CacheProgressEvent[] = [];

  beforeAll(async () => {
    // GIVEN a registry whose storage directory is still empty (it is not asked anything before the cache is written)
    serving = await startRegistry();
    // WHEN the images are cached into that directory (one image spelled twice, one pinned by its index digest)
    results = await cacheImages(
      [
        `${upA.host}/library/web:1.0`,
        `${upA.host}/team/api:2.0`,
        `${upA.host}/multi/tool:3.0`,
        `${upA.host}/multi/tool@${multi.index.digest}`,
        `${upB.host}/library/web:1.0`,
        `${upB.host}/library/web:1.0`,
      ],
      serving.storageDir,
      { sourceFor, platform: host, concurrency: 4, onProgress: (e) => events.push(e) },
    );
  });
  afterAll(async () => {
    await serving?.stop();
  });

  it("reports each image once with its repository, upstream digest and platform", () => {
    expect(results.map((r) => [r.image, r.repository, r.digest])).toEqual([
      [`${upA.host}/library/web:1.0`, `${enc(upA.host)}/library/web`, web.manifest.digest],
      [`${upA.host}/team/api:2.0`, `${enc(upA.host)}/team/api`, api.manifest.digest],
      [`${upA.host}/multi/tool:3.0`, `${enc(upA.host)}/multi/tool`, multi.index.digest],
      [`${upA.host}/multi/tool@${multi.index.digest}`, `${enc(upA.host)}/multi/tool`, multi.index.digest],
      [`${upB.host}/library/web:1.0`, `${enc(upB.host)}/library/web`, webB.manifest.digest],
    ]);
    const hostPlat = `${host.os}/${host.architecture}`;
    for (const r of results) expect(r.platforms).toEqual([hostPlat]);
    for (const r of results) {
      expect(events.filter((e) => e.type === "started" && e.image === r.image)).toHaveLength(1);
      expect(events.filter((e) => e.type === "done" && e.image === r.image)).toHaveLength(1);
    }
  });

  it("serves single-platform images unchanged (same manifest bytes and digest as upstream), and skopeo can copy them", async () => {
    for (const [up, repo, tag, built] of [
      [upA, "library/web", "1.0", web],
      [upA, "team/api", "2.0", api],
      [upB, "library/web", "1.0", webB],
    ] as const) {
      const local = `docker://${serving.host}/${enc(up.host)}/${repo}:${tag}`;
      const raw = await rawManifest(local);
      expect(raw).toBe(await rawManifest(`docker://${up.host}/${repo}:${tag}`));
      expect(sha(raw)).toBe(built.manifest.digest);
      const inspected = (await skopeoInspect(local)) as { Digest: string; Layers: string[] };
      expect(inspected.Digest).toBe(built.manifest.digest);
      expect(inspected.Layers).toEqual(built.layers.map((l) => l.digest));
      const out = path.join(work.path, `copy-${enc(up.host)}-${repo.replace("/", "-")}`);
      await skopeoCopy(local, `oci:${out}:${tag}`);
      for (const l of built.layers) expect(sha(await fs.readFile(path.join(out, "blobs/sha256", l.digest.slice(7))))).toBe(l.digest);
    }
  });

  it("keeps images with the same path from different registries apart", async () => {
    // THEN both web:1.0 images exist, each with its own content
    const repos = await listRepositories(serving.storageDir);
    expect(repos).toEqual([`${enc(upA.host)}/library/web`, `${enc(upA.host)}/multi/tool`, `${enc(upA.host)}/team/api`, `${enc(upB.host)}/library/web`].sort());
    expect(await listTags(serving.storageDir, `${enc(upB.host)}/library/web`)).toEqual(["1.0"]);
    expect(web.manifest.digest).not.toBe(webB.manifest.digest);
    const layout = new DistributionLayout(serving.storageDir);
    expect(await layout.resolveTag(`${enc(upA.host)}/library/web`, "1.0")).toBe(web.manifest.digest);
    expect(await layout.resolveTag(`${enc(upB.host)}/library/web`, "1.0")).toBe(webB.manifest.digest);
    // AND a repository only serves its own blobs
    await expect(skopeo(["inspect", "--tls-verify=false", `docker://${serving.host}/${enc(upB.host)}/library/web@${web.manifest.digest}`])).rejects.toThrow();
  });

  it("stores the index unchanged with only the target platform's manifest; the target platform copies, another does not", async () => {
    const local = `docker://${serving.host}/${enc(upA.host)}/multi/tool`;
    // THEN the index is byte-identical to upstream, by tag and by its digest
    const raw = await rawManifest(`${local}:3.0`);
    expect(sha(raw)).toBe(multi.index.digest);
    expect(raw).toBe(await rawManifest(`docker://${upA.host}/multi/tool:3.0`));
    expect(sha(await rawManifest(`${local}@${multi.index.digest}`))).toBe(multi.index.digest);
    // AND skopeo picks and copies the host platform's image
    const inspected = (await skopeoInspect(`${local}:3.0`)) as { Digest: string; Architecture: string; Layers: string[] };
    expect(inspected.Architecture).toBe(host.architecture);
    expect(inspected.Layers).toEqual(multi.images[0]!.layers.map((l) => l.digest));
    await skopeoCopy(`${local}:3.0`, `oci:${path.join(work.path, "copy-multi")}:3.0`);
    // AND the other platform's manifest and layers were never fetched, so asking for it fails
    const layout = new DistributionLayout(serving.storageDir);
    expect(await layout.hasBlob(multi.images[1]!.manifest.digest)).toBe(false);
    expect(await layout.hasBlob(multi.images[1]!.layers[0]!.digest)).toBe(false);
    await expect(
      skopeo(["--override-arch", other.architecture, "copy", "--src-tls-verify=false", `${local}:3.0`, `oci:${path.join(work.path, "copy-other")}:x`]),
    ).rejects.toThrow();
  });

  it("stores shared blobs once and fetches them once", async () => {
    const expected = new Set<string>([
      ...[web, api, webB, multi.images[0]!].flatMap((b) => [b.manifest.digest, b.config.digest, ...b.layers.map((l) => l.digest)]),
      multi.index.digest,
    ]);
    expect(await countBlobFiles(serving.storageDir)).toEqual([...expected].sort());
    // The shared base layer is linked into both repositories but was downloaded exactly once
    const layout = new DistributionLayout(serving.storageDir);
    expect(await layout.hasLinkedBlob(`${enc(upA.host)}/library/web`, base.digest)).toBe(true);
    expect(await layout.hasLinkedBlob(`${enc(upA.host)}/team/api`, base.digest)).toBe(true);
    const baseBytes = events.filter((e) => e.type === "bytes" && e.digest === base.digest).reduce((n, e) => n + (e.type === "bytes" ? e.bytes : 0), 0);
    expect(baseBytes).toBe(base.size);
    // Link files are `sha256:<hex>` without a newline
    expect(await fs.readFile(layout.layerLinkPath(`${enc(upA.host)}/team/api`, base.digest), "utf8")).toBe(base.digest);
  });

  it("downloads nothing on a second run into the same directory", async () => {
    const again: CacheProgressEvent[] = [];
    const second = await cacheImages([`${upA.host}/library/web:1.0`, `${upA.host}/multi/tool:3.0`], serving.storageDir, {
      sourceFor,
      platform: host,
      onProgress: (e) => again.push(e),
    });
    expect(second.map((r) => r.digest)).toEqual([web.manifest.digest, multi.index.digest]);
    expect(again.filter((e) => e.type === "bytes")).toEqual([]);
  });
});

describe("cacheImages failures", () => {
  it("fails the whole call when an image is missing upstream, naming the image and the registry's error", async () => {
    const dest = await tempDir("sealant-cache-missing-");
    try {
      // GIVEN one existing and one missing image
      const missing = `${upA.host}/library/missing:9.9`;
      // WHEN they are cached
      const err = await cacheImages([`${upA.host}/library/web:1.0`, missing], dest.path, { sourceFor, platform: host }).catch((e: unknown) => e);
      // THEN the call fails naming the image and the registry's answer, before any layer was downloaded
      expect(err).toBeInstanceOf(ImageCacheError);
      expect((err as Error).message).toContain(missing);
      expect((err as Error).message).toMatch(/MANIFEST_UNKNOWN|404/);
      expect(await listRepositories(dest.path)).toEqual([]);
      await expect(fs.readdir(path.join(dest.path, "docker/registry/v2/blobs"))).rejects.toThrow();
    } finally {
      await dest.cleanup();
    }
  });

  it("fails with a digest mismatch when an upstream blob is corrupt, and never stores it", async () => {
    const dest = await tempDir("sealant-cache-corrupt-");
    try {
      // GIVEN an image whose layer is corrupted in the upstream registry's storage (same size, different bytes)
      const layer = await makeLayer();
      await pushSingle(upA, "bad/image", "1.0", [layer], host, work.path);
      const file = blobDataPath(upA.storageDir, layer.digest);
      const bytes = await fs.readFile(file);
      bytes[bytes.length >> 1] = (bytes[bytes.length >> 1]! + 1) % 256;
      await fs.writeFile(file, bytes);

      // WHEN it is cached
      const image = `${upA.host}/bad/image:1.0`;
      const events: CacheProgressEvent[] = [];
      const err = await cacheImages([image], dest.path, { sourceFor, platform: host, retries: 1, retryDelayMs: 10, onProgress: (e) => events.push(e) }).catch(
        (e: unknown) => e,
      );

      // THEN the call fails naming the image and the mismatch, after a retry, and the blob is not in place
      expect(err).toBeInstanceOf(ImageCacheError);
      expect((err as Error).message).toContain(image);
      expect((err as Error).message).toMatch(/digest mismatch/);
      expect((err as Error).message).toContain(layer.digest);
      expect(events.some((e) => e.type === "retry")).toBe(true);
      expect(await new DistributionLayout(dest.path).hasBlob(layer.digest)).toBe(false);
      expect(await listTags(dest.path, `${enc(upA.host)}/bad/image`)).toEqual([]);
    } finally {
      await dest.cleanup();
    }
  });

  it("retries a blob stream that breaks mid-way and a source's 503, then succeeds", async () => {
    const dest = await tempDir("sealant-cache-flaky-");
    // GIVEN the real registry client wrapped so that the first two blob streams break after some bytes
    // and the first manifest request answers 503 (as a source without its own retries would)
    const inner = new RegistryClient(upA.host, { retries: 0, connectRetries: 0 });
    let brokenStreams = 0;
    let failedManifests = 0;
    const flaky: ImageSource = {
      async getManifest(repo, ref) {
        if (failedManifests++ < 1) throw Object.assign(new Error("Service Unavailable"), { status: 503 });
        return inner.getManifest(repo, ref);
      },
      async openBlob(repo, digest, opts) {
        const body = await inner.openBlob(repo, digest, opts);
        if (brokenStreams >= 2) return body;
        brokenStreams++;
        const cut = new PassThrough();
        let sent = 0;
        body.on("data", (chunk: Buffer) => {
          if (sent > 0) return;
          sent += chunk.length;
          cut.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)));
          body.destroy();
          cut.destroy(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
        });
        return cut;
      },
    };
    try {
      const events: CacheProgressEvent[] = [];
      // WHEN an image is cached from it
      const [result] = await cacheImages([`${upA.host}/library/web:1.0`], dest.path, {
        sourceFor: () => flaky,
        platform: host,
        retries: 3,
        retryDelayMs: 5,
        concurrency: 1,
        onProgress: (e) => events.push(e),
      });
      // THEN it is cached, complete and verified, after three retries
      expect(result!.digest).toBe(web.manifest.digest);
      expect(events.filter((e) => e.type === "retry").map((e) => (e.type === "retry" ? e.error : ""))).toEqual([
        "Service Unavailable",
        "socket hang up",
        "socket hang up",
      ]);
      const layout = new DistributionLayout(dest.path);
      for (const l of [web.config, ...web.layers]) expect(sha(await layout.readBlob(l.digest))).toBe(l.digest);
    } finally {
      inner.close();
      await dest.cleanup();
    }
  });

  it("fails when an index has no manifest for the platform, listing what it has", async () => {
    const dest = await tempDir("sealant-cache-platform-");
    try {
      const err = await cacheImages([`${upA.host}/multi/tool:3.0`], dest.path, { sourceFor, platform: { os: "linux", architecture: "s390x" } }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ImageCacheError);
      expect((err as Error).message).toMatch(/no manifest for platform linux\/s390x/);
      expect((err as Error).message).toContain(`${host.os}/${host.architecture}`);
    } finally {
      await dest.cleanup();
    }
  });
});
