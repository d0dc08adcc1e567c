import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, describe, expect, inject, it } from "vitest";
import { sha256, type Digest } from "../../../../src/engine/image/digest";
import { MediaType } from "../../../../src/engine/image/media-types";
import { RegistryClient, RegistryError } from "../../../../src/engine/image/registry";
import { pushOneLayerImage } from "../../../support/push";
import { sharedRegistries, startFlakyProxy } from "../../../support/registry";

const { upstream } = sharedRegistries();
const client = new RegistryClient(upstream.host);
afterAll(() => client.close());

let seq = 0;
function repoName(prefix: string): string {
  return `test/${prefix}-${process.pid}-${Date.now().toString(36)}-${seq++}`;
}

function blob(size: number): { bytes: Buffer; digest: Digest; size: number } {
  const bytes = randomBytes(size);
  return { bytes, digest: sha256(bytes), size };
}

/** A Readable of `bytes` in pieces of `piece` bytes, so chunk boundaries do not line up with reads. */
function streamOf(bytes: Buffer, piece = 7919): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += piece) parts.push(bytes.subarray(i, i + piece));
  return Readable.from(parts, { objectMode: false });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Pushes a config and one layer, then an OCI manifest referencing them. */
async function pushImage(
  c: RegistryClient,
  repo: string,
  tag: string,
): Promise<{ manifest: Buffer; digest: Digest; layer: ReturnType<typeof blob>; config: Buffer }> {
  const layer = blob(3000);
  const { manifest, digest, config } = await pushOneLayerImage(c, repo, tag, { ...layer, diffId: layer.digest, open: () => streamOf(layer.bytes) });
  return { manifest, digest, layer, config };
}

describe("RegistryClient against a real docker-registry", () => {
  it("GIVEN the global setup THEN the shared registries are available through inject() and the environment alike", () => {
    expect(inject("sealantRegistries")).toEqual(sharedRegistries());
    expect(upstream.host).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("GIVEN a small blob WHEN it is pushed monolithically THEN it can be pulled back verified", async () => {
    const repo = repoName("mono");
    const b = blob(100_000);
    let progress = 0;

    const result = await client.pushBlob(repo, b, () => streamOf(b.bytes), { onProgress: (n) => (progress = n) });

    expect(result).toBe("uploaded");
    expect(progress).toBe(b.size);
    expect(await client.hasBlob(repo, b.digest)).toBe(true);
    expect((await readAll(await client.openBlob(repo, b.digest, { size: b.size }))).equals(b.bytes)).toBe(true);
    expect((await client.getBlob(repo, b.digest)).equals(b.bytes)).toBe(true);
  });

  it("GIVEN a blob above the chunk threshold WHEN it is pushed THEN it goes up in PATCH chunks and comes back intact", async () => {
    const chunky = new RegistryClient(upstream.host, { chunkedUploadThreshold: 100_000, chunkSize: 64 * 1024 });
    try {
      const repo = repoName("chunked");
      const b = blob(300_001); // 4 full chunks and a short one

      const result = await chunky.pushBlob(repo, b, () => streamOf(b.bytes));

      expect(result).toBe("uploaded");
      expect((await chunky.getBlob(repo, b.digest)).equals(b.bytes)).toBe(true);
    } finally {
      chunky.close();
    }
  });

  it("GIVEN an empty blob WHEN it is pushed (chunked or not) THEN the registry has it", async () => {
    const repo = repoName("empty");
    const empty = { digest: sha256(Buffer.alloc(0)), size: 0 };
    expect(await client.pushBlob(repo, empty, () => Readable.from([]), { chunked: true })).toBe("uploaded");
    expect((await client.getBlob(repo, empty.digest)).length).toBe(0);
  });

  it("GIVEN a blob the repository already has WHEN it is pushed again THEN nothing is uploaded", async () => {
    const repo = repoName("exists");
    const b = blob(2048);
    await client.pushBlob(repo, b, () => streamOf(b.bytes));
    let opened = 0;

    const result = await client.pushBlob(repo, b, () => {
      opened++;
      return streamOf(b.bytes);
    });

    expect(result).toBe("exists");
    expect(opened).toBe(0);
  });

  it("GIVEN a blob in another repository of the same registry WHEN pushed with mountFrom THEN it is mounted, not uploaded", async () => {
    const source = repoName("mount-src");
    const target = repoName("mount-dst");
    const b = blob(50_000);
    await client.pushBlob(source, b, () => streamOf(b.bytes));
    let opened = 0;

    const result = await client.pushBlob(
      target,
      b,
      () => {
        opened++;
        return streamOf(b.bytes);
      },
      { mountFrom: ["test/does-not-have-it", source] },
    );

    expect(result).toBe("mounted");
    expect(opened).toBe(0);
    expect((await client.getBlob(target, b.digest)).equals(b.bytes)).toBe(true);
  });

  it("GIVEN a mount source that lacks the blob WHEN pushed with mountFrom THEN the registry's 202 falls back to an upload", async () => {
    const target = repoName("mount-fallback");
    const b = blob(1000);

    const result = await client.pushBlob(target, b, () => streamOf(b.bytes), { mountFrom: [repoName("empty-source")] });

    expect(result).toBe("uploaded");
    expect(await client.hasBlob(target, b.digest)).toBe(true);
  });

  it("GIVEN content that does not match the declared digest WHEN pushed THEN the push fails with DigestMismatchError and nothing is stored", async () => {
    const repo = repoName("bad-push");
    const b = blob(1000);
    const other = randomBytes(1000);

    await expect(client.pushBlob(repo, b, () => Readable.from([other]))).rejects.toMatchObject({ name: "DigestMismatchError" });
    await expect(client.pushBlob(repo, b, () => Readable.from([other]), { chunked: true, chunkSize: 300 })).rejects.toMatchObject({
      name: "DigestMismatchError",
    });
    await expect(client.pushBlob(repo, b, () => Readable.from([b.bytes.subarray(0, 10)]))).rejects.toMatchObject({ name: "SizeMismatchError" });
    expect(await client.hasBlob(repo, b.digest)).toBe(false);
  });

  it("GIVEN pushed blobs WHEN a manifest is pushed by tag THEN it is pulled back by tag and by digest with the same digest", async () => {
    const repo = repoName("manifest");
    const { manifest, digest } = await pushImage(client, repo, "1.0");

    const byTag = await client.getManifest(repo, "1.0");
    const byDigest = await client.getManifest(repo, digest);
    const head = await client.headManifest(repo, "1.0");

    expect(digest).toBe(sha256(manifest));
    expect(byTag.bytes.equals(manifest)).toBe(true);
    expect(byTag.mediaType).toBe(MediaType.ociManifest);
    expect(byTag.descriptor).toEqual({ mediaType: MediaType.ociManifest, digest, size: manifest.length });
    expect(byDigest.descriptor.digest).toBe(digest);
    expect(head).toEqual(byTag.descriptor);
    expect(await client.listTags(repo)).toEqual(["1.0"]);
  });

  it("GIVEN a manifest pushed by digest WHEN its digest does not match the bytes THEN the client refuses before sending", async () => {
    const repo = repoName("by-digest");
    const { manifest, digest } = await pushImage(client, repo, "t");

    expect(await client.putManifest(repo, digest, manifest, MediaType.ociManifest)).toBe(digest);
    await expect(client.putManifest(repo, sha256("other"), manifest, MediaType.ociManifest)).rejects.toMatchObject({ name: "DigestMismatchError" });
  });

  it("GIVEN a missing manifest WHEN it is fetched THEN the RegistryError names method, registry path, status and code", async () => {
    const repo = repoName("missing");
    await pushImage(client, repo, "present");

    const err = await client.getManifest(repo, "1.0").catch((e: unknown) => e);

    expect(err).toBeInstanceOf(RegistryError);
    const e = err as RegistryError;
    expect(e.status).toBe(404);
    expect(e.codes).toEqual(["MANIFEST_UNKNOWN"]);
    expect(e.notFound).toBe(true);
    expect(e.message).toBe(`GET ${upstream.host}/v2/${repo}/manifests/1.0: 404 MANIFEST_UNKNOWN: manifest unknown`);
    expect(await client.headManifest(repo, "1.0")).toBeUndefined();
  });

  it("GIVEN a manifest referencing a missing blob WHEN pushed THEN the registry's MANIFEST_BLOB_UNKNOWN comes through", async () => {
    const repo = repoName("blob-unknown");
    const doc = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: sha256("nope"), size: 4 },
      layers: [],
    };
    const err = await client.putManifest(repo, "x", Buffer.from(JSON.stringify(doc)), MediaType.ociManifest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).codes).toContain("MANIFEST_BLOB_UNKNOWN");
    expect((err as RegistryError).message).toMatch(new RegExp(`^PUT ${upstream.host}/v2/${repo}/manifests/x: 400 MANIFEST_BLOB_UNKNOWN`));
  });

  it("GIVEN an index of manifests WHEN pushed THEN it is pulled back with the index media type", async () => {
    const repo = repoName("index");
    const { manifest, digest } = await pushImage(client, repo, "amd64");
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [{ mediaType: MediaType.ociManifest, digest, size: manifest.length, platform: { os: "linux", architecture: "amd64" } }],
      }),
    );
    await client.putManifest(repo, "multi", index, MediaType.ociIndex);

    const got = await client.getManifest(repo, "multi");

    expect(got.mediaType).toBe(MediaType.ociIndex);
    expect(got.descriptor.digest).toBe(sha256(index));
    expect((await client.listTags(repo)).sort()).toEqual(["amd64", "multi"]);
  });

  it("GIVEN an unknown repository WHEN its tags are listed THEN the answer is empty", async () => {
    expect(await client.listTags(repoName("never-pushed"))).toEqual([]);
  });

  it("GIVEN many blobs WHEN pushed and pulled in parallel THEN all arrive over a bounded set of reused connections", async () => {
    const counter = await startFlakyProxy(upstream.host, { failFirst: 0 });
    const bounded = new RegistryClient(counter.host, { maxConnections: 3 });
    try {
      const repo = repoName("parallel");
      const blobs = Array.from({ length: 12 }, () => blob(20_000));
      await Promise.all(blobs.map((b) => bounded.pushBlob(repo, b, () => streamOf(b.bytes))));
      const back = await Promise.all(blobs.map((b) => bounded.getBlob(repo, b.digest)));
      back.forEach((buf, i) => expect(buf.equals(blobs[i]!.bytes)).toBe(true));
      // 12 x (HEAD, POST, PUT) + 12 GETs over at most 3 connections at a time, kept alive.
      expect(counter.seen.length).toBe(48);
      expect(counter.maxOpenConnections()).toBeLessThanOrEqual(3);
      expect(counter.connections()).toBeLessThanOrEqual(6);
    } finally {
      bounded.close();
      await counter.close();
    }
  });

  it("GIVEN invalid names WHEN used THEN the client refuses before any request", async () => {
    expect(() => new RegistryClient("user:secret@r.example")).toThrow("invalid registry name: credentials do not belong in it (use sealant login)");
    expect(() => new RegistryClient("r.example/path")).toThrow('invalid registry "r.example/path": expected host[:port]');
    await expect(client.getManifest("Upper/Case", "x")).rejects.toThrow(/invalid repository name "Upper\/Case"/);
    await expect(client.getManifest("ok", "bad tag")).rejects.toThrow(/invalid tag "bad tag"/);
    await expect(client.hasBlob("ok", "sha256:xyz" as Digest)).rejects.toThrow(/invalid digest/);
  });
});
