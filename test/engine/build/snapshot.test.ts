import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../src/engine/build";
import { HostLayout } from "../../../src/engine/cluster/host/layout";
import { assembleScript } from "../../../src/engine/cluster/host/distribute";
import { Session } from "../../../src/engine/session";

/**
 * What RUN changed becomes its layer; a directory that RUN turns into a link must not leave
 * whiteouts under the link (a host's tar would write them through it) and must reach the hosts
 * as "remove the old tree, then the link".
 */
let home: string;
let session: Session;
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "sealant-snapshot-"));
  session = await Session.open({ home });
});
afterAll(async () => {
  session?.close();
  await rm(home, { recursive: true, force: true });
});

describe("RUN replacing a directory with a link", () => {
  it("GIVEN d/ with files WHEN RUN makes d a link THEN the layer holds .wh.d and the link, nothing under it, and a host assembles d as the link", async () => {
    // GIVEN a directory d with files from a COPY
    const ctx = await mkdtemp(join(home, "ctx-"));
    await mkdir(join(ctx, "d"));
    await writeFile(join(ctx, "d", "f"), "f\n");
    await writeFile(join(ctx, "d", "g"), "g\n");
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nCOPY d d\nRUN rm -rf d && mkdir other && ln -s other d\n");
    // WHEN a RUN replaces it with a link
    const built = await build(session, { context: ctx, tag: "retype:1" });
    const { manifest } = await session.store.manifestFor(built.descriptor);
    const blobs = await Promise.all(manifest.layers.map((l) => session.store.readBlob(l.digest)));
    // THEN the RUN layer whites out d itself and has the link, no entry under d
    const listing = execFileSync("tar", ["-tzf", "-"], { input: blobs[1] }).toString().trim().split("\n").sort();
    expect(listing).toEqual([".wh.d", "d", "other/"]);
    // AND a host (GNU tar per layer, then the assembly script) ends with d as the link
    const layout = new HostLayout(await mkdtemp(join(home, "host-")));
    const dirs = ["l0", "l1"];
    for (const [i, blob] of blobs.entries()) {
      await mkdir(join(layout.layers, dirs[i]!), { recursive: true });
      execFileSync("tar", ["-xzf", "-", "-C", join(layout.layers, dirs[i]!)], { input: blob });
    }
    execFileSync("sh", ["-c", assembleScript(layout, built.digest, dirs)]);
    const rootfs = layout.rootfs(built.digest);
    expect(await readlink(join(rootfs, "d"))).toBe("other");
    expect((await readdir(rootfs)).sort()).toEqual(["d", "other"]);
  });
});
