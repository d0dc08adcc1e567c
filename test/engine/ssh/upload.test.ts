import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packEntries, SshConnection, SshError, type UploadProgress } from "../../../src/engine/ssh";
import { DEFAULT_PASSWORD, startTestServer, type TestServer } from "./support/server";

describe("upload", () => {
  let server: TestServer;
  let conn: SshConnection;
  let local: string;
  beforeAll(async () => {
    server = await startTestServer();
    conn = await SshConnection.connect({
      host: server.host,
      port: server.port,
      password: DEFAULT_PASSWORD,
      hostKey: { fingerprints: [server.hostKeys[0]!.fingerprint] },
    });
    local = mkdtempSync(join(tmpdir(), "sealant-upload-src-"));
    mkdirSync(join(local, "tree", "bin"), { recursive: true });
    mkdirSync(join(local, "tree", "etc", "empty"), { recursive: true });
    writeFileSync(join(local, "tree", "bin", "tool"), "#!/bin/sh\necho tool\n");
    chmodSync(join(local, "tree", "bin", "tool"), 0o755);
    writeFileSync(join(local, "tree", "etc", "app.conf"), "a=1\n");
    symlinkSync("app.conf", join(local, "tree", "etc", "link.conf"));
    writeFileSync(join(local, "single.txt"), "single\n");
  });
  afterAll(async () => {
    await conn?.close();
    await server?.close();
    rmSync(local, { recursive: true, force: true });
  });

  const remote = (p: string): string => join(server.dir, p);
  const leftovers = (dir: string): string[] => readdirSync(remote(dir)).filter((n) => n.includes(".upload-"));

  it("uploads local files and directories to target paths, keeping modes and links", async () => {
    const target = remote("up1/app");
    const r = await conn.upload(target, [
      { local: join(local, "tree"), path: "." },
      { local: join(local, "single.txt"), path: "docs/single.txt" },
      { content: "inline\n", path: "etc/inline.txt", mode: 0o600 },
    ]);
    expect(r.target).toBe(target);
    expect(r.bytes).toBeGreaterThan(0);
    expect(readFileSync(join(target, "bin/tool"), "utf8")).toBe("#!/bin/sh\necho tool\n");
    expect(statSync(join(target, "bin/tool")).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(target, "etc/app.conf"), "utf8")).toBe("a=1\n");
    expect(lstatSync(join(target, "etc/link.conf")).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(target, "etc/link.conf"))).toBe("app.conf");
    expect(statSync(join(target, "etc/empty")).isDirectory()).toBe(true);
    expect(readFileSync(join(target, "docs/single.txt"), "utf8")).toBe("single\n");
    expect(statSync(join(target, "etc/inline.txt")).mode & 0o777).toBe(0o600);
    expect(leftovers("up1")).toEqual([]);
  });

  it("replaces an existing target as a whole", async () => {
    const target = remote("up2/app");
    await conn.upload(target, [{ content: "old\n", path: "old.txt" }]);
    await conn.upload(target, [{ content: "new\n", path: "new.txt" }]);
    expect(readdirSync(target)).toEqual(["new.txt"]);
    expect(leftovers("up2")).toEqual([]);
  });

  it("streams a ready tar, and a tar.gz (an image layer as it is) into tar -xz", async () => {
    // GIVEN a layer made by the system tar
    execFileSync("tar", ["-czf", join(local, "layer.tar.gz"), "-C", join(local, "tree"), "."]);
    const progress: UploadProgress[] = [];
    const r = await conn.upload(
      remote("up3/rootfs"),
      { tar: createReadStream(join(local, "layer.tar.gz")), gzip: true },
      { onProgress: (p) => progress.push(p) },
    );
    expect(r.bytes).toBe(statSync(join(local, "layer.tar.gz")).size);
    expect(progress.at(-1)?.bytes).toBe(r.bytes);
    expect(readFileSync(remote("up3/rootfs/etc/app.conf"), "utf8")).toBe("a=1\n");
    // and a plain tar stream made by packEntries
    await conn.upload(remote("up3/plain"), { tar: packEntries([{ content: "x", path: "x" }]) });
    expect(readFileSync(remote("up3/plain/x"), "utf8")).toBe("x");
  });

  /** A source that sends `prefix` and then fails, like a registry download dying mid-way. */
  function failingAfter(prefix: Buffer): Readable {
    let sent = false;
    return new Readable({
      read() {
        if (!sent) {
          sent = true;
          this.push(prefix);
        } else setTimeout(() => this.destroy(new Error("source connection reset")), 20);
      },
    });
  }

  async function tarOf(entries: Parameters<typeof packEntries>[0]): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of packEntries(entries)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  it("an upload interrupted mid-way leaves no target and no temp dir", async () => {
    const whole = await tarOf([{ content: randomBytes(4 << 20), path: "big.bin" }]);
    const err = await conn.upload(remote("up4/app"), { tar: failingAfter(whole.subarray(0, 1 << 20)) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshError);
    expect((err as Error).message).toMatch(/uploading to .*up4\/app: .*reading its stdin failed: source connection reset/);
    expect(existsSync(remote("up4/app"))).toBe(false);
    expect(leftovers("up4")).toEqual([]);
  });

  it("an upload cut exactly between entries (tar itself would accept it) is still not put in place", async () => {
    // GIVEN the target holds a previous complete upload
    await conn.upload(remote("up5/app"), [{ content: "previous\n", path: "v.txt" }]);
    // a tar cut right after an entry (its end-of-archive blocks missing): GNU tar extracts it and exits 0
    const whole = await tarOf([{ content: "one\n", path: "a.txt" }]);
    const cut = whole.subarray(0, whole.length - 1024);
    expect(execFileSync("tar", ["-t"], { input: cut, encoding: "utf8" })).toBe("a.txt\n");
    const err = await conn.upload(remote("up5/app"), { tar: failingAfter(cut) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshError);
    expect(readFileSync(remote("up5/app/v.txt"), "utf8")).toBe("previous\n");
    expect(existsSync(remote("up5/app/a.txt"))).toBe(false);
    expect(leftovers("up5")).toEqual([]);
  });

  it("a tar the host cannot extract fails with tar's stderr and leaves nothing", async () => {
    const err = await conn.upload(remote("up6/app"), { tar: Readable.from([randomBytes(10_000)]) }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/uploading to .*up6\/app: .*tar -xf - -C .* exited 2: .*tar: /s);
    expect(existsSync(remote("up6/app"))).toBe(false);
    expect(leftovers("up6")).toEqual([]);
  });

  it("an aborted upload leaves no target", async () => {
    const ac = new AbortController();
    const slow = new Readable({ read() {} });
    slow.push(Buffer.alloc(512 * 8));
    setTimeout(() => ac.abort(), 200);
    const err = await conn.upload(remote("up7/app"), { tar: slow }, { signal: ac.signal }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/aborted/);
    expect(existsSync(remote("up7/app"))).toBe(false);
    expect(leftovers("up7")).toEqual([]);
  });

  it("refuses a relative or root target and entries that escape it", async () => {
    await expect(conn.upload("relative/dir", [])).rejects.toThrow(/must be an absolute, normalised directory path/);
    await expect(conn.upload("/", [])).rejects.toThrow(/other than \//);
    await expect(conn.upload(remote("up8"), [{ content: "x", path: "../escape" }])).rejects.toThrow(/must be relative and stay inside/);
    expect(existsSync(remote("escape"))).toBe(false);
  });

  it("measures throughput of a 64 MiB stream (reported, not asserted)", async () => {
    const chunk = randomBytes(1 << 20);
    const body = await tarOf([{ content: Buffer.concat(Array.from({ length: 64 }, () => chunk)), path: "blob" }]);
    const r = await conn.upload(remote("up9/app"), { tar: Readable.from([body]) });
    console.log(`[ssh] upload 64 MiB tar: ${r.mibPerSec.toFixed(0)} MiB/s (client and in-process server share this process)`);
    expect(statSync(remote("up9/app/blob")).size).toBe(64 << 20);
  });
});
