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
 * merge stacks layers of several images as digest-checked blobs; the merged stack can put one
 * image's link under another image's entries, which a host assembling the image would follow,
 * so merge reads the stacked layers' names and refuses that.
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
  const through: Array<[string, HostileEntry[], RegExp]> = [
    ["a file", [{ type: "file", name: "esc/pwned", content: "x\n" }], /entry "esc\/pwned" is under "esc"/],
    ["a whiteout", [{ type: "file", name: "esc/.wh.victim" }], /entry "esc\/\.wh\.victim" is under "esc"/],
    ["an opaque marker", [{ type: "file", name: "esc/.wh..wh..opq" }], /entry "esc\/\.wh\.\.wh\.\.opq" is under "esc"/],
    ["a hard link's source", [{ type: "hardlink", name: "h", target: "esc/victim" }], /entry "h" is a hard link to "esc\/victim", which is under "esc"/],
  ];
  for (const [what, entries, message] of through) {
    it(`GIVEN one image linking esc out and another with ${what} under esc WHEN merged THEN it is refused by layer, entry and link, nothing tagged`, async () => {
      await loadImage("docker.io/library/links:1", [{ type: "symlink", name: "esc", target: outside }]);
      const other = `docker.io/library/under-${what.replace(/\W+/g, "-")}:1`;
      await loadImage(other, entries);
      const merging = mergeImages(session.store, ["docker.io/library/links:1", other], "merged:1");
      await expect(merging).rejects.toThrow(new RegExp(`^cannot merge \\(linux/amd64\\): layer 1 of ${other.replace(/[.]/g, "\\.")}: ${message.source}`));
      await expect(merging).rejects.toThrow(/a symlink to ".*" from layer 1 of docker\.io\/library\/links:1: a host would follow it/);
      await expect(session.store.resolve("merged:1")).rejects.toThrow();
      expect(await readdir(outside)).toEqual(["victim"]);
    });
  }

  it("GIVEN a link the next image whites out and replaces with a directory WHEN merged and built FROM with a RUN THEN it is merged, and nothing outside changes", async () => {
    await loadImage("docker.io/library/links:1", [{ type: "symlink", name: "esc", target: outside }]);
    await loadImage("docker.io/library/replaces:1", [
      { type: "file", name: ".wh.esc" },
      { type: "dir", name: "esc" },
      { type: "file", name: "esc/inside", content: "in\n" },
    ]);
    await mergeImages(session.store, ["docker.io/library/links:1", "docker.io/library/replaces:1"], "merged-ok:1");
    const ctx = await mkdtemp(join(work, "ctx-"));
    await writeFile(join(ctx, "Kubefile"), "FROM merged-ok:1\nRUN test -f esc/inside\n");
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
