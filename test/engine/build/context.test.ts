import { execFileSync, spawn } from "node:child_process";
import { closeSync, constants as fsConstants, openSync, writeSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { build, hashContext, readKubefile } from "../../../src/engine/build";
import { Session } from "../../../src/engine/session";

/**
 * engine/build/context: what a build may read of its context. Special files (FIFO, socket,
 * device) are refused by their path in the context before anything opens them (a FIFO used to
 * block the build for ever); symlink loops and links out of the context are clear errors, and a
 * link inside a copied directory is copied as a link, never followed.
 */

const temps: string[] = [];
const servers: Server[] = [];
async function temp(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}
afterAll(async () => {
  for (const s of servers) s.close();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

async function contextWith(kubefile: string, files: Record<string, string> = {}): Promise<string> {
  const ctx = await temp("sealant-ctx-");
  await writeFile(join(ctx, "Kubefile"), kubefile);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(ctx, name, ".."), { recursive: true });
    await writeFile(join(ctx, name), content);
  }
  return ctx;
}

async function buildIn(ctx: string, tag = "ctx:1") {
  const session = await Session.open({ home: await temp("sealant-home-") });
  try {
    return { result: await build(session, { context: ctx, tag }), session };
  } catch (err) {
    // THEN nothing of the failed build stays in the home's scratch space
    const scratch = await readdir(join(session.store.root, "..", "tmp")).catch(() => []);
    expect(scratch).toEqual([]);
    session.close();
    throw err;
  }
}

async function listenOnSocket(path: string): Promise<void> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, () => r()));
}

describe("special files in the build context", () => {
  it("refuses a FIFO named as a COPY or ADD source, by its path in the context (no hang)", { timeout: 20_000 }, async () => {
    // GIVEN a context whose Kubefile copies a FIFO nobody writes to
    const ctx = await contextWith("FROM scratch\nCOPY pipe data/pipe\n");
    execFileSync("mkfifo", [join(ctx, "pipe")]);
    // THEN the build fails at once, naming the line and the FIFO
    await expect(buildIn(ctx)).rejects.toThrow(
      'Kubefile:2: COPY source "pipe" in the build context is a FIFO: only files, directories and symlinks can be copied',
    );
    // AND ADD (which peeks at a source to see whether it is an archive) refuses it the same way
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nADD pipe data/\n");
    await expect(buildIn(ctx)).rejects.toThrow('Kubefile:2: ADD source "pipe" in the build context is a FIFO');
  });

  it("refuses a FIFO, a socket or a device inside a copied directory or matched by a glob", { timeout: 20_000 }, async () => {
    // GIVEN a directory holding a FIFO deep inside
    const ctx = await contextWith("FROM scratch\nCOPY manifests manifests\n", { "manifests/a.yaml": "a: 1\n" });
    await mkdir(join(ctx, "manifests/deep"), { recursive: true });
    execFileSync("mkfifo", [join(ctx, "manifests/deep/pipe")]);
    await expect(buildIn(ctx)).rejects.toThrow('Kubefile:2: COPY source "manifests/deep/pipe" in the build context is a FIFO');
    // AND a socket matched by a glob
    await rm(join(ctx, "manifests/deep"), { recursive: true });
    await listenOnSocket(join(ctx, "manifests/app.sock"));
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nCOPY manifests/* manifests/\n");
    await expect(buildIn(ctx)).rejects.toThrow('Kubefile:2: COPY source "manifests/app.sock" in the build context is a socket');
    // AND a character device in an APP's directory
    await rm(join(ctx, "manifests/app.sock"));
    execFileSync("mknod", [join(ctx, "manifests/null"), "c", "1", "3"]);
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nAPP web local://manifests\n");
    await expect(buildIn(ctx)).rejects.toThrow('Kubefile:2: APP source "manifests/null" in the build context is a character device');
  });

  it("refuses a FIFO as the context's Kubefile and when hashing the context", { timeout: 20_000 }, async () => {
    const ctx = await temp("sealant-ctx-");
    execFileSync("mkfifo", [join(ctx, "Kubefile")]);
    await expect(readKubefile(ctx, undefined)).rejects.toThrow(`cannot read the Kubefile ${join(ctx, "Kubefile")}: it is a FIFO, not a file`);
    await expect(hashContext(ctx, "FROM scratch\n", {}, [])).rejects.toThrow(
      `the build context ${ctx} holds a FIFO at "Kubefile": only files, directories and symlinks can be in a build context`,
    );
  });
});

describe("the Kubefile given with -f", () => {
  it("may be a pipe, but not a device, and not larger than 16 MiB", { timeout: 20_000 }, async () => {
    const ctx = await temp("sealant-ctx-");
    await expect(readKubefile(ctx, "/dev/zero")).rejects.toThrow("cannot read the Kubefile /dev/zero: it is a character device, not a file");
    // AND a FIFO no program writes to is named at once (opening it used to wait for ever)
    const lonely = join(ctx, "lonely");
    execFileSync("mkfifo", [lonely]);
    await expect(readKubefile(ctx, lonely)).rejects.toThrow(
      `cannot read the Kubefile ${lonely}: it is a FIFO with nothing written to it (no program has it open for writing)`,
    );
    // GIVEN a FIFO a writer fills with a Kubefile (as -f <(generate) does). The test holds the
    // FIFO open read-write first, so the writer is there before readKubefile opens it.
    const pipe = join(ctx, "generated");
    execFileSync("mkfifo", [pipe]);
    let keeper = openSync(pipe, fsConstants.O_RDWR);
    writeSync(keeper, "FROM scratch\n");
    const read = readKubefile(ctx, pipe);
    setTimeout(() => closeSync(keeper), 200);
    expect(await read).toEqual({ text: "FROM scratch\n", file: pipe });
    // AND one that never stops writing
    keeper = openSync(pipe, fsConstants.O_RDWR);
    const endless = spawn("sh", ["-c", `exec head -c 17000000 /dev/zero > ${pipe}`]);
    await expect(readKubefile(ctx, pipe)).rejects.toThrow(`cannot read the Kubefile ${pipe}: it is larger than 16 MiB, which no Kubefile is`);
    closeSync(keeper);
    await new Promise((r) => endless.on("close", r));
  });
});

describe("symlinks in the build context", () => {
  it("names a symlink loop given as a source", async () => {
    const ctx = await contextWith("FROM scratch\nCOPY loop x\n");
    await symlink("loop", join(ctx, "loop"));
    await expect(buildIn(ctx)).rejects.toThrow('Kubefile:2: COPY source "loop" is a symlink loop in the build context');
  });

  it("copies links inside a copied directory as links (a loop or a link out of the context is not followed)", async () => {
    // GIVEN a directory with a link loop, a link to its parent and a link out of the context
    const ctx = await contextWith("FROM scratch\nCOPY tree tree\n", { "tree/a.txt": "a\n" });
    await symlink("self", join(ctx, "tree/self"));
    await symlink("..", join(ctx, "tree/up"));
    await symlink("/etc", join(ctx, "tree/etc"));
    // WHEN it is built, and the context hashed
    const { result, session } = await buildIn(ctx);
    expect(await hashContext(ctx, "FROM scratch\n", {}, [])).toMatch(/^sha256:/);
    // THEN the layer holds the three links with their targets as written, nothing read through them
    const { manifest } = await session.store.manifestFor(result.descriptor);
    const tar = execFileSync("tar", ["-tvzf", "-"], { input: await session.store.readBlob(manifest.layers[0]!.digest) }).toString();
    expect(tar).toMatch(/tree\/etc -> \/etc/);
    expect(tar).toMatch(/tree\/self -> self/);
    expect(tar).toMatch(/tree\/up -> \.\./);
    expect(tar).not.toMatch(/passwd/);
    session.close();
  });
});

describe("COPY destinations", () => {
  it("resolves .. in a destination at the image's root, as Docker does: no layer entry starts with ..", async () => {
    // GIVEN a COPY whose destination climbs above the root
    const ctx = await contextWith("FROM scratch\nCOPY a.txt ../../etc/../x.txt\nCOPY a.txt ..\n", { "a.txt": "a\n" });
    // WHEN it is built
    const { result, session } = await buildIn(ctx);
    // THEN the files land at the root of the image
    const { manifest } = await session.store.manifestFor(result.descriptor);
    const names = [];
    for (const l of manifest.layers)
      names.push(
        ...execFileSync("tar", ["-tzf", "-"], { input: await session.store.readBlob(l.digest) })
          .toString()
          .split("\n")
          .filter(Boolean),
      );
    expect(names).toEqual(["x.txt", "a.txt"]);
    session.close();
  });

  it("refuses a name over 255 bytes or a path over 3900 bytes, with the line, before writing a layer", { timeout: 20_000 }, async () => {
    const ctx = await contextWith(`FROM scratch\nCOPY a.txt ${"n".repeat(300)}\n`, { "a.txt": "a\n", "w.yaml": "a: 1\n" });
    await expect(buildIn(ctx)).rejects.toThrow(/\/Kubefile:2: COPY would create "n{60}\.\.\.n{60}": a name longer than 255 bytes$/);
    // AND a destination 3000 directories deep (it used to take minutes and fail with ENAMETOOLONG)
    const started = Date.now();
    await writeFile(join(ctx, "Kubefile"), `FROM scratch\nCOPY a.txt ${"d/".repeat(3000)}x\n`);
    await expect(buildIn(ctx)).rejects.toThrow(/\/Kubefile:2: COPY would create "d\/d.*": a path longer than 3900 bytes$/);
    await writeFile(join(ctx, "Kubefile"), `FROM scratch\nAPP web local://w.yaml\nAPP ${"w".repeat(256)} local://w.yaml\n`);
    await expect(buildIn(ctx)).rejects.toThrow(/\/Kubefile:3: APP would create "w{60}\.\.\.w{60}": a name longer than 255 bytes$/);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
