import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import * as tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { extractLayer } from "../../../src/engine/build/layer-extract";
import { Session } from "../../../src/engine/session";

type Entry = { name: string; type?: "file" | "symlink" | "link" | "directory"; linkname?: string; body?: string };

/** A gzipped layer with exactly these entries, stored as a blob. */
async function layer(session: Session, entries: Entry[]) {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => pack.on("end", () => r()));
  for (const e of entries) {
    const type = e.type ?? "file";
    const header = { name: e.name, type, mode: type === "directory" ? 0o755 : 0o644, ...(e.linkname ? { linkname: e.linkname } : {}) };
    if (type === "file") pack.entry(header, e.body ?? "");
    else pack.entry(header);
  }
  pack.finalize();
  await ended;
  return (await session.store.putBlob(gzipSync(Buffer.concat(chunks)))).digest;
}

/**
 * Hostile layers, as an ADD archive or a FROM base image can bring them: every path an entry,
 * whiteout or hard link reaches through a symlink stays inside the rootfs (the build machine's
 * own files are never touched), while the links themselves are kept as written.
 */
describe("applying a layer onto a rootfs (RUN's view of earlier layers)", () => {
  let home: string;
  let session: Session;
  let outside: string;
  let root: string;
  const outsides: string[] = [];

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "sealant-extract-"));
    session = await Session.open({ home });
  });
  afterAll(async () => {
    session?.close();
    for (const d of [home, ...outsides]) await rm(d, { recursive: true, force: true });
  });

  const fresh = async () => {
    outside = await mkdtemp(join(tmpdir(), "sealant-outside-"));
    outsides.push(outside);
    await writeFile(join(outside, "victim"), "keep me\n");
    root = await mkdtemp(join(home, "rootfs-"));
  };

  it("GIVEN a link to an absolute directory and an entry through it WHEN applied THEN the entry lands under the rootfs, the link is kept", async () => {
    await fresh();
    const digest = await layer(session, [
      { name: "esc", type: "symlink", linkname: outside },
      { name: "esc/pwned", body: "x\n" },
    ]);
    await extractLayer(session.store, digest, root);
    expect(await readdir(outside)).toEqual(["victim"]);
    expect(await readFile(join(root, outside, "pwned"), "utf8")).toBe("x\n");
    expect(await readlink(join(root, "esc"))).toBe(outside);
  });

  it("GIVEN a link climbing with .. WHEN an entry goes through it THEN it stops at the rootfs", async () => {
    await fresh();
    const digest = await layer(session, [
      { name: "a/b/up", type: "symlink", linkname: "../../../../../../../../.." },
      { name: `a/b/up${outside}/pwned`, body: "x\n" },
    ]);
    await extractLayer(session.store, digest, root);
    expect(await readdir(outside)).toEqual(["victim"]);
    expect(await readFile(join(root, outside, "pwned"), "utf8")).toBe("x\n");
  });

  it("GIVEN a whiteout and an opaque marker behind a link from an earlier layer WHEN applied THEN nothing outside is removed", async () => {
    await fresh();
    await extractLayer(session.store, await layer(session, [{ name: "esc", type: "symlink", linkname: outside }]), root);
    await extractLayer(session.store, await layer(session, [{ name: "esc/.wh.victim" }, { name: "esc/.wh..wh..opq" }]), root);
    expect(await readFile(join(outside, "victim"), "utf8")).toBe("keep me\n");
  });

  it("GIVEN a hard link whose source goes through a link outside WHEN applied THEN it is refused, nothing outside is linked", async () => {
    await fresh();
    const digest = await layer(session, [
      { name: "esc", type: "symlink", linkname: outside },
      { name: "stolen", type: "link", linkname: "esc/victim" },
    ]);
    await expect(extractLayer(session.store, digest, root)).rejects.toThrow(/ENOENT/);
    await expect(readFile(join(root, "stolen"))).rejects.toThrow(/ENOENT/);
  });

  it("GIVEN a link loop WHEN an entry goes through it THEN the layer is refused by name", async () => {
    await fresh();
    const digest = await layer(session, [
      { name: "loop", type: "symlink", linkname: "loop" },
      { name: "loop/x", body: "x\n" },
    ]);
    await expect(extractLayer(session.store, digest, root)).rejects.toThrow(/more than 40 symlinks on the way to "loop"/);
  });

  it("GIVEN an entry named with .. WHEN applied THEN the layer is refused", async () => {
    await fresh();
    const digest = await layer(session, [{ name: "../escaped", body: "x\n" }]);
    await expect(extractLayer(session.store, digest, root)).rejects.toThrow(/escapes the root/);
    expect(await readdir(outside)).toEqual(["victim"]);
  });
});

describe("a layer's own whiteouts (OCI: they hide only what earlier layers made)", () => {
  let home: string;
  let session: Session;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "sealant-extract-own-"));
    session = await Session.open({ home });
  });
  afterAll(async () => {
    session?.close();
    await rm(home, { recursive: true, force: true });
  });

  it("GIVEN a name that sorts before its own whiteout (-x, then .wh.-x) WHEN applied THEN the lower -x goes and this layer's -x stays", async () => {
    const root = await mkdtemp(join(home, "rootfs-"));
    await extractLayer(session.store, await layer(session, [{ name: "-x/old", body: "old\n" }]), root);
    await extractLayer(
      session.store,
      await layer(session, [
        { name: "-x", type: "symlink", linkname: "target" },
        { name: ".wh.-x" },
        { name: "d/-kept", body: "new\n" },
        { name: "d/.wh..wh..opq" },
      ]),
      root,
    );
    expect(await readlink(join(root, "-x"))).toBe("target");
    expect(await readdir(join(root, "d"))).toEqual(["-kept"]);
  });
});
