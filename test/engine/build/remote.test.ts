import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../src/engine/build";
import { downloadSource } from "../../../src/engine/build/remote-source";
import { Session } from "../../../src/engine/session";

/**
 * engine/build/remote-source: ADD and APP http(s) downloads against a misbehaving server on
 * loopback that the test starts (its path chooses the misbehaviour): a size cap, an idle timeout,
 * an overall deadline, ADD --checksum verified while streaming, and nothing left when one fails.
 */

const BODY = Buffer.from("the file's bytes\n");
const SHA = createHash("sha256").update(BODY).digest("hex");
const temps: string[] = [];
let server: Server;
let other: Server;
let base: string;
const timers = new Set<NodeJS.Timeout>();

function misbehave(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? "/";
  // (the URL parser turns /dir/%2e%2e into /)
  if (path === "/file.bin" || path === "/" || path.startsWith("/dir/")) return void res.end(BODY);
  if (path === "/endless") {
    // An endless body, no Content-Length: 64 KiB chunks as fast as the client reads.
    res.writeHead(200);
    const chunk = Buffer.alloc(64 << 10, 1);
    const pump = (): void => {
      while (res.write(chunk));
      if (!res.destroyed) res.once("drain", pump);
    };
    return pump();
  }
  if (path === "/huge-announced") return void res.writeHead(200, { "content-length": String(10 * 1024 ** 3) }).end();
  if (path === "/trickle") {
    // A byte every 100 ms for ever: never idle, never done.
    res.writeHead(200);
    const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write("x")), 100);
    timers.add(t);
    return;
  }
  if (path === "/stall") return void res.writeHead(200).write("partial");
  if (path === "/no-headers") return; // never answers
  if (path === "/cut") {
    res.writeHead(200, { "content-length": "1000" });
    res.write("only a part");
    return void setTimeout(() => res.socket?.destroy(), 50);
  }
  if (path === "/redirect-loop") return void res.writeHead(302, { location: "/redirect-loop" }).end();
  if (path === "/redirect-127.0.0.2") {
    // Another loopback address of this machine: followed.
    return void res.writeHead(302, { location: `http://127.0.0.2:${(other.address() as { port: number }).port}/file.bin` }).end();
  }
  if (path === "/to-ftp") return void res.writeHead(302, { location: "ftp://127.0.0.1/x" }).end();
  res.writeHead(404).end();
}

beforeAll(async () => {
  server = createServer(misbehave);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  other = createServer(misbehave);
  await new Promise<void>((r) => other.listen(0, "127.0.0.2", () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  for (const t of timers) clearInterval(t);
  server.closeAllConnections();
  server.close();
  other.close();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

async function temp(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

const where = { file: "Kubefile", line: 2, instruction: "ADD" };

/** Downloads into a fresh scratch dir; on failure checks the dir is left empty and rethrows. */
async function download(path: string, opts: Parameters<typeof downloadSource>[3] = {}): Promise<string> {
  const scratch = await temp("sealant-dl-");
  try {
    return await downloadSource(`${base}${path}`, scratch, where, opts);
  } catch (err) {
    expect(await readdir(scratch)).toEqual([]);
    throw err;
  }
}

describe("downloadSource", () => {
  it("keeps a complete download under its URL name, and one matching its checksum", async () => {
    expect(await readFile(await download("/file.bin"), "utf8")).toBe(BODY.toString());
    expect(await readFile(await download("/file.bin", { checksum: `sha256:${SHA}` }), "utf8")).toBe(BODY.toString());
    // AND a redirect to another loopback address is followed
    expect(await readFile(await download("/redirect-127.0.0.2"), "utf8")).toBe(BODY.toString());
  });

  it("names a file whose URL path ends in an escaped .. or NUL 'download', inside its own directory", async () => {
    // (the URL parser resolves /dir/%2e%2e to /, whose last part is empty)
    for (const path of ["/dir/%2e%2e", "/dir/%00"]) {
      const file = await download(path);
      expect(file.endsWith("/download")).toBe(true);
      expect(await readFile(file, "utf8")).toBe(BODY.toString());
    }
  });

  it("refuses a checksum mismatch naming the URL, the expected and the actual digest, keeping nothing", async () => {
    const wrong = "0".repeat(64);
    await expect(download("/file.bin", { checksum: `sha256:${wrong}` })).rejects.toThrow(
      `Kubefile:2: ADD ${base}/file.bin: checksum mismatch: expected sha256:${wrong}, got sha256:${SHA}`,
    );
  });

  it("stops an endless body at the size cap, and refuses an announced size over it at once", { timeout: 20_000 }, async () => {
    await expect(download("/endless", { limits: { maxBytes: 1 << 20 } })).rejects.toThrow(
      `Kubefile:2: ADD ${base}/endless: the body is larger than the limit of 1048576 bytes`,
    );
    await expect(download("/huge-announced")).rejects.toThrow(/the server announces 10737418240 bytes, more than the limit of 4294967296 bytes/);
  });

  it("gives up on a server that stalls, never answers or trickles past the deadline", { timeout: 20_000 }, async () => {
    const started = Date.now();
    await expect(download("/stall", { limits: { idleTimeoutMs: 500 } })).rejects.toThrow(`ADD ${base}/stall: no data for 0.5 s`);
    await expect(download("/no-headers", { limits: { idleTimeoutMs: 500 } })).rejects.toThrow(`ADD ${base}/no-headers: no response for 0.5 s`);
    await expect(download("/trickle", { limits: { idleTimeoutMs: 500, timeoutMs: 1500 } })).rejects.toThrow(
      `ADD ${base}/trickle: the download took longer than 1.5 s`,
    );
    expect(Date.now() - started).toBeLessThan(6000);
  });

  it("names a connection cut mid-body, a redirect loop, a redirect to another scheme and a refused connection", async () => {
    await expect(download("/cut")).rejects.toThrow(`ADD ${base}/cut: download failed: aborted`);
    await expect(download("/redirect-loop")).rejects.toThrow(`ADD ${base}/redirect-loop: more than 5 redirects`);
    await expect(download("/to-ftp")).rejects.toThrow("redirected to a ftp: URL, which cannot be downloaded");
    await expect(downloadSource("http://127.0.0.1:1/x", await temp("sealant-dl-"), where)).rejects.toThrow(
      "Kubefile:2: ADD http://127.0.0.1:1/x: download failed: connect ECONNREFUSED 127.0.0.1:1",
    );
  });

  it("stops when the build is interrupted", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("interrupted")), 300);
    await expect(download("/trickle", { signal: ac.signal })).rejects.toThrow("interrupted");
  });
});

describe("ADD --checksum in a build", () => {
  it("builds with the right digest, and fails with the line and keeps nothing with a wrong one", async () => {
    const ctx = await temp("sealant-ctx-");
    const session = await Session.open({ home: await temp("sealant-home-") });
    await writeFile(join(ctx, "Kubefile"), `FROM scratch\nADD --checksum=sha256:${SHA} ${base}/file.bin data/\n`);
    const built = await build(session, { context: ctx, tag: "sum:1" });
    expect(built.platforms[0]!.layers).toHaveLength(1);
    await writeFile(join(ctx, "Kubefile"), `FROM scratch\nADD --checksum=sha256:${"a".repeat(64)} ${base}/file.bin data/\n`);
    await expect(build(session, { context: ctx, tag: "sum:2" })).rejects.toThrow(
      `Kubefile:2: ADD ${base}/file.bin: checksum mismatch: expected sha256:${"a".repeat(64)}, got sha256:${SHA}`,
    );
    // THEN the failed build left no image and no scratch files
    await expect(session.store.resolve("sum:2")).rejects.toThrow();
    expect(await readdir(join(session.store.root, "..", "tmp"))).toEqual([]);
    // AND the size cap of the build options applies to APP downloads too
    await writeFile(join(ctx, "Kubefile"), `FROM scratch\nAPP web ${base}/endless\n`);
    await expect(build(session, { context: ctx, tag: "sum:3", downloads: { maxBytes: 1 << 20 } })).rejects.toThrow(
      `Kubefile:2: APP ${base}/endless: the body is larger than the limit of 1048576 bytes`,
    );
    session.close();
  });
});
