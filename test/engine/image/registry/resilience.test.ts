import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { staticCredentials } from "../../../../src/engine/image/credentials";
import { DigestMismatchError, sha256 } from "../../../../src/engine/image/digest";
import { MediaType } from "../../../../src/engine/image/media-types";
import { RegistryClient, RegistryError, SizeMismatchError } from "../../../../src/engine/image/registry";
import { blobDataPath, freePort, sharedRegistries, startFlakyProxy, type FlakyProxy } from "../../../support/registry";

const { upstream } = sharedRegistries();
const client = new RegistryClient(upstream.host);
afterAll(() => client.close());

let seq = 0;
const repoName = (p: string) => `resilience/${p}-${process.pid}-${Date.now().toString(36)}-${seq++}`;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

async function pushBlob(repo: string, size: number) {
  const bytes = randomBytes(size);
  const desc = { digest: sha256(bytes), size };
  await client.pushBlob(repo, desc, () => Readable.from([bytes]));
  return { bytes, ...desc };
}

async function pushManifest(repo: string, tag: string) {
  const config = await pushBlob(repo, 200);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: config.digest, size: config.size },
      layers: [],
    }),
  );
  return client.putManifest(repo, tag, manifest, MediaType.ociManifest);
}

describe("content verification", () => {
  it("GIVEN a blob corrupted in the registry's storage WHEN it is pulled THEN the stream fails with DigestMismatchError", async () => {
    const repo = repoName("corrupt");
    const blob = await pushBlob(repo, 64 * 1024);
    const file = blobDataPath(upstream.storageDir, blob.digest);
    const corrupted = Buffer.from(blob.bytes);
    corrupted[1000] = corrupted[1000]! ^ 0xff;
    await fs.writeFile(file, corrupted);

    await expect(readAll(await client.openBlob(repo, blob.digest))).rejects.toBeInstanceOf(DigestMismatchError);
    const err = await client.getBlob(repo, blob.digest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as DigestMismatchError).expected).toBe(blob.digest);
    expect((err as Error).message).toContain(`blob ${upstream.host}/${repo}@${blob.digest}: digest mismatch`);
  });

  it("GIVEN a blob truncated in storage WHEN it is pulled with its known size THEN it fails with SizeMismatchError before reading", async () => {
    const repo = repoName("truncated");
    const blob = await pushBlob(repo, 10_000);
    await fs.writeFile(blobDataPath(upstream.storageDir, blob.digest), blob.bytes.subarray(0, 5000));

    const err = await client.openBlob(repo, blob.digest, { size: blob.size }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SizeMismatchError);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as Error).message).toMatch(/size mismatch: expected 10000 bytes, got 5000/);
  });
});

describe("what a registry (or something in between) says is checked", () => {
  let proxy: FlakyProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it("GIVEN a Docker-Content-Digest that does not match the manifest bytes WHEN pulled by tag THEN DigestMismatchError", async () => {
    const repo = repoName("lying-header");
    const digest = await pushManifest(repo, "v1");
    const wrong = sha256("something else");
    proxy = await startFlakyProxy(upstream.host, {
      failFirst: 0,
      mutateResponse: (_m, url, _s, headers) => {
        if (url.includes("/manifests/")) headers["docker-content-digest"] = wrong;
      },
    });
    const c = new RegistryClient(proxy.host);
    try {
      const err = (await c.getManifest(repo, "v1").catch((e: unknown) => e)) as DigestMismatchError;
      expect(err).toBeInstanceOf(DigestMismatchError);
      expect(err.expected).toBe(wrong);
      expect(err.actual).toBe(digest);
    } finally {
      c.close();
    }
  });

  it("GIVEN a blob GET redirected to another origin WHEN the client follows it THEN credentials are not sent there and the content is verified", async () => {
    const { basic } = sharedRegistries();
    const user = basic.users[0]!;
    const writer = new RegistryClient(basic.host, { credentials: staticCredentials(user) });
    const repo = repoName("redirect");
    const bytes = randomBytes(3000);
    const digest = sha256(bytes);
    await writer.pushBlob(repo, { digest, size: bytes.length }, () => Readable.from([bytes]));
    writer.close();

    // A "storage backend" on another port that records what it was sent.
    const seenAuth: Array<string | undefined> = [];
    const storage = http.createServer((req, res) => {
      seenAuth.push(req.headers.authorization);
      res.writeHead(200, { "Content-Length": bytes.length });
      res.end(bytes);
    });
    await new Promise<void>((r) => storage.listen(0, "127.0.0.1", r));
    const storagePort = (storage.address() as AddressInfo).port;
    proxy = await startFlakyProxy(basic.host, {
      failFirst: 0,
      intercept: (req, res) => {
        if (req.method !== "GET" || !req.url?.includes("/blobs/sha256:") || !req.headers.authorization) return false;
        res.writeHead(307, { Location: `http://127.0.0.1:${storagePort}/blob?sig=abc` });
        res.end();
        return true;
      },
    });
    const c = new RegistryClient(proxy.host, { credentials: staticCredentials(user) });
    try {
      expect((await c.getBlob(repo, digest)).equals(bytes)).toBe(true);
      expect(seenAuth).toEqual([undefined]);
    } finally {
      c.close();
      storage.closeAllConnections();
      await new Promise((r) => storage.close(r));
    }
  });
});

describe("retries", () => {
  let proxy: FlakyProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it("GIVEN nothing listening on the port WHEN the client calls THEN it gives up after bounded retries with a clear message", async () => {
    const port = await freePort();
    const log: string[] = [];
    const c = new RegistryClient(`127.0.0.1:${port}`, { retryBaseDelayMs: 5, log: (m) => log.push(m) });
    try {
      const started = Date.now();
      const err = await c.getManifest("x/y", "1.0").catch((e: unknown) => e);

      expect(err).toBeInstanceOf(RegistryError);
      const e = err as RegistryError;
      expect(e.code).toBe("ECONNREFUSED");
      expect(e.status).toBeUndefined();
      expect(e.attempts).toBe(3);
      expect(log).toHaveLength(2);
      expect(e.message).toMatch(
        new RegExp(`^GET 127\\.0\\.0\\.1:${port}/v2/x/y/manifests/1\\.0: connection refused: is a registry listening at 127\\.0\\.0\\.1:${port}\\?`),
      );
      expect(e.message).toContain("(gave up after 3 attempts)");
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      c.close();
    }
  });

  it("GIVEN a registry that answers 503 twice WHEN a manifest is fetched THEN the client retries and succeeds", async () => {
    const repo = repoName("flaky");
    const digest = await pushManifest(repo, "v1");
    proxy = await startFlakyProxy(upstream.host, { failFirst: 2, failWith: 503 });
    const log: string[] = [];
    const c = new RegistryClient(proxy.host, { retryBaseDelayMs: 5, log: (m) => log.push(m) });
    try {
      const got = await c.getManifest(repo, "v1");

      expect(got.descriptor.digest).toBe(digest);
      expect(proxy.failures()).toBe(2);
      expect(log).toHaveLength(2);
      expect(log[0]).toMatch(/^retrying GET 127\.0\.0\.1:\d+\/v2\/.*\/manifests\/v1 in \d+ ms: .*503 UNAVAILABLE: injected failure/);
    } finally {
      c.close();
    }
  });

  it("GIVEN a 429 with Retry-After WHEN a request is made THEN the client waits that long before retrying", async () => {
    const repo = repoName("throttled");
    await pushManifest(repo, "v1");
    proxy = await startFlakyProxy(upstream.host, { failFirst: 1, failWith: 429, retryAfter: "1" });
    const c = new RegistryClient(proxy.host, { retryBaseDelayMs: 5 });
    try {
      const started = Date.now();
      expect(await c.listTags(repo)).toEqual(["v1"]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    } finally {
      c.close();
    }
  });

  it("GIVEN connections reset by the peer WHEN a blob is pulled THEN the client reconnects and the content is verified", async () => {
    const repo = repoName("reset");
    const blob = await pushBlob(repo, 5000);
    proxy = await startFlakyProxy(upstream.host, { failFirst: 2, failWith: "reset" });
    const c = new RegistryClient(proxy.host, { retryBaseDelayMs: 5 });
    try {
      expect((await c.getBlob(repo, blob.digest)).equals(blob.bytes)).toBe(true);
      expect(proxy.failures()).toBe(2);
    } finally {
      c.close();
    }
  });

  it("GIVEN a registry that keeps failing WHEN retries run out THEN the last status is reported with the number of attempts", async () => {
    proxy = await startFlakyProxy(upstream.host, { failFirst: 1000, failWith: 502 });
    const c = new RegistryClient(proxy.host, { retries: 3, retryBaseDelayMs: 5 });
    try {
      const err = (await c.listTags("x/y").catch((e: unknown) => e)) as RegistryError;
      expect(err).toBeInstanceOf(RegistryError);
      expect(err.status).toBe(502);
      expect(err.attempts).toBe(4);
      expect(err.message).toMatch(/^GET 127\.0\.0\.1:\d+\/v2\/x\/y\/tags\/list: 502 UNAVAILABLE: injected failure \(gave up after 4 attempts\)$/);
    } finally {
      c.close();
    }
  });

  it("GIVEN a failing monolithic upload PUT WHEN a blob is pushed THEN the upload restarts with a reopened source", async () => {
    const repo = repoName("upload-retry");
    proxy = await startFlakyProxy(upstream.host, { failFirst: 1, failWith: 500, match: (m, url) => m === "PUT" && url.includes("/blobs/uploads/") });
    const c = new RegistryClient(proxy.host, { retryBaseDelayMs: 5 });
    try {
      const bytes = randomBytes(20_000);
      let opened = 0;
      const result = await c.pushBlob(repo, { digest: sha256(bytes), size: bytes.length }, () => {
        opened++;
        return Readable.from([bytes]);
      });
      expect(result).toBe("uploaded");
      expect(opened).toBe(2);
      expect(proxy.failures()).toBe(1);
      expect((await client.getBlob(repo, sha256(bytes))).equals(bytes)).toBe(true);
    } finally {
      c.close();
    }
  });

  it("GIVEN upload sessions that cannot be started WHEN a blob is pushed THEN the POST is retried once per attempt budget, not again by the upload loop", async () => {
    proxy = await startFlakyProxy(upstream.host, { failFirst: 1000, failWith: 503, match: (m) => m === "POST" });
    const c = new RegistryClient(proxy.host, { retries: 2, retryBaseDelayMs: 5 });
    try {
      const bytes = randomBytes(100);
      const err = (await c
        .pushBlob(repoName("no-session"), { digest: sha256(bytes), size: 100 }, () => Readable.from([bytes]))
        .catch((e: unknown) => e)) as RegistryError;
      expect(err).toBeInstanceOf(RegistryError);
      expect(err.method).toBe("POST");
      expect(err.attempts).toBe(3);
      expect(proxy.failures()).toBe(3);
      expect(err.message.match(/gave up/g)).toHaveLength(1);
    } finally {
      c.close();
    }
  });

  it("GIVEN a chunk upload that fails midway WHEN a large blob is pushed THEN the chunked upload restarts and completes", async () => {
    const repo = repoName("chunk-retry");
    let patches = 0;
    proxy = await startFlakyProxy(upstream.host, { failFirst: 1, failWith: "reset", match: (m) => m === "PATCH" && ++patches === 3 });
    const c = new RegistryClient(proxy.host, { retryBaseDelayMs: 5, chunkedUploadThreshold: 10_000, chunkSize: 8192 });
    try {
      const bytes = randomBytes(50_000);
      let opened = 0;
      const result = await c.pushBlob(repo, { digest: sha256(bytes), size: bytes.length }, () => {
        opened++;
        return Readable.from([bytes.subarray(0, 25_000), bytes.subarray(25_000)]);
      });
      expect(result).toBe("uploaded");
      expect(opened).toBe(2);
      expect((await client.getBlob(repo, sha256(bytes))).equals(bytes)).toBe(true);
    } finally {
      c.close();
    }
  });

  it("GIVEN an abort while waiting to retry WHEN the signal fires THEN the call stops at once", async () => {
    proxy = await startFlakyProxy(upstream.host, { failFirst: 1000, failWith: 503 });
    const controller = new AbortController();
    const c = new RegistryClient(proxy.host, { retryBaseDelayMs: 10_000, signal: controller.signal });
    try {
      const started = Date.now();
      const pending = c.listTags("x/y").catch((e: unknown) => e);
      setTimeout(() => controller.abort(new Error("stopped by test")), 100);
      const err = (await pending) as Error;
      expect(err.message).toBe("stopped by test");
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      c.close();
    }
  });
});
