import { execFile, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sharedRegistries, type TestRegistry } from "../support/registry";
import { startServingDirectory } from "../support/serve-registry";
import { skopeo, skopeoInspect, srcTlsOff } from "../support/tools";
import { EXAMPLE_APP, startExampleUpstream, type ExampleUpstream } from "../support/upstream";

const exec = promisify(execFile);
const CLI = resolve(__dirname, "../../dist/cli/main.js");
let upstream: ExampleUpstream;
let home: string;
const temps: string[] = [];

async function temp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

/** Runs the real CLI (the compiled one a user runs) with its own SEALANT_HOME. */
async function sealant(args: string[], opts: { home?: string; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: {
        ...process.env,
        SEALANT_HOME: opts.home ?? home,
        SEALANT_REGISTRY_MIRRORS: Object.entries(upstream.mirrors)
          .map(([k, v]) => `${k}=${v}`)
          .join(","),
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.stdin.end(opts.input ?? "");
    child.on("close", (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}

async function ok(args: string[], opts: { home?: string; input?: string } = {}): Promise<string> {
  const r = await sealant(args, opts);
  if (r.code !== 0) throw new Error(`sealant ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  upstream = await startExampleUpstream();
  home = await temp("sealant-cli-home-");
  await ok(["build", "-q", "-t", "example/app:1.0", EXAMPLE_APP]);
});

afterAll(async () => {
  await upstream?.stop();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

describe("sealant images / inspect / tag / rmi", () => {
  it("lists and inspects the built image, with the digest at the top of the JSON", async () => {
    const list = JSON.parse(await ok(["images", "--json"]));
    expect(list.map((i: { ref: string }) => i.ref)).toContain("docker.io/example/app:1.0");
    const info = JSON.parse(await ok(["inspect", "example/app:1.0", "--json"]));
    expect(info.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(info.containerImages).toContain("quay.io/prometheus/node-exporter:v1.7.0");
    expect(info.platforms[0].layers.length).toBe(6);
    const text = await ok(["inspect", "example/app:1.0"]);
    expect(text).toMatch(/Apps:\n\s+web \(kube\)/);
  });

  it("tags and removes names; the blobs go when the last name does", async () => {
    const h = await temp("sealant-cli-rmi-");
    await ok(["build", "-q", "-t", "x/one:1", EXAMPLE_APP], { home: h });
    await ok(["tag", "x/one:1", "x/two:1"], { home: h });
    expect(await ok(["rmi", "x/one:1"], { home: h })).not.toMatch(/deleted/);
    expect(JSON.parse(await ok(["images", "--json"], { home: h }))).toHaveLength(1);
    // The build cache still pins the layers, so only unpinned blobs (manifest, config) go.
    expect(await ok(["rmi", "x/two:1"], { home: h })).toMatch(/deleted \d+ blob/);
    const r = await sealant(["inspect", "x/two:1"], { home: h });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('sealant: image "x/two:1" not found in the local store (see: sealant images)');
    // prune drops the build cache: only oci-layout-level files are left, no blob
    expect(await ok(["prune"], { home: h })).toMatch(/dropped \d+ build cache record\(s\); deleted [1-9]\d* blob/);
    expect(await readdir(join(h, "images/blobs/sha256"))).toEqual([]);
  });
});

describe("sealant push / pull against a real registry, skopeo as the judge", () => {
  it("pushes an image skopeo can inspect and copy, and pulls it back into a fresh store", async () => {
    const reg = sharedRegistries().upstream.host;
    const dest = `${reg}/cli/app:1.0`;
    const pushed = JSON.parse(await ok(["push", "example/app:1.0", dest, "--json"]));
    const local = JSON.parse(await ok(["inspect", "example/app:1.0", "--json"]));
    expect(pushed.digest).toBe(local.digest);
    const inspected = (await skopeoInspect(`docker://${dest}`)) as { Digest: string };
    expect(inspected.Digest).toBe(local.digest);
    const out = await temp("sealant-skopeo-");
    await skopeo(["copy", srcTlsOff, `docker://${dest}`, `oci:${out}:app`]);
    // pull into an empty store
    const h = await temp("sealant-cli-pull-");
    const pulled = JSON.parse(await ok(["pull", dest, "--json"], { home: h }));
    expect(pulled.digest).toBe(local.digest);
    // pushing again sends nothing
    const again = JSON.parse(await ok(["push", "example/app:1.0", dest, "--json"]));
    expect(again.blobs.transferred).toBe(0);
  });

  it("logs in to an htpasswd registry, refuses wrong credentials without echoing them, logs out", async () => {
    const basic = sharedRegistries().basic;
    const user = basic.users[0]!;
    const bad = await sealant(["login", basic.host, "-u", user.username, "-p", "wrong-secret-xyz"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/401|unauthorized/i);
    expect(bad.stderr).not.toContain("wrong-secret-xyz");
    await ok(["login", basic.host, "-u", user.username, "--password-stdin"], { input: `${user.password}\n` });
    const auth = await readFile(join(home, "auth.json"), "utf8");
    expect(auth).not.toContain(user.password);
    await ok(["push", "-q", "example/app:1.0", `${basic.host}/private/app:1.0`]);
    expect(await ok(["logout", basic.host])).toMatch(/removed/);
    const denied = await sealant(["pull", `${basic.host}/private/app:1.0`], { home: await temp("sealant-cli-denied-") });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/unauthorized|401/i);
  });

  it("fails clearly when the registry is unreachable", async () => {
    const r = await sealant(["pull", "127.0.0.1:9/nothing/here:1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sealant: .*127\.0\.0\.1:9.*(ECONNREFUSED|refused)/);
  });
});

describe("sealant save / load", () => {
  it("writes an archive skopeo reads, and loads it back with the same digest", async () => {
    const dir = await temp("sealant-cli-archive-");
    const tar = join(dir, "app.tar");
    await ok(["save", "-o", tar, "example/app:1.0"]);
    const local = JSON.parse(await ok(["inspect", "example/app:1.0", "--json"]));
    const viaSkopeo = (await skopeoInspect(`oci-archive:${tar}:docker.io/example/app:1.0`)) as { Digest: string };
    expect(viaSkopeo.Digest).toBe(local.digest);
    const h = await temp("sealant-cli-load-");
    const loaded = JSON.parse(await ok(["load", "-i", tar, "--json"], { home: h }));
    expect(loaded[0].digest).toBe(local.digest);
    expect(loaded[0].ref).toBe("docker.io/example/app:1.0");
  });
});

describe("sealant merge", () => {
  it("combines a base image and an app image into one with both apps and all images", async () => {
    const ctx = await temp("sealant-cli-merge-");
    await writeFile(join(ctx, "Kubefile"), 'FROM scratch\nAPP db local://db.yaml\nLAUNCH ["db"]\n');
    await writeFile(
      join(ctx, "db.yaml"),
      "apiVersion: v1\nkind: Pod\nmetadata: { name: db }\nspec:\n  containers:\n    - name: db\n      image: docker.io/library/redis:7.2\n",
    );
    await ok(["build", "-q", "-t", "example/db:1", ctx]);
    await ok(["merge", "-t", "example/all:1", "example/app:1.0", "example/db:1"]);
    const info = JSON.parse(await ok(["inspect", "example/all:1", "--json"]));
    const meta = info.platforms[0].metadata;
    expect(meta.applications.map((a: { name: string }) => a.name)).toEqual(["web", "db"]);
    expect(meta.launch.apps).toEqual(["web", "db"]);
    expect(info.containerImages).toHaveLength(4);
  });
});

describe("the example's registry/ tree", () => {
  let served: TestRegistry | undefined;
  afterAll(async () => served?.stop());

  it("is served unchanged by a stock docker-registry, images pullable by skopeo under their source names", async () => {
    // GIVEN the image's rootfs unpacked by an independent tool (umoci)
    const dir = await temp("sealant-cli-rootfs-");
    await skopeo(["copy", `oci:${join(home, "images")}:docker.io/example/app:1.0`, `oci:${dir}/layout:app`]);
    await exec("umoci", ["raw", "unpack", "--image", `${dir}/layout:app`, `${dir}/rootfs`]);
    expect((await readdir(join(dir, "rootfs"))).sort()).toEqual(["application", "charts", "etc", "imageList", "manifests", "registry"]);
    // WHEN docker-registry serves rootfs/registry
    const registry = await startServingDirectory(join(dir, "rootfs/registry"));
    served = registry;
    // THEN every image is there under <source registry>/<path>, and matches upstream
    for (const [name, source] of [
      ["docker.io/library/nginx:1.25", `${upstream.mirrors["docker.io"]}/library/nginx:1.25`],
      ["quay.io/prometheus/node-exporter:v1.7.0", `${upstream.mirrors["quay.io"]}/prometheus/node-exporter:v1.7.0`],
    ]) {
      const mine = (await skopeoInspect(`docker://${registry.host}/${name}`)) as { Digest: string };
      const theirs = (await skopeoInspect(`docker://${source}`)) as { Digest: string };
      expect(mine.Digest).toBe(theirs.Digest);
      await skopeo(["copy", srcTlsOff, `docker://${registry.host}/${name}`, `oci:${dir}/pulled:${name.split(":")[1]}`]);
    }
  });
});

describe("bad input from the command line", () => {
  it("rejects an unknown instruction with file and line, exit 1, one message", async () => {
    const ctx = await temp("sealant-cli-bad-");
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nCOPPY a b\n");
    const r = await sealant(["build", "-t", "bad:1", ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Kubefile:2: unknown instruction "COPPY"/);
  });

  it("rejects a missing -t with usage, exit 2", async () => {
    const r = await sealant(["build", EXAMPLE_APP]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/build needs -t REF/);
  });
});

describe("a crash in the middle of a build", () => {
  it("leaves no image that looks complete, a readable index, and blobs gc can remove", async () => {
    // GIVEN a build whose RUN kills the sealant process itself (SIGKILL: no cleanup at all)
    const h = await temp("sealant-cli-crash-");
    const ctx = await temp("sealant-cli-crashctx-");
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nCOPY big.bin data/big.bin\nRUN kill -9 $PPID\n");
    await writeFile(join(ctx, "big.bin"), Buffer.alloc(4 << 20, 7));
    const r = await sealant(["build", "-t", "crash:1", ctx], { home: h });
    expect(r.code).not.toBe(0);
    // THEN the store shows no image, and its index is intact JSON
    expect(JSON.parse(await ok(["images", "--json"], { home: h }))).toEqual([]);
    JSON.parse(await readFile(join(h, "images/index.json"), "utf8"));
  });
});
