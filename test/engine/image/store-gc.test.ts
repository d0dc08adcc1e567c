import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { build } from "../../../src/engine/build";
import type { RegistryClient } from "../../../src/engine/image/registry";
import type { ImageStore } from "../../../src/engine/image/store";
import { pullImage, pushImage, type TransferEvent } from "../../../src/engine/image/transfer";
import { Session } from "../../../src/engine/session";
import { sharedRegistries } from "../../support/registry";

// The other side of each race is a real process running the compiled sealant (dist/, as the
// CLI tests use it): `sealant prune`, or a loop of store.gc() calls.
const DIST = resolve(__dirname, "../../../dist");
const CLI = join(DIST, "cli/main.js");

const temps: string[] = [];
async function temp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

function runNode(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((done) => child.once("exit", (code) => done({ code, stdout, stderr })));
}

/** The blobs an image names that are not in the store (none for a complete image). */
async function missingBlobs(store: ImageStore, ref: string): Promise<string[]> {
  const image = await store.resolve(ref);
  const blobs = await store.reachable(image.descriptor);
  return blobs.filter((d) => !existsSync(store.blobPath(d.digest))).map((d) => d.digest);
}

/** Makes every stored blob look written an hour ago, as those of an image untagged yesterday. */
async function ageBlobs(store: ImageStore): Promise<void> {
  const then = new Date(Date.now() - 3600_000);
  const dir = join(store.root, "blobs", "sha256");
  for (const name of await readdir(dir)) await utimes(join(dir, name), then, then).catch(() => undefined);
}

/** Two images sharing their first layer, pushed to the shared test registry. */
async function pushPair(): Promise<{ a: string; b: string; shared: string }> {
  const reg = sharedRegistries().upstream;
  const src = await Session.open({ home: await temp("sealant-gc-src-") });
  const shared = randomBytes(64 << 10);
  const refs: string[] = [];
  for (const name of ["a", "b"]) {
    const ctx = await temp("sealant-gc-ctx-");
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nCOPY shared.bin shared.bin\nCOPY own.bin own.bin\n");
    await writeFile(join(ctx, "shared.bin"), shared);
    await writeFile(join(ctx, "own.bin"), randomBytes(2 << 20));
    await build(src, { context: ctx, tag: `gc/${name}:1` });
    const ref = `${reg.host}/gc-${randomBytes(4).toString("hex")}/${name}:1`;
    await pushImage(src.store, `gc/${name}:1`, { clientFor: src.clientFor, destination: ref });
    refs.push(ref);
  }
  const { manifest } = await src.store.manifestFor((await src.store.resolve("gc/a:1")).descriptor);
  return { a: refs[0]!, b: refs[1]!, shared: manifest.layers[0]!.digest };
}

describe("gc beside pull and build", () => {
  it("spares a stored blob a pull decided to reuse when `sealant prune` runs before the pull names its image", async () => {
    // GIVEN a store holding a layer no name uses any more (its image was untagged long ago)
    const { a, b, shared } = await pushPair();
    const home = await temp("sealant-gc-home-");
    const session = await Session.open({ home });
    await pullImage(session.store, a, { clientFor: session.clientFor });
    await session.store.removeTag(a);
    await ageBlobs(session.store);
    // WHEN a pull of an image with that layer finds it stored, and `sealant prune` runs to the
    // end in another process before the pull fetches its other blobs and names the image
    let reused!: () => void;
    const reuseSeen = new Promise<void>((r) => (reused = r));
    let prune: Promise<{ code: number | null; stdout: string; stderr: string }> | undefined;
    const clientFor = (registry: string): RegistryClient => {
      const client = session.clientFor(registry);
      const openBlob = client.openBlob.bind(client);
      client.openBlob = async (...args: Parameters<RegistryClient["openBlob"]>) => {
        await reuseSeen;
        prune ??= runNode([CLI, "prune"], { SEALANT_HOME: home });
        await prune;
        return openBlob(...args);
      };
      return client;
    };
    const onEvent = (e: TransferEvent): void => {
      if (e.type === "blob" && e.digest === shared && e.state === "skipped") reused();
    };
    await pullImage(session.store, b, { clientFor, onEvent });
    // THEN prune really deleted the untagged image's own blobs, and the pulled image is complete
    const pruned = await prune!;
    expect(pruned).toMatchObject({ code: 0, stderr: "" });
    expect(pruned.stdout).toMatch(/deleted [1-9]\d* blob/);
    expect(await missingBlobs(session.store, b)).toEqual([]);
  });

  it("spares a cached layer a build reused when `sealant prune` runs during the build (from its RUN step)", async () => {
    // GIVEN a build cache holding a layer of an image that was untagged long ago
    const home = await temp("sealant-gc-build-");
    const session = await Session.open({ home });
    const ctx = await temp("sealant-gc-ctx-");
    await writeFile(join(ctx, "big.bin"), randomBytes(1 << 20));
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nCOPY big.bin big.bin\n");
    const first = await build(session, { context: ctx, tag: "gc/x:1" });
    await session.store.removeTag("gc/x:1");
    await ageBlobs(session.store);
    // WHEN a build reuses that layer from the cache and, before it names its image, prune runs
    const log = join(await temp("sealant-gc-log-"), "prune.log");
    await writeFile(join(ctx, "Kubefile"), `FROM scratch\nCOPY big.bin big.bin\nRUN SEALANT_HOME=${home} ${process.execPath} ${CLI} prune > ${log} 2>&1\n`);
    const second = await build(session, { context: ctx, tag: "gc/y:1" });
    // THEN the layer came from the cache, prune deleted the untagged image's blobs, and the image is complete
    expect(second.platforms[0]!.layers[0]).toMatchObject({ digest: first.platforms[0]!.layers[0]!.digest, cached: true });
    expect(await readFile(log, "utf8")).toMatch(/deleted [1-9]\d* blob/);
    expect(await missingBlobs(session.store, "gc/y:1")).toEqual([]);
  });

  it("keeps every pulled image complete while another process runs gc in a loop", async () => {
    // GIVEN two images sharing a layer, and a process collecting garbage in the store without pause
    const { a, b } = await pushPair();
    const home = await temp("sealant-gc-loop-");
    const session = await Session.open({ home });
    const stop = join(home, "stop");
    const progress = join(home, "gc-runs");
    const runsSoFar = async () => Number(await readFile(progress, "utf8").catch(() => "0"));
    const loop = runNode(
      [
        "-e",
        `const { ImageStore } = require(${JSON.stringify(join(DIST, "engine/image/store.js"))});
         const fs = require("node:fs");
         (async () => {
           const store = await ImageStore.open(${JSON.stringify(home)});
           let runs = 0, removed = 0;
           while (!fs.existsSync(${JSON.stringify(stop)})) { removed += (await store.gc()).removed; runs++; fs.writeFileSync(${JSON.stringify(progress)}, String(runs)); }
           console.log(JSON.stringify({ runs, removed }));
         })().catch((e) => { console.error(e.stack); process.exit(1); });`,
      ],
      {},
    );
    try {
      // (the collector has started: on a loaded machine its process can take longer to load than the pulls)
      for (let waited = 0; (await runsSoFar()) === 0 && waited < 600; waited++) await new Promise((r) => setTimeout(r, 100));
      // WHEN the two are pulled and untagged in turn, the shared layer each time reused or fetched again,
      // for 8 rounds at least and until the collector has run 20 times among them
      for (let round = 0; round < 8 || ((await runsSoFar()) <= 20 && round < 400); round++) {
        const ref = round % 2 === 0 ? a : b;
        await pullImage(session.store, ref, { clientFor: session.clientFor });
        // THEN each pulled image is complete, however the collector's runs fell
        expect(await missingBlobs(session.store, ref)).toEqual([]);
        await session.store.removeTag(ref);
        // the shared layer of the last round looks old to the collector again
        await ageBlobs(session.store);
      }
    } finally {
      await writeFile(stop, "");
    }
    const result = await loop;
    expect(result.code).toBe(0);
    const { runs, removed } = JSON.parse(result.stdout) as { runs: number; removed: number };
    // the collector really ran throughout and deleted what was untagged
    expect(runs).toBeGreaterThan(20);
    expect(removed).toBeGreaterThan(0);
  });
});

describe("leases and gc left behind by dead processes", () => {
  it("sweeps the lease of a killed process at the next operation, not only at the next gc", async () => {
    // GIVEN a process that took a lease on the store and was killed before releasing it
    const home = await temp("sealant-gc-lease-");
    const child = spawn(
      process.execPath,
      [
        "-e",
        `require(${JSON.stringify(join(DIST, "engine/image/store.js"))}).ImageStore.open(${JSON.stringify(home)})
           .then((s) => s.lease()).then(() => { console.log("leased"); setInterval(() => {}, 1000); });`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((ok) => child.stdout.on("data", (d: Buffer) => d.toString().includes("leased") && ok()));
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const leases = join(home, "images", "leases");
    expect((await readdir(leases)).filter((n) => n.endsWith(".json"))).toHaveLength(1);
    // WHEN another operation takes and releases its own lease (a pull, a load, a build)
    const session = await Session.open({ home });
    const release = await session.store.lease();
    await release();
    // THEN no lease file is left
    expect(await readdir(leases)).toEqual([]);
  });

  it("puts back the blobs a gc killed between its two steps had moved aside", async () => {
    // GIVEN a named image one of whose blobs a dying gc left in its parking place
    const home = await temp("sealant-gc-trash-");
    const session = await Session.open({ home });
    const ctx = await temp("sealant-gc-ctx-");
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nCOPY f f\n");
    await writeFile(join(ctx, "f"), randomBytes(1000));
    const built = await build(session, { context: ctx, tag: "gc/parked:1" });
    const layer = built.platforms[0]!.layers[0]!.digest;
    await mkdir(join(session.store.root, "gc-trash"));
    await rename(session.store.blobPath(layer), join(session.store.root, "gc-trash", layer.slice("sha256:".length)));
    // WHEN the store is opened again (any command)
    const reopened = await Session.open({ home });
    // THEN the image is complete
    expect(await missingBlobs(reopened.store, "gc/parked:1")).toEqual([]);
  });

  it("removes the temp files writers that died left beside index.json, pins and leases", async () => {
    // GIVEN temp files of writes that never finished (an hour old), and one being written now
    const home = await temp("sealant-gc-temps-");
    const session = await Session.open({ home });
    const root = session.store.root;
    const dead = [join(root, ".tmp-index.json-1-aaaa"), join(root, "pins", ".tmp-x.json-1-bbbb"), join(root, "leases", ".tmp-1-cc.json-1-cccc")];
    await mkdir(join(root, "leases"), { recursive: true });
    const then = new Date(Date.now() - 3600_000);
    for (const f of dead) {
      await writeFile(f, "{");
      await utimes(f, then, then);
    }
    const fresh = join(root, "pins", ".tmp-y.json-1-dddd");
    await writeFile(fresh, "{");
    // WHEN gc runs
    await session.store.gc();
    // THEN the old ones are gone, the fresh one is left to its writer
    expect(dead.filter((f) => existsSync(f))).toEqual([]);
    expect(existsSync(fresh)).toBe(true);
  });
});
