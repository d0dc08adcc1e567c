import { mkdtemp, readdir, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveClusterImage } from "../../../../src/engine/cluster/image";
import { loadArchive } from "../../../../src/engine/image/archive";
import { Session } from "../../../../src/engine/session";
import { ociImageEntries, tarBytes, tarGzBytes } from "../../../support/hostile-archive";

/**
 * A host assembles an image with `rm -rf` of each whiteout and `cp` of each layer over the ones
 * below (src/engine/cluster/host/distribute.ts): tried on a sandbox host, layer 1's
 * `esc -> /some/dir` plus layer 2's `esc/.wh.victim` removed /some/dir/victim. An image sealant
 * did not build (loaded, pulled) may hold such a stack, so it is refused before any layer leaves
 * the operator.
 */
let work: string;
let session: Session;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "sealant-layer-check-"));
  session = await Session.open({ home: join(work, "home") });
});
afterAll(async () => {
  session?.close();
  await rm(work, { recursive: true, force: true });
});

async function load(name: string, layers: Buffer[]): Promise<string> {
  const path = join(work, `${name}.tar`);
  const ref = `docker.io/library/${name}:1`;
  await writeFile(path, tarBytes(ociImageEntries(layers, ref)));
  await loadArchive(session.store, path);
  return ref;
}

describe("an image's layers are checked as hosts will apply them", () => {
  it("GIVEN a loaded image whose second layer whites out a file through the first layer's link out WHEN it is resolved for hosts THEN it is refused naming the layer, the entry and the link", async () => {
    const ref = await load("evil", [
      tarGzBytes([{ type: "symlink", name: "esc", target: "/some/dir" }]),
      tarGzBytes([{ type: "file", name: "esc/.wh.victim" }]),
    ]);
    await expect(resolveClusterImage(session, ref, undefined, { pull: false })).rejects.toThrow(
      /^layer 2 of docker\.io\/library\/evil:1 \(linux\/amd64\): entry "esc\/\.wh\.victim" is under "esc", a symlink to "\/some\/dir" from layer 1 of .*a host would follow it/,
    );
    expect(await readdir(join(session.store.root, "checked")).catch(() => [])).toEqual([]);
  });

  it("GIVEN a well-formed image WHEN resolved twice THEN the first time reads its layers and the second trusts the record (the layers are not read again)", async () => {
    const layer = tarGzBytes([
      { type: "dir", name: "etc" },
      { type: "symlink", name: "etc/current", target: "/etc/app" },
      { type: "file", name: "etc/app.conf", content: "ok\n" },
    ]);
    const ref = await load("fine", [layer]);
    const first = await resolveClusterImage(session, ref, undefined, { pull: false });
    expect(await readdir(join(session.store.root, "checked"))).toHaveLength(1);
    // The check reads the layer blob; with it gone, only the record can make the second resolve pass.
    const digest = first.platforms.get("linux/amd64")!.layers[0]!.digest;
    await unlink(join(session.store.root, "blobs", "sha256", digest.slice("sha256:".length)));
    await expect(resolveClusterImage(session, ref, undefined, { pull: false })).resolves.toMatchObject({ ref });
  });
});
