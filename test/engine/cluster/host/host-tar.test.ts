import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../../src/engine/build";
import { openBed, type Bed } from "../../../support/bed";
import { hostile, tarGzBytes, type HostileEntry } from "../../../support/hostile-archive";
import { onHost, runOnHost } from "../../../support/hosts";

/**
 * A layer ADD builds is unpacked on every host as root by the host's own tar — GNU tar on most,
 * busybox tar on some. Both are run here on a sandbox host (127.0.10.246) against the layer
 * sealant wrote, and against raw hostile archives to show why the layer is shaped as it is.
 */
const FIRST = 246;
const WORK = "/var/tmp/sealant-host-tar";
const TARS = { gnu: "tar", busybox: "busybox tar" } as const;

let bed: Bed;
let host: string;
const temps: string[] = [];

beforeAll(async () => {
  bed = await openBed(1, FIRST);
  host = bed.ips[0]!;
  await onHost(bed.sandbox, host, `rm -rf ${WORK} && mkdir -p ${WORK}`);
});
afterAll(async () => {
  await bed?.close();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

/** Puts bytes on the host as a file (base64 over ssh's stdin). */
async function putOnHost(path: string, bytes: Buffer): Promise<void> {
  await onHost(bed.sandbox, host, `base64 -d > ${path}`, { input: bytes.toString("base64") });
}

/** Unpacks `archive` with `tar` in a fresh <dir>/target; returns tar's exit code and every path under <dir> (target's siblings included). */
async function unpack(tar: string, archive: string, dir: string): Promise<{ code: number; stderr: string; tree: string[] }> {
  await onHost(bed.sandbox, host, `rm -rf ${dir} && mkdir -p ${dir}/target ${dir}/outside`);
  const r = await runOnHost(bed.sandbox, host, `cd ${dir}/target && ${tar} -xzf ${archive}`);
  const tree = await onHost(bed.sandbox, host, `cd ${dir} && find . -mindepth 1 -printf '%p|%y|%n|%l\\n'`);
  return { code: r.code, stderr: r.stderr, tree: tree.split("\n").sort() };
}

describe("an ADD-built layer on a host's tar", () => {
  it("GIVEN links out of the image, links climbing with .., a hard link and a long name WHEN GNU tar and busybox tar unpack the layer THEN both make the same tree, all of it inside the target", async () => {
    // GIVEN an archive whose links point out of the image (kept: a link is data) and a hard link
    const long = `${"long-directory-name/".repeat(6)}file.txt`;
    const archive: HostileEntry[] = [
      { type: "dir", name: "bin" },
      { type: "file", name: "bin/tool", content: "#!/bin/sh\necho tool\n", mode: 0o755 },
      { type: "hardlink", name: "bin/tool-alias", target: "bin/tool" },
      { type: "symlink", name: "bin/t", target: "tool" },
      { type: "symlink", name: "bin/host-etc", target: "/etc" },
      { type: "symlink", name: "bin/up", target: "../../../../.." },
      { type: "symlink", name: "lib", target: "bin" },
      { type: "file", name: long, content: "long\n" },
    ];
    const ctx = await mkdtemp(join(tmpdir(), "sealant-host-tar-"));
    temps.push(ctx);
    await writeFile(join(ctx, "tools.tar.gz"), tarGzBytes(archive));
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nADD tools.tar.gz x/\n");
    // WHEN sealant builds the layer and each tar on the host unpacks it as root
    const built = await build(bed.session, { context: ctx, tag: "host-tar:1" });
    const { manifest } = await bed.session.store.manifestFor(built.descriptor);
    await putOnHost(`${WORK}/layer.tar.gz`, await bed.session.store.readBlob(manifest.layers[0]!.digest));
    const etcBefore = await onHost(bed.sandbox, host, "ls -A / /etc | md5sum");
    const results = {
      gnu: await unpack(TARS.gnu, `${WORK}/layer.tar.gz`, `${WORK}/gnu`),
      busybox: await unpack(TARS.busybox, `${WORK}/layer.tar.gz`, `${WORK}/busybox`),
    };
    // THEN both succeed with the same tree: the files and links under target/x, the hard link a
    // file of its own (one link), nothing beside target but the empty outside, the host's / and /etc unchanged
    const expected = [
      "./outside|d|2|",
      "./target|d|3|",
      "./target/x|d|4|",
      "./target/x/bin|d|2|",
      "./target/x/bin/host-etc|l|1|/etc",
      "./target/x/bin/t|l|1|tool",
      "./target/x/bin/tool|f|1|",
      "./target/x/bin/tool-alias|f|1|",
      "./target/x/bin/up|l|1|../../../../..",
      "./target/x/lib|l|1|bin",
      ...long
        .split("/")
        .map(
          (_, i, parts) =>
            `./target/x/${parts.slice(0, i + 1).join("/")}|${i === parts.length - 1 ? "f" : "d"}|${i === parts.length - 1 ? 1 : i === parts.length - 2 ? 2 : 3}|`,
        ),
    ].sort();
    for (const [name, r] of Object.entries(results)) {
      expect({ tar: name, code: r.code, stderr: r.stderr }).toEqual({ tar: name, code: 0, stderr: "" });
      expect(r.tree).toEqual(expected);
    }
    expect(await onHost(bed.sandbox, host, "ls -A / /etc | md5sum")).toBe(etcBefore);
  });
});

describe("why: what the hosts' tars do with the raw hostile archives ADD refuses", () => {
  it("busybox tar hard-links an absolute hard-link source to the host's own file (so a sealant layer has no hard links)", async () => {
    await putOnHost(`${WORK}/hard.tar.gz`, tarGzBytes(hostile.hardlinkOutside("/etc/hostname")));
    await unpack(TARS.busybox, `${WORK}/hard.tar.gz`, `${WORK}/hard`);
    const inodes = await onHost(bed.sandbox, host, `stat -c %i ${WORK}/hard/target/h /etc/hostname`);
    const [linked, hostFile] = inodes.split("\n");
    expect(linked).toBe(hostFile);
  });

  it("neither tar writes through esc -> outside, but each leaves a different tree and fails (so a sealant layer has no entry under its own link)", async () => {
    const dir = `${WORK}/through`;
    await putOnHost(`${WORK}/through.tar.gz`, tarGzBytes(hostile.symlinkThenWrite(`${dir}/outside`)));
    const gnu = await unpack(TARS.gnu, `${WORK}/through.tar.gz`, dir);
    expect(gnu.code).not.toBe(0);
    expect(gnu.tree).toEqual(["./outside|d|2|", "./target|d|2|", `./target/esc|l|1|${dir}/outside`].sort());
    const busybox = await unpack(TARS.busybox, `${WORK}/through.tar.gz`, dir);
    expect(busybox.code).not.toBe(0);
    expect(busybox.tree).toEqual(["./outside|d|2|", "./target|d|3|", "./target/esc|d|2|", "./target/esc/pwned|f|1|"].sort());
  });
});
