import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../src/engine/build";
import { loadArchive } from "../../../src/engine/image/archive";
import { MediaType } from "../../../src/engine/image/media-types";
import { mergeImages } from "../../../src/engine/image/merge";
import { Session } from "../../../src/engine/session";
import { ociImageEntries, tarBytes, tarGzBytes, type HostileEntry } from "../../support/hostile-archive";

/**
 * merge stacks layers of several images (it reads no path of theirs: layers move as
 * digest-checked blobs). A merged stack can put one image's link under another image's
 * entries; building FROM the merge applies them inside the rootfs all the same.
 */
let work: string;
let session: Session;
let outside: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "sealant-merge-"));
  session = await Session.open({ home: join(work, "home") });
  outside = await mkdtemp(join(tmpdir(), "sealant-merge-outside-"));
  await writeFile(join(outside, "victim"), "keep me\n");
});
afterAll(async () => {
  session?.close();
  await rm(work, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

async function loadImage(ref: string, layer: HostileEntry[]): Promise<void> {
  const path = join(work, `${ref.replace(/[/:]/g, "_")}.tar`);
  await writeFile(path, tarBytes(ociImageEntries([tarGzBytes(layer)], ref)));
  await loadArchive(session.store, path);
}

describe("merge with hostile inputs", () => {
  it("GIVEN one image linking esc out and another writing and whiting out under esc WHEN merged and built FROM with a RUN THEN nothing outside changes", async () => {
    await loadImage("docker.io/library/links:1", [{ type: "symlink", name: "esc", target: outside }]);
    await loadImage("docker.io/library/writes:1", [
      { type: "file", name: "esc/pwned", content: "x\n" },
      { type: "file", name: "esc/.wh.victim" },
      { type: "file", name: "esc/.wh..wh..opq" },
    ]);
    await mergeImages(session.store, ["docker.io/library/links:1", "docker.io/library/writes:1"], "merged:1");
    const ctx = await mkdtemp(join(work, "ctx-"));
    await writeFile(join(ctx, "Kubefile"), "FROM merged:1\nRUN true\n");
    await build(session, { context: ctx, tag: "from-merged:1" });
    expect(await readdir(outside)).toEqual(["victim"]);
    expect(await readFile(join(outside, "victim"), "utf8")).toBe("keep me\n");
  });

  it("GIVEN an image whose config names fewer diff_ids than its manifest has layers WHEN merged THEN one error names it and nothing is tagged", async () => {
    // (load refuses such an archive; the store takes it as any other source could bring it)
    const layer = await session.store.putBlob(tarGzBytes([{ type: "file", name: "a", content: "a\n" }]));
    const config = await session.store.putJson({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }, MediaType.ociConfig);
    const manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [{ ...layer, mediaType: MediaType.ociLayerGzip }] };
    await session.store.setTag("docker.io/library/short:1", await session.store.putJson(manifest, MediaType.ociManifest));
    await loadImage("docker.io/library/fine:1", [{ type: "file", name: "b", content: "b\n" }]);
    await expect(mergeImages(session.store, ["docker.io/library/fine:1", "docker.io/library/short:1"], "bad-merge:1")).rejects.toThrow(
      "cannot merge docker.io/library/short:1 (linux/amd64): its manifest lists 1 layers but its config 0 rootfs.diff_ids",
    );
    await expect(session.store.resolve("bad-merge:1")).rejects.toThrow();
  });
});

describe("merge of images that are not there", () => {
  it("names the first missing image as given, every time", async () => {
    for (let i = 0; i < 20; i++) {
      await expect(mergeImages(session.store, ["nothing/a:1", "nothing/b:1"], "m/x:1")).rejects.toThrow(/"nothing\/a:1" not found/);
    }
  });
});
