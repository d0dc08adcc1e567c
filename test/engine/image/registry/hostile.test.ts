import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Digest } from "../../../../src/engine/image/digest";
import { isTransient } from "../../../../src/engine/build/image-cache/retry";
import { BrokenBodyError, RegistryClient } from "../../../../src/engine/image/registry";
import { pullImage, pushImage, TransferTimeoutError } from "../../../../src/engine/image/transfer";
import { Session } from "../../../../src/engine/session";
import { startHostileRegistry, type HostileRegistry } from "../../../support/hostile-registry";

/**
 * Pulls and pushes against test/support/hostile-registry: every fault ends in one error that
 * names the operation and reference and says what went wrong, and leaves no temp file, lease or
 * name behind. Stall windows and trickles are shortened (1 s, 400 ms) so the suite stays quick.
 */
let hostile: HostileRegistry;
const temps: string[] = [];
const user = { username: "sealant", password: "pw-Xq7-never-printed" };

beforeAll(async () => {
  hostile = await startHostileRegistry({ trickleMs: 400, users: [user] });
});
afterAll(async () => {
  await hostile?.close();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

async function session(extra: Parameters<typeof Session.open>[0] = {}): Promise<Session> {
  const home = await mkdtemp(join(tmpdir(), "sealant-hostile-"));
  temps.push(home);
  return Session.open({ home, client: { timeoutMs: 1000, documentTimeoutMs: 3000, retryBaseDelayMs: 5 }, ...extra });
}

/** Files a failed operation must not leave: temp names of atomic writes, leases. */
async function leftovers(home: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) await walk(path);
      else if (e.name.startsWith(".tmp") || e.name.includes(".incoming") || dir.endsWith("leases")) out.push(path);
    }
  };
  await walk(home);
  return out;
}

async function pullFails(repo: string, s?: Session): Promise<{ message: string; session: Session }> {
  const sess = s ?? (await session());
  const ref = `${hostile.host}/${repo}:1`;
  const err = (await pullImage(sess.store, ref, { clientFor: sess.clientFor }).then(
    () => new Error("the pull succeeded"),
    (e: unknown) => e,
  )) as Error;
  expect(err.message.startsWith(`pull ${ref}: `), err.message).toBe(true);
  if (!s) expect(await sess.store.list()).toEqual([]);
  expect(await leftovers(sess.home)).toEqual([]);
  sess.close();
  return { message: err.message.slice(`pull ${ref}: `.length), session: sess };
}

describe("GIVEN a registry that misbehaves WHEN an image is pulled THEN one clear error, no name, no temp file, no lease", () => {
  it.each([
    [
      "drop-mid-blob/x",
      /^blob 127\.0\.0\.1:\d+\/drop-mid-blob\/x@sha256:[a-f0-9]{64}: the connection broke after \d+ of \d+ bytes .*\(gave up after 5 attempts\)$/,
    ],
    ["drop-mid-manifest/x", /^GET 127\.0\.0\.1:\d+\/v2\/drop-mid-manifest\/x\/manifests\/1: the connection broke after \d+ bytes/],
    ["trickle/x", /^blob .*: stalled: \d+ bytes from 127\.0\.0\.1:\d+ in 1 s \(after \d+ of \d+ bytes\) \(gave up after 2 attempts\)$/],
    ["trickle-manifest/x", /manifests\/1: stalled: \d+ bytes from 127\.0\.0\.1:\d+ in 1 s/],
    ["stall/x", /manifests\/1: timed out talking to 127\.0\.0\.1:\d+ \(no answer from 127\.0\.0\.1:\d+ within 1 s\) \(gave up after 2 attempts\)$/],
    ["stall-blob/x", /^blob .*: stalled: 0 bytes from .* in 1 s \(after 0 of \d+ bytes\)/],
    ["not-json/x", /^manifest 127\.0\.0\.1:\d+\/not-json\/x:1: not JSON \(it starts with "<html><body>Welcome to nginx/],
    ["no-layers/x", /^manifest .*\/no-layers\/x:1: layers: Invalid input: expected array, received undefined$/],
    [
      "bad-digest/x",
      /^manifest .*: layers\[0\]\.digest: "sha256:\.\.\/\.\.\/\.\.\/etc\/passwd" is not a digest \(expected sha256: followed by 64 lowercase hex digits\)$/,
    ],
    ["wrong-mediatype/x", /^manifest .*: mediaType: "text\/html" is not an image manifest or index \(expected one of application\/vnd\.oci/],
    [
      "wrong-content-type/x",
      /^manifest .*: mediaType: the document says "application\/vnd\.oci\.image\.index\.v1\+json" but it was served or described as "application\/vnd\.oci\.image\.manifest\.v1\+json"$/,
    ],
    ["wrong-size/x", /^blob .*: size mismatch: expected 10737418240 bytes, got \d+$/],
    ["wrong-digest/x", /^blob sha256:[a-f0-9]{64}: digest mismatch: expected sha256:/],
    ["huge-manifest/x", /^manifest .*\/huge-manifest\/x:1: more than the limit of 4194304 bytes/],
    ["huge-config/x", /^config sha256:[a-f0-9]{64}: its descriptor says 67108864 bytes, more than the limit of 4194304/],
    ["config-garbage/x", /^config sha256:[a-f0-9]{64}: rootfs: Invalid input: expected object, received undefined$/],
    ["index-garbage/x", /^manifest .*\/index-garbage\/x:1: manifests\[0\]\.mediaType: .*; manifests\[0\]\.digest: .*\(and \d+ more\)$/],
    ["empty-index/x", /^manifest .*\/empty-index\/x:1: manifests: an index that lists no image$/],
    ["redirect-loop/x", /^GET .*\/manifests\/1: 302 more than 5 redirects/],
    ["redirect-file/x", /^GET .*\/manifests\/1: 302 redirected to "file:\/\/\/etc\/passwd", which is not an http\(s\) URL$/],
    ["realm-not-url/x", /^127\.0\.0\.1:\d+ names a token service that is not an http\(s\) URL: "::not a url"$/],
    ["duplicate-digest/x", /^blob sha256:[a-f0-9]{64} is described as \d+ bytes and as \d+$/],
    ["500/x", /^GET .*\/v2\/500\/x\/manifests\/1: 500 500 Internal Server Error \(gave up after 5 attempts\)$/],
    ["bad-token/x", /^token from 127\.0\.0\.1:\d+\/token for 127\.0\.0\.1:\d+: not JSON$/],
  ])("%s", async (repo, expected) => {
    const { message } = await pullFails(repo);
    expect(message).toMatch(expected);
  });

  it("GIVEN a layer already stored WHEN a manifest claims it is 10 GiB THEN the pull fails naming the blob and the image gets no name", async () => {
    const s = await session();
    await pullImage(s.store, `${hostile.host}/good/x:1`, { clientFor: s.clientFor });
    const { message } = await pullFails("wrong-size/x", s);
    expect(message).toBe(
      `blob ${hostile.image.layerDigest}: the manifest says 10737418240 bytes, the stored blob with that digest has ${hostile.image.layerSize}`,
    );
    expect((await s.store.list()).map((i) => i.ref)).toEqual([`${hostile.host}/good/x:1`]);
  });

  it("GIVEN a registry trickling a byte every 400 ms just fast enough for the stall window WHEN the pull has a 2 s deadline THEN it ends with the deadline's error", async () => {
    const s = await session({ client: { timeoutMs: 60_000, retryBaseDelayMs: 5 } });
    const started = Date.now();
    const err = await pullImage(s.store, `${hostile.host}/trickle/x:1`, { clientFor: s.clientFor, timeoutMs: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransferTimeoutError);
    expect((err as Error).message).toBe(`pull ${hostile.host}/trickle/x:1: not finished within 2 s (the deadline of one pull)`);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await leftovers(s.home)).toEqual([]);
    s.close();
  });

  it("GIVEN a registry that echoes the Authorization header in its errors WHEN it fails THEN the error text holds no credential", async () => {
    const s = await session({ auth: { [hostile.host]: user } });
    const { message } = await pullFails("echo-credentials/x", s);
    expect(message).toContain("you sent Basic ***");
    expect(message).not.toContain(user.password);
    expect(message).not.toContain(Buffer.from(`${user.username}:${user.password}`).toString("base64"));
  });
});

describe("GIVEN a registry that breaks uploads WHEN an image is pushed THEN one clear error and nothing left behind", () => {
  it.each([
    [
      "drop-upload/x",
      /^PUT 127\.0\.0\.1:\d+\/v2\/drop-upload\/x\/blobs\/uploads\/\w+: (connection reset|.*ECONNRESET|.*socket hang up).*\(gave up after 5 attempts\)$/,
    ],
    ["stall-upload/x", /^PUT .*\/blobs\/uploads\/\w+: timed out talking to .* \(no answer from .* within 1 s\)/],
  ])("%s", async (repo, expected) => {
    const s = await session();
    await pullImage(s.store, `${hostile.host}/good/x:1`, { clientFor: s.clientFor });
    const dest = `${hostile.host}/${repo}:1`;
    const err = (await pushImage(s.store, `${hostile.host}/good/x:1`, { clientFor: s.clientFor, destination: dest }).catch((e: unknown) => e)) as Error;
    expect(err.message.startsWith(`push ${dest}: `), err.message).toBe(true);
    expect(err.message.slice(`push ${dest}: `.length)).toMatch(expected);
    expect(await leftovers(s.home)).toEqual([]);
    s.close();
  });
});

describe("GIVEN a registry that sends fast WHEN sealant itself reads slowly", () => {
  it("THEN the stall watchdog does not blame the registry: a body held back by its consumer for three stall windows still arrives whole", async () => {
    const big = await startHostileRegistry({ layerBytes: 8 << 20 });
    const client = new RegistryClient(big.host, { timeoutMs: 300, retries: 0 });
    try {
      const stream = await client.openBlob("good/x", big.image.layerDigest as Digest, { size: big.image.layerSize });
      await new Promise((r) => setTimeout(r, 1000));
      let size = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) size += chunk.length;
      expect(size).toBe(big.image.layerSize);
    } finally {
      client.close();
      await big.close();
    }
  });
});

describe("GIVEN a blob body that breaks off WHEN a caller streams it with openBlob", () => {
  it("THEN it fails with a BrokenBodyError carrying a network code, which the image cache retries; once fetchBlob gave up on it, nobody retries it again", async () => {
    const client = new RegistryClient(hostile.host, { retryBaseDelayMs: 5 });
    try {
      const stream = await client.openBlob("drop-mid-blob/x", hostile.image.layerDigest as Digest, { size: hostile.image.layerSize });
      const err = (await (async () => {
        for await (const _ of stream as AsyncIterable<Buffer>) void _;
      })().catch((e: unknown) => e)) as BrokenBodyError;
      expect(err).toBeInstanceOf(BrokenBodyError);
      expect(err.code).toBe("ECONNRESET");
      expect(isTransient(err)).toBe(true);

      const drain = async (s: NodeJS.ReadableStream) => {
        for await (const _ of s as AsyncIterable<Buffer>) void _;
      };
      const final = (await client
        .fetchBlob("drop-mid-blob/x", hostile.image.layerDigest as Digest, { size: hostile.image.layerSize }, drain)
        .catch((e: unknown) => e)) as Error;
      expect(final.message).toMatch(/gave up after 5 attempts/);
      expect(isTransient(final)).toBe(false);
    } finally {
      client.close();
    }
  });
});
