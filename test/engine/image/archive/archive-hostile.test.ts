import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../../src/engine/build";
import { ArchiveError, loadArchive } from "../../../../src/engine/image/archive";
import { Session } from "../../../../src/engine/session";
import { hostile, ociImageEntries, tarBytes, tarGzBytes, type HostileEntry } from "../../../support/hostile-archive";

/**
 * `load` against the hostile-archive generator: the archive's own entries (the only paths load
 * takes from it) are refused before anything is named, and a hostile layer — which load stores
 * as an opaque, digest-checked blob — is harmless when an image is built FROM it: RUN applies
 * it inside the rootfs.
 */
let work: string;
let session: Session;
let outside: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "sealant-load-hostile-"));
  session = await Session.open({ home: join(work, "home") });
  outside = await mkdtemp(join(tmpdir(), "sealant-load-outside-"));
  await writeFile(join(outside, "victim"), "keep me\n");
});
afterAll(async () => {
  session?.close();
  await rm(work, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

const layer = tarGzBytes([{ type: "file", name: "etc/app.conf", content: "ok\n" }]);
const image = (): HostileEntry[] => ociImageEntries([layer], "docker.io/library/evil:1");

async function loadBytes(name: string, bytes: Buffer) {
  const path = join(work, name);
  await writeFile(path, bytes);
  return loadArchive(session.store, path);
}

/** THEN: one ArchiveError naming the archive, nothing named, nothing written outside, no temp file in the store. */
async function expectRefused(name: string, bytes: Buffer, message: RegExp): Promise<void> {
  const loading = loadBytes(name, bytes);
  await expect(loading).rejects.toBeInstanceOf(ArchiveError);
  await expect(loading).rejects.toThrow(message);
  expect(await session.store.list()).toEqual([]);
  expect(await readdir(outside)).toEqual(["victim"]);
  const stray = (await readdir(join(session.store.root, "blobs", "sha256")).catch(() => [])).filter((n) => !/^[a-f0-9]{64}$/.test(n));
  expect(stray).toEqual([]);
}

describe("load refuses a hostile archive", () => {
  it("a PAX long name hiding .. past the ustar name field", async () => {
    await expectRefused("pax.tar", tarBytes([...hostile.longNameDotdot(), ...image()]), /entry "(d\/){60}(\.\.\/){64}pwned": a "\.\." path component/);
  });

  it("blobs/ made a link out, then a blob written through it", async () => {
    const entries: HostileEntry[] = [{ type: "symlink", name: "blobs", target: outside }, ...image()];
    await expectRefused("link.tar", tarBytes(entries), /entry "blobs": symlink entries are not allowed in an OCI archive \(it points to ".*"\)/);
  });

  it("index.json as a hard link to a file of the machine", async () => {
    await expectRefused(
      "hard.tar.gz",
      tarGzBytes([{ type: "hardlink", name: "index.json", target: "/etc/hostname" }]),
      /entry "index\.json": link entries are not allowed/,
    );
  });

  it("an absolute name", async () => {
    await expectRefused("abs.tar", tarBytes(hostile.absolute(outside)), /: an absolute path/);
  });

  it("device files", async () => {
    await expectRefused("dev.tar", tarBytes(hostile.devices()), /entry "dev\/mem": character-device entries are not allowed/);
  });

  it("a blob declaring 10 GiB with a few bytes behind it", async () => {
    const blob: HostileEntry = { type: "file", name: `blobs/sha256/${"a".repeat(64)}`, content: "short", declaredSize: 10 * 1024 ** 3 };
    await expectRefused("huge.tar", tarBytes([...image().slice(0, 2), blob]), /is truncated or not a tar archive/);
  });

  it("a truncated gzip stream", async () => {
    const whole = tarGzBytes(image());
    await expectRefused("cut.tar.gz", whole.subarray(0, whole.length - 100), /gzip stream is corrupt or truncated|is truncated/);
  });

  it("an image config whose diff_ids do not pair with the manifest's layers", async () => {
    await expectRefused(
      "diffids.tar",
      tarBytes(ociImageEntries([layer], "docker.io/library/evil:1", { diffIds: [] })),
      /: lists 1 layers but its config sha256:[a-f0-9]{64} 0 rootfs\.diff_ids/,
    );
  });

  it("index.json twice with different content", async () => {
    const entries = image();
    await expectRefused(
      "dup.tar",
      tarBytes([...entries, { type: "file", name: "index.json", content: "{}" }]),
      /entry "index\.json": duplicate entry with different content/,
    );
  });
});

describe("a hostile layer carried by a well-formed archive", () => {
  it("GIVEN a loaded image whose layer writes, whites out and hard-links through links out WHEN an image is built FROM it with a RUN THEN nothing outside changes", async () => {
    // GIVEN a layer holding every through-a-link trick, in an archive load accepts (it does not read layers)
    const evil = tarGzBytes([
      ...hostile.symlinkThenWrite(outside),
      ...hostile.dotdotLinkThenWrite(),
      { type: "symlink", name: "esc2", target: outside },
      { type: "file", name: "esc2/.wh.victim" },
      { type: "file", name: "esc2/.wh..wh..opq" },
    ]);
    const loaded = await loadBytes("evil-layer.tar", tarBytes(ociImageEntries([evil], "docker.io/library/evil-base:1")));
    expect(loaded.map((l) => l.ref)).toEqual(["docker.io/library/evil-base:1"]);
    // WHEN it is a base image and a RUN makes the build apply it
    const ctx = await mkdtemp(join(work, "ctx-"));
    await writeFile(join(ctx, "Kubefile"), "FROM docker.io/library/evil-base:1\nRUN true\n");
    await build(session, { context: ctx, tag: "from-evil:1" });
    // THEN the outside directory is as it was
    expect(await readdir(outside)).toEqual(["victim"]);
    expect(await readFile(join(outside, "victim"), "utf8")).toBe("keep me\n");
  });
});
