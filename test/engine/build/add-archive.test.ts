import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../src/engine/build";
import { Session } from "../../../src/engine/session";
import { hostile, tarBytes, tarGzBytes, type HostileEntry } from "../../support/hostile-archive";

/**
 * ADD unpacks archives from the context into a layer that every host later unpacks as root with
 * its own tar: each hostile archive is one error naming the Kubefile line, the archive and the
 * entry; nothing is written outside; what is accepted is a layer with relative names, no hard
 * links, no devices, no setuid bits and no entry under a link.
 */
let home: string;
let session: Session;
let outside: string;
const temps: string[] = [];

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "sealant-add-"));
  session = await Session.open({ home });
  outside = await mkdtemp(join(tmpdir(), "sealant-add-outside-"));
  await writeFile(join(outside, "victim"), "keep me\n");
  temps.push(home, outside);
});
afterAll(async () => {
  session?.close();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

/** Builds `FROM scratch / ADD <archive> x/ / RUN true` with these archive bytes. */
async function buildAdd(archive: Buffer, name = "evil.tar", tag = "add-test:1") {
  const ctx = await mkdtemp(join(tmpdir(), "sealant-add-ctx-"));
  temps.push(ctx);
  await writeFile(join(ctx, name), archive);
  await writeFile(join(ctx, "Kubefile"), `FROM scratch\nADD ${name} x/\nRUN true\n`);
  return build(session, { context: ctx, tag });
}

async function layerListing(tag: string): Promise<string> {
  const img = await session.store.resolve(tag);
  const { manifest } = await session.store.manifestFor(img.descriptor);
  return execFileSync("tar", ["-tvzf", "-", "--numeric-owner"], { input: await session.store.readBlob(manifest.layers[0]!.digest) }).toString();
}

const cases: Array<[string, () => HostileEntry[], RegExp]> = [
  ["a .. name", hostile.dotdot, /entry "a\/\.\.\/\.\.\/pwned" has a "\.\." component/],
  ["an absolute name", () => hostile.absolute(outside), /entry "\/.*\/pwned" has an absolute name/],
  [
    "a file written through a link to an absolute directory",
    () => hostile.symlinkThenWrite(outside),
    /entry "esc\/pwned" is under "esc", a symlink to "\/.*" in the same archive/,
  ],
  [
    "a file written through a link climbing with ..",
    hostile.dotdotLinkThenWrite,
    /entry "up\/tmp\/pwned" is under "up", a symlink to "\.\.\/\.\.\/.*" in the same archive/,
  ],
  ["a file written through a chain of links", () => hostile.linkChain(outside), /entry "a\/pwned" is under "a", a symlink to "b"/],
  [
    "a hard link to an absolute file",
    () => hostile.hardlinkOutside("/etc/hostname"),
    /entry "h" is a hard link to "\/etc\/hostname", which has an absolute name/,
  ],
  [
    "a hard link climbing with ..",
    () => hostile.hardlinkOutside("../../../etc/hostname"),
    /entry "h" is a hard link to "\.\.\/\.\.\/\.\.\/etc\/hostname", which has a "\.\." component/,
  ],
  ["a hard link through a link", () => hostile.hardlinkThroughLink(outside, "victim"), /entry "h" is under "esc", a symlink to/],
  [
    "a hard link to a name not yet in the archive",
    () => [{ type: "hardlink", name: "h", target: "later" }],
    /entry "h" is a hard link to "later", which is not a file earlier in the archive/,
  ],
  ["a whiteout through a link", () => hostile.whiteoutThroughLink(outside, "victim"), /entry "esc\/\.wh\.victim" is under "esc", a symlink/],
  ["an opaque marker through a link", () => hostile.opaqueThroughLink(outside), /entry "esc\/\.wh\.\.wh\.\.opq" is under "esc", a symlink/],
  [
    "a whiteout of its own",
    () => [{ type: "file", name: "etc/.wh.passwd" }],
    /entry "etc\/\.wh\.passwd" has a name starting with \.wh\., which a layer reserves for whiteouts/,
  ],
  ["device files", hostile.devices, /entry "dev\/mem" is a character-device: only files, directories and symlinks can be added/],
  ["a FIFO", () => [{ type: "fifo", name: "p" }], /entry "p" is a fifo: only files, directories and symlinks/],
  ["a setuid file", hostile.setuid, /entry "bin\/rootshell" is setuid \(mode 4755\): ADD does not carry setuid\/setgid bits/],
  ["a setgid file", hostile.setgid, /entry "bin\/groupshell" is setgid \(mode 2755\)/],
  [
    "a directory that becomes a link",
    () => hostile.duplicateDirThenLink(outside),
    /entry "d" comes twice in the archive, as a directory and then as a symlink/,
  ],
  [
    "a link placed over entries already inside it",
    () => [
      { type: "file", name: "esc/pwned", content: "x\n" },
      { type: "symlink", name: "esc", target: outside },
    ],
    /entry "esc" is a symlink, but earlier entries of the archive are inside it/,
  ],
  [
    "a file under a file",
    () => [
      { type: "file", name: "f" },
      { type: "file", name: "f/g" },
    ],
    /entry "f\/g" is under "f", which the archive made a file/,
  ],
  ["a PAX long name hiding ..", hostile.longNameDotdot, /entry "(d\/){60}(\.\.\/){64}pwned" has a "\.\." component/],
  ["a newline in a name", () => [{ type: "file", name: "a\n..\nb", content: "x" }], /entry "a\\n\.\.\\nb" has a control character in its name/],
  ["a link with an empty target", () => [{ type: "symlink", name: "l", target: "" }], /entry "l" is a symlink with an empty target/],
];

describe("ADD refuses a hostile archive by its entry", () => {
  for (const [what, entries, message] of cases) {
    for (const gz of [false, true]) {
      it(`${what} (${gz ? "tar.gz" : "tar"})`, async () => {
        // GIVEN the archive in the context WHEN ADD unpacks it
        const bytes = gz ? tarGzBytes(entries()) : tarBytes(entries());
        const name = gz ? "evil.tar.gz" : "evil.tar";
        const built = buildAdd(bytes, name);
        // THEN one error names the Kubefile line, the archive and the entry, and nothing outside changed
        await expect(built).rejects.toThrow(new RegExp(`/Kubefile:2: ADD ${name.replaceAll(".", "\\.")}: ${message.source}`));
        expect(await readdir(outside)).toEqual(["victim"]);
        expect(await readFile(join(outside, "victim"), "utf8")).toBe("keep me\n");
        await expect(session.store.resolve("add-test:1")).rejects.toThrow();
      });
    }
  }

  it("a file whose declared size the data never delivers, and a truncated tar.gz", async () => {
    await expect(buildAdd(tarBytes(hostile.hugeDeclaredSize()))).rejects.toThrow(/\/Kubefile:2: ADD evil\.tar: the tar archive is truncated or corrupt \(/);
    const whole = tarGzBytes([{ type: "file", name: "a", content: "x".repeat(100_000) }]);
    await expect(buildAdd(whole.subarray(0, whole.length - 200), "cut.tar.gz")).rejects.toThrow(
      /\/Kubefile:2: ADD cut\.tar\.gz: the gzip'd tar archive is truncated or corrupt \(/,
    );
    expect(await readdir(outside)).toEqual(["victim"]);
  });
});

describe("ADD keeps what a layer can safely carry", () => {
  it("relative names, links as written, hard links as copies, long names, the last of a repeated file, root as owner", async () => {
    // GIVEN an archive with links (inside and out, none written through), a hard link, a long name and a repeated file
    const long = `${"long-directory-name/".repeat(8)}file.txt`;
    const archive = tarGzBytes([
      { type: "dir", name: "./bin/" },
      { type: "file", name: "./bin/tool", content: "#!/bin/sh\necho tool\n", mode: 0o755, uid: 1000, gid: 1000 },
      { type: "hardlink", name: "./bin/tool-alias", target: "./bin/tool" },
      { type: "symlink", name: "bin/t", target: "tool" },
      { type: "symlink", name: "bin/host-etc", target: "/etc" },
      { type: "symlink", name: "bin/up", target: "../../.." },
      { type: "file", name: "conf", content: "old-old\n" },
      { type: "file", name: "conf", content: "new\n" },
      { type: "file", name: long, content: "long\n" },
    ]);
    // WHEN it is added and a RUN follows
    await buildAdd(archive, "ok.tar.gz", "add-ok:1");
    // THEN the layer has the entries under x/, root-owned, the hard link a plain file, the links as written
    const listing = await layerListing("add-ok:1");
    expect(listing).toMatch(/^-rwxr-xr-x 0\/0 +20 .* x\/bin\/tool$/m);
    expect(listing).toMatch(/^-rwxr-xr-x 0\/0 +20 .* x\/bin\/tool-alias$/m);
    expect(listing).toMatch(/x\/bin\/t -> tool$/m);
    expect(listing).toMatch(/x\/bin\/host-etc -> \/etc$/m);
    expect(listing).toMatch(/x\/bin\/up -> \.\.\/\.\.\/\.\.$/m);
    expect(listing).not.toMatch(/ link to /);
    expect(listing).toContain(`x/${long}`);
    expect(listing).toMatch(/^-rw-r--r-- 0\/0 +4 .* x\/conf$/m);
    expect(await readdir(outside)).toEqual(["victim"]);
  });

  it("a gzip file that holds no tar is added as it is, not unpacked", async () => {
    const ctx = await mkdtemp(join(tmpdir(), "sealant-add-ctx-"));
    temps.push(ctx);
    await writeFile(join(ctx, "notes.txt.gz"), gzipSync(Buffer.from("just text\n")));
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nADD notes.txt.gz docs/\n");
    await build(session, { context: ctx, tag: "add-gz:1" });
    expect(await layerListing("add-gz:1")).toMatch(/docs\/notes\.txt\.gz$/m);
  });
});

describe("COPY and ADD layers and the image's links", () => {
  it("GIVEN an earlier layer's link esc -> a directory of the build machine WHEN COPY targets esc THEN esc is resolved inside the image (not a directory there), so the file replaces the link", async () => {
    const ctx = await mkdtemp(join(tmpdir(), "sealant-add-ctx-"));
    temps.push(ctx);
    await writeFile(join(ctx, "links.tar"), tarBytes([{ type: "symlink", name: "esc", target: outside }]));
    await writeFile(join(ctx, "file"), "content\n");
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nADD links.tar /\nCOPY file esc\n");
    const built = await build(session, { context: ctx, tag: "copy-link:1" });
    const { manifest } = await session.store.manifestFor(built.descriptor);
    const listing = execFileSync("tar", ["-tzf", "-"], { input: await session.store.readBlob(manifest.layers[1]!.digest) }).toString();
    expect(listing.trim().split("\n")).toEqual(["esc"]);
    expect(await readdir(outside)).toEqual(["victim"]);
  });

  it("GIVEN a file named with a newline in the context WHEN COPY adds it THEN it is refused by name", async () => {
    const ctx = await mkdtemp(join(tmpdir(), "sealant-add-ctx-"));
    temps.push(ctx);
    await writeFile(join(ctx, "two\nlines"), "");
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nCOPY . etc/\n");
    await expect(build(session, { context: ctx, tag: "copy-nl:1" })).rejects.toThrow(
      /\/Kubefile:2: COPY would put "etc\/two\\nlines" in the image: a name with a control character cannot be copied; rename it/,
    );
  });

  it("GIVEN a file named .wh.x in the context WHEN COPY adds it THEN it is refused: in a layer it would delete x", async () => {
    const ctx = await mkdtemp(join(tmpdir(), "sealant-add-ctx-"));
    temps.push(ctx);
    await writeFile(join(ctx, ".wh.passwd"), "");
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nCOPY .wh.passwd etc/\n");
    await expect(build(session, { context: ctx, tag: "copy-wh:1" })).rejects.toThrow(
      /\/Kubefile:2: COPY would put "etc\/\.wh\.passwd" in the image: a name starting with \.wh\. is a whiteout \(a deletion\) in a layer/,
    );
  });

  it.each([
    ["APP", ".wh.passwd.sh", /\/Kubefile:2: APP would put "application\/apps\/app\/\.wh\.passwd\.sh" in the image: a name starting with \.wh\. is a whiteout/],
    ["CNI", "two\nlines.sh", /\/Kubefile:2: CNI would put "application\/apps\/app\/two\\nlines\.sh" in the image: a name with a control character/],
  ])("GIVEN %s of a directory holding %j THEN it is refused like COPY", async (kind, name, message) => {
    const ctx = await mkdtemp(join(tmpdir(), "sealant-add-ctx-"));
    temps.push(ctx);
    await mkdir(join(ctx, "app"));
    await writeFile(join(ctx, "app", "install.sh"), "#!/bin/sh\n");
    await writeFile(join(ctx, "app", name), "");
    await writeFile(join(ctx, "Kubefile"), `FROM scratch\n${kind} app local://app\n`);
    await expect(build(session, { context: ctx, tag: `app-${kind.toLowerCase()}:1` })).rejects.toThrow(message);
  });
});
