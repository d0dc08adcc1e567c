import { promises as fs } from "node:fs";
import * as path from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cacheImages, isTransient } from "../../../src/engine/build/image-cache";
import { choosePlatform } from "../../../src/engine/image/platform";
import { DigestMismatchError, sha256 } from "../../../src/engine/image/digest";
import { DistributionLayout, listRepositories, listTags, registryComponent, repositoryFor } from "../../../src/engine/image/distribution-layout";
import { parseReference } from "../../../src/engine/image/reference";
import { RegistryError } from "../../../src/engine/image/registry";
import type { Descriptor } from "../../../src/engine/image/types";
import { tempDir } from "../../support/tools";

let dir: { path: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  dir = await tempDir("sealant-layout-");
});
afterEach(async () => {
  await dir.cleanup();
});

describe("repositoryFor", () => {
  it("prefixes the source registry so equal paths from different registries never collide", () => {
    expect(repositoryFor(parseReference("nginx"))).toBe("docker.io/library/nginx");
    expect(repositoryFor(parseReference("quay.io/library/nginx:1"))).toBe("quay.io/library/nginx");
    expect(repositoryFor(parseReference("127.0.0.1:5001/team/app@sha256:" + "a".repeat(64)))).toBe("127.0.0.1_5001/team/app");
    expect(repositoryFor(parseReference("localhost:5000/app"))).toBe("localhost_5000/app");
    expect(repositoryFor(parseReference("Registry.Example.COM/app"))).toBe("registry.example.com/app");
    expect(registryComponent("127.0.0.1:5001")).not.toBe(registryComponent("127.0.0.1:5002"));
  });

  it("refuses registries it cannot encode", () => {
    expect(() => registryComponent("[::1]:5000")).toThrow(/IPv6/);
  });
});

describe("DistributionLayout", () => {
  it("writes distribution's paths and link files (sha256:<hex>, no newline)", async () => {
    // GIVEN a layout, a blob, a manifest
    const layout = new DistributionLayout(dir.path);
    const blob = Buffer.from("layer bytes");
    const manifest = Buffer.from('{"schemaVersion":2}');
    const b = await layout.putBlob(blob);
    const m = await layout.putBlob(manifest);

    // WHEN they are linked and tagged in a repository
    await layout.linkBlob("docker.io/library/app", b.digest);
    await layout.linkManifest("docker.io/library/app", m.digest);
    await layout.tag("docker.io/library/app", "1.0", m.digest);

    // THEN the files are where registry/storage/paths.go looks for them
    const hexB = b.digest.slice(7);
    const hexM = m.digest.slice(7);
    const v2 = path.join(dir.path, "docker/registry/v2");
    expect(await fs.readFile(path.join(v2, "blobs/sha256", hexB.slice(0, 2), hexB, "data"))).toEqual(blob);
    const repo = path.join(v2, "repositories/docker.io/library/app");
    expect(await fs.readFile(path.join(repo, "_layers/sha256", hexB, "link"), "utf8")).toBe(b.digest);
    expect(await fs.readFile(path.join(repo, "_manifests/revisions/sha256", hexM, "link"), "utf8")).toBe(m.digest);
    expect(await fs.readFile(path.join(repo, "_manifests/tags/1.0/current/link"), "utf8")).toBe(m.digest);
    expect(await fs.readFile(path.join(repo, "_manifests/tags/1.0/index/sha256", hexM, "link"), "utf8")).toBe(m.digest);
    expect(await listRepositories(dir.path)).toEqual(["docker.io/library/app"]);
    expect(await listTags(dir.path, "docker.io/library/app")).toEqual(["1.0"]);
    expect(await listTags(dir.path, "docker.io/library/none")).toEqual([]);
  });

  it("does not rewrite a blob that is present", async () => {
    const layout = new DistributionLayout(dir.path);
    const data = Buffer.from("same");
    expect((await layout.putBlob(data)).written).toBe(true);
    const before = await fs.stat(layout.blobDataPath(sha256(data)));
    expect((await layout.putBlob(data)).written).toBe(false);
    const streamed = await layout.putBlobStream(Readable.from([data]), { digest: sha256(data) });
    expect(streamed.written).toBe(false);
    expect((await fs.stat(layout.blobDataPath(sha256(data)))).ino).toBe(before.ino);
  });

  it("verifies a streamed blob before renaming it into place", async () => {
    // GIVEN a stream whose content does not match the expected digest
    const layout = new DistributionLayout(dir.path);
    const expected = sha256("right");
    // WHEN it is written THEN it fails and nothing (not even a temp file) is left
    await expect(layout.putBlobStream(Readable.from([Buffer.from("wrong")]), { digest: expected })).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await layout.hasBlob(expected)).toBe(false);
    const blobDir = path.dirname(layout.blobDataPath(expected));
    expect(await fs.readdir(blobDir).catch(() => [])).toEqual([]);
  });

  it("fails (does not hang) when the source stream fails, even before it is consumed", async () => {
    const layout = new DistributionLayout(dir.path);
    const failing = new Readable({ read() {} });
    failing.on("error", () => undefined); // the owner of a stream that fails early has a listener
    failing.destroy(new Error("connection reset"));
    await expect(layout.putBlobStream(failing, { digest: sha256("x") })).rejects.toThrow(/connection reset/);
  });
});

describe("choosePlatform", () => {
  const d = (platform: Descriptor["platform"], n: number, annotations?: Record<string, string>): Descriptor => ({
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
    size: 1,
    ...(platform ? { platform } : {}),
    ...(annotations ? { annotations } : {}),
  });
  const list = [
    d({ os: "linux", architecture: "amd64" }, 1),
    d({ os: "linux", architecture: "arm", variant: "v6" }, 2),
    d({ os: "linux", architecture: "arm", variant: "v7" }, 3),
    d({ os: "linux", architecture: "arm64", variant: "v8" }, 4),
    d({ os: "unknown", architecture: "unknown" }, 5, { "vnd.docker.reference.type": "attestation-manifest" }),
  ];
  it("matches os/arch, filling in default variants", () => {
    expect(choosePlatform(list, { os: "linux", architecture: "amd64" })?.digest).toBe(list[0]!.digest);
    expect(choosePlatform(list, { os: "linux", architecture: "arm64" })?.digest).toBe(list[3]!.digest);
    expect(choosePlatform(list, { os: "linux", architecture: "arm" })?.digest).toBe(list[2]!.digest);
    expect(choosePlatform(list, { os: "linux", architecture: "arm", variant: "v6" })?.digest).toBe(list[1]!.digest);
    expect(choosePlatform(list, { os: "linux", architecture: "s390x" })).toBeUndefined();
    expect(choosePlatform(list, { os: "unknown", architecture: "unknown" })).toBeUndefined();
  });
});

describe("isTransient", () => {
  it("retries broken bodies and other sources' server, throttling and network errors; leaves RegistryErrors to the client's own retries", () => {
    const reg = (status?: number, code?: string) =>
      new RegistryError({ registry: "r", method: "GET", path: "r/v2/x", ...(status !== undefined ? { status } : {}), ...(code ? { code } : {}) });
    expect(isTransient(new DigestMismatchError("blob", "a", "b"))).toBe(true);
    expect(isTransient(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }))).toBe(true);
    expect(isTransient(Object.assign(new Error("Service Unavailable"), { status: 503 }))).toBe(true);
    expect(isTransient(Object.assign(new Error("Too Many Requests"), { status: 429 }))).toBe(true);
    expect(isTransient(Object.assign(new Error("Not Found"), { status: 404 }))).toBe(false);
    expect(isTransient(reg(503))).toBe(false);
    expect(isTransient(reg(undefined, "ECONNRESET"))).toBe(false);
    expect(isTransient(reg(404))).toBe(false);
    expect(isTransient(Object.assign(new Error("aborted"), { name: "AbortError" }))).toBe(false);
    expect(isTransient(new Error("invalid image reference"))).toBe(false);
  });
});

describe("cacheImages input handling", () => {
  it("rejects invalid references up front, naming each", async () => {
    const err = await cacheImages(["UPPER/Case:1", "ok:1", "bad@sha256:xyz"], dir.path, {
      sourceFor: () => {
        throw new Error("no source should be asked");
      },
      platform: { os: "linux", architecture: "amd64" },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/caching 2 images failed/);
    expect((err as Error).message).toContain("UPPER/Case:1");
    expect((err as Error).message).toContain("bad@sha256:xyz");
  });

  it("stops at once when the signal is aborted", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(
      cacheImages(["nginx:1"], dir.path, {
        sourceFor: () => ({ getManifest: () => new Promise(() => {}), openBlob: () => new Promise(() => {}) }),
        platform: { os: "linux", architecture: "amd64" },
        signal: ac.signal,
      }),
    ).rejects.toThrow();
  });
});
