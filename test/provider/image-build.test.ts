import { chmod, mkdir, mkdtemp, rm, stat, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "../../src/engine/image/registry";
import { staticCredentials } from "../../src/engine/image/credentials";
import { parseReference } from "../../src/engine/image/reference";
import { Session } from "../../src/engine/session";
import * as impl from "../../src/provider/impl/image-build";
import { UNKNOWN } from "../../src/provider/impl/unknown";
import { sharedRegistries } from "../support/registry";

/**
 * The ImageBuild provider's methods called directly (as the Pulumi engine calls them), with the
 * real engine, a temp SEALANT_HOME and the real registries of the test run. The provider
 * object itself is checked for what Pulumi serialises into state.
 */

const REPO = resolve(__dirname, "../..");
const ETCD = join(REPO, "examples/etcd");
const temps: string[] = [];
const saved = process.env.SEALANT_HOME;
let home: string;
const lines: string[] = [];
const hooks = { log: (l: string) => void lines.push(l) };

async function temp(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

async function tinyContext(files: Record<string, string> = {}): Promise<string> {
  const dir = await temp("sealant-ctx-");
  const all = {
    Kubefile:
      'FROM scratch\nARG GREETING=hello\nLABEL io.sealant.runtime="hooks" io.sealant.runtime.version="t-1" greeting="${GREETING}"\nCOPY a.txt a.txt\nCOPY b.txt b.txt\n',
    "a.txt": "a\n",
    "b.txt": "b\n",
    ...files,
  };
  for (const [name, content] of Object.entries(all)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

/** What the engine gives create/update: check's inputs. */
async function checked(news: Record<string, unknown>): Promise<Record<string, unknown>> {
  const r = await impl.check({}, news);
  expect(r.failures).toEqual([]);
  return r.inputs;
}

const uniq = () => Math.random().toString(36).slice(2, 8);

beforeAll(async () => {
  home = await temp("sealant-home-");
  process.env.SEALANT_HOME = home;
});

afterAll(async () => {
  if (saved === undefined) delete process.env.SEALANT_HOME;
  else process.env.SEALANT_HOME = saved;
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

describe("ImageBuild check", () => {
  it("names every bad input by property, and never shows the password", async () => {
    const ctx = await tinyContext();
    const r = await impl.check(
      {},
      {
        context: ctx,
        tag: "Bad Tag",
        buildArgs: { GREETING: 3, "1x": "y" },
        platforms: ["linux/amd64", "linux/amd64", "a/b/c/d"],
        push: "repo@sha256:" + "0".repeat(64),
        registryAuth: { username: "u", password: "", pasword: "hunter2-typo" },
        noCache: "yes",
      },
    );
    const props = r.failures.map((f) => f.property).sort();
    expect(props).toEqual([
      "buildArgs.1x",
      "buildArgs.GREETING",
      "noCache",
      "platforms[1]",
      "platforms[2]",
      "push",
      "registryAuth.password",
      "registryAuth.pasword",
      "tag",
    ]);
    expect(r.failures.find((f) => f.property === "buildArgs.GREETING")!.reason).toMatch(/expected a string, got number 3/);
    expect(r.failures.find((f) => f.property === "platforms[1]")!.reason).toMatch(/listed twice/);
    expect(r.failures.find((f) => f.property === "push")!.reason).toMatch(/has a digest/);
    expect(JSON.stringify(r.failures)).not.toContain("hunter2");
  });

  it("reports a missing context, a missing Kubefile and Kubefile syntax errors with the line", async () => {
    const missing = await impl.check({}, { context: "/nonexistent/ctx", tag: "t:1" });
    expect(missing.failures).toEqual([{ property: "context", reason: "the build context /nonexistent/ctx does not exist" }]);
    const ctx = await tinyContext();
    const noKf = await impl.check({}, { context: ctx, tag: "t:1", kubefile: "nope/Kubefile" });
    expect(noKf.failures).toEqual([{ property: "kubefile", reason: `cannot read the Kubefile ${join(ctx, "nope/Kubefile")}: no such file` }]);
    const bad = await impl.check({}, { context: ctx, tag: "t:1", kubefile: { text: "FROM scratch\nCOPYY a.txt a.txt\n" } });
    expect(bad.failures).toHaveLength(1);
    expect(bad.failures[0]!.property).toBe("kubefile");
    expect(bad.failures[0]!.reason).toMatch(/Kubefile \(inline\):2: /);
  });

  it("accepts unknown values during preview without reading anything: the hash is unknown too", async () => {
    // GIVEN a context not known yet (and a Kubefile path that does not exist anywhere)
    const r = await impl.check(
      {},
      { context: UNKNOWN, kubefile: "does/not/exist", tag: UNKNOWN, buildArgs: { A: UNKNOWN }, platforms: [UNKNOWN], push: UNKNOWN, registryAuth: UNKNOWN },
    );
    // THEN no failure, and the hash is "known after apply"
    expect(r.failures).toEqual([]);
    expect(r.inputs["contextHash"]).toBe(UNKNOWN);
    // AND a known context with an unknown build arg: no hash either (it depends on the arg)
    const ctx = await tinyContext();
    const partly = await impl.check({}, { context: ctx, tag: "t:1", buildArgs: { GREETING: UNKNOWN } });
    expect(partly.failures).toEqual([]);
    expect(partly.inputs["contextHash"]).toBe(UNKNOWN);
  });

  it("hashes the whole context: editing, adding or chmod-ing any file, or a build arg, changes it; diff calls it an update", async () => {
    const ctx = await tinyContext({ "sub/unused.txt": "not copied by the Kubefile\n" });
    const base = { context: ctx, tag: "example/tiny:1" };
    const h0 = (await checked(base))["contextHash"] as string;
    expect(h0).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await checked(base))["contextHash"]).toBe(h0);
    const olds = { ...base, contextHash: h0 };
    expect(await impl.diff("id", olds, await checked(base))).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });

    // A file the Kubefile does not even copy still counts (the context is the input).
    await writeFile(join(ctx, "sub/unused.txt"), "edited\n");
    const h1 = (await checked(base))["contextHash"];
    expect(h1).not.toBe(h0);
    expect(await impl.diff("id", olds, await checked(base))).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });

    await chmod(join(ctx, "a.txt"), 0o755);
    const h2 = (await checked(base))["contextHash"];
    expect(h2).not.toBe(h1);
    await writeFile(join(ctx, "new.txt"), "");
    const h3 = (await checked(base))["contextHash"];
    expect(h3).not.toBe(h2);
    const h4 = (await checked({ ...base, buildArgs: { GREETING: "hi" } }))["contextHash"];
    expect(h4).not.toBe(h3);
    const h5 = (await checked({ ...base, kubefile: { text: "FROM scratch\nCOPY a.txt a.txt\n" } }))["contextHash"];
    expect(h5).not.toBe(h3);
  });

  it("diff: a new tag, args, platforms or push target is an update, never a replacement; spelling and credentials are not changes", async () => {
    const olds = {
      context: "/x",
      tag: "example/tiny:1",
      contextHash: "sha256:1",
      buildArgs: { A: "1", B: "2" },
      platforms: ["amd64"],
      registryAuth: { username: "u", password: "p" },
    };
    const same = {
      ...olds,
      tag: "docker.io/example/tiny:1",
      buildArgs: { B: "2", A: "1" },
      platforms: ["linux/amd64"],
      registryAuth: { username: "u", password: "rotated" },
    };
    expect((await impl.diff("id", olds, same)).changes).toBe(false);
    for (const change of [
      { tag: "example/tiny:2" },
      { buildArgs: { A: "1" } },
      { platforms: ["linux/arm64"] },
      { push: true },
      { contextHash: UNKNOWN },
      { tag: UNKNOWN },
    ]) {
      expect(await impl.diff("id", olds, { ...olds, ...change }), JSON.stringify(change)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    }
    // push: true means "to the tag": the same as naming the tag.
    expect((await impl.diff("id", { ...olds, push: true }, { ...olds, push: "docker.io/example/tiny:1" })).changes).toBe(false);
  });
});

describe("ImageBuild create/update/read/delete", () => {
  it("builds into the store with plain-JSON outputs; an edited file rebuilds from that step on; read notices the tag gone", async () => {
    // GIVEN a tiny context
    const ctx = await tinyContext();
    const tag = `example/tiny-${uniq()}:1`;
    const inputs = await checked({ context: ctx, tag, buildArgs: { GREETING: "hi" } });
    // WHEN created
    lines.length = 0;
    const { id, outs } = await impl.create(inputs, hooks);
    // THEN the outputs describe the built image
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(outs.ref).toBe(`docker.io/${tag}`);
    expect(outs.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(outs.repoDigest).toBe(`${outs.ref}@${outs.digest}`);
    expect(outs.pushedRepoDigest).toBeUndefined();
    expect(outs.labels).toMatchObject({ greeting: "hi", "io.sealant.runtime": "hooks" });
    expect(outs).toMatchObject({
      kind: "kube-installer",
      runtime: "hooks",
      runtimeVersion: "t-1",
      containerImages: [],
      contextHash: inputs["contextHash"],
      buildArgs: { GREETING: "hi" },
      platforms: [],
    });
    expect(outs.layers.length).toBeGreaterThanOrEqual(2);
    for (const l of outs.layers)
      expect(l).toMatchObject({ digest: expect.stringMatching(/^sha256:/), size: expect.any(Number), platform: expect.stringMatching(/^linux\//) });
    expect(JSON.parse(JSON.stringify(outs))).toEqual(outs);
    expect(lines.some((l) => l.startsWith(`ImageBuild ${tag}: [`))).toBe(true);
    const session = await Session.open();
    expect((await session.store.resolve(tag)).descriptor.digest).toBe(outs.digest);

    // WHEN b.txt changes: check gives a new hash, diff an update, update rebuilds
    await writeFile(join(ctx, "b.txt"), "b2\n");
    const news = await checked({ context: ctx, tag, buildArgs: { GREETING: "hi" } });
    expect((await impl.diff(id, outs as never, news)).changes).toBe(true);
    lines.length = 0;
    const updated = (await impl.update(id, outs as never, news, hooks)).outs;
    // THEN a new digest, with the COPY a.txt layer from the cache and b.txt's rebuilt
    expect(updated.digest).not.toBe(outs.digest);
    expect(updated.contextHash).toBe(news["contextHash"]);
    expect(lines.find((l) => l.includes("COPY a.txt"))).toMatch(/\(cached\)$/);
    expect(lines.find((l) => l.includes("COPY b.txt"))).not.toMatch(/\(cached\)$/);
    expect(updated.layers[0]).toEqual(outs.layers[0]);
    expect(updated.layers[1]!.digest).not.toBe(outs.layers[1]!.digest);

    // read: still there; then the tag removed out of band: gone
    expect(await impl.read(id, updated as never)).toEqual({ id, props: updated });
    await session.store.removeTag(tag);
    expect(await impl.read(id, updated as never)).toEqual({ id: "", props: {} });
    // delete removes nothing (images are a cache) and does not fail
    await expect(impl.delete(id, updated as never)).resolves.toBeUndefined();
    session.close();
  });

  it("builds examples/etcd and pushes it to a registry with basic auth, keeping the password out of the store's auth file", async () => {
    const basic = sharedRegistries().basic;
    const user = basic.users[0]!;
    const tag = `example/etcd-provider:${uniq()}`;
    const push = `${basic.host}/sealant-test/etcd-provider:${uniq()}`;
    const inputs = await checked({ context: ETCD, tag, push, registryAuth: { username: user.username, password: user.password } });
    const { id, outs } = await impl.create(inputs, hooks);
    expect(outs).toMatchObject({ runtime: "hooks", runtimeVersion: "etcd-3.4", kind: "kube-installer", push });
    expect(outs.pushedRepoDigest).toBe(`${push}@${outs.digest}`);
    expect(outs.layers.map((l) => l.createdBy).join("\n")).toMatch(/cp \/usr\/bin\/etcd/);
    // The registry has it under the push tag (checked with the credentials, as a user would).
    const client = new RegistryClient(basic.host, { credentials: staticCredentials({ username: user.username, password: user.password }) });
    const ref = parseReference(push);
    expect((await client.headManifest(ref.repository, ref.tag!))?.digest).toBe(outs.digest);
    // The password only lived in memory: nothing was written to $SEALANT_HOME/auth.json.
    await expect(stat(join(home, "auth.json"))).rejects.toThrow(/ENOENT/);

    // read: gone locally but still in the registry: it exists.
    const session = await Session.open();
    await session.store.removeTag(tag);
    session.close();
    expect((await impl.read(id, outs as never)).id).toBe(id);
    // The registry's tag pushed over by something else: gone.
    const other = await checked({
      context: await tinyContext(),
      tag: `example/other:${uniq()}`,
      push,
      registryAuth: { username: user.username, password: user.password },
    });
    await impl.create(other, hooks);
    expect((await impl.read(id, outs as never)).id).toBe("");
    client.close();
  });

  it("a push without the registry's credentials fails naming the registry", async () => {
    const basic = sharedRegistries().basic;
    const inputs = await checked({ context: await tinyContext(), tag: `example/noauth:${uniq()}`, push: `${basic.host}/sealant-test/noauth:1` });
    await expect(impl.create(inputs, hooks)).rejects.toThrow(new RegExp(`${basic.host.replace(/\./g, "\\.")}.*401`));
  });
});

describe("the ImageBuild provider object (what Pulumi serialises into state)", () => {
  // The compiled module, as a Pulumi program loads it (npm run build first).
  const nodeRequire = createRequire(__filename);
  const dist = join(REPO, "dist/provider/image-build.js");

  it("each method only requires the package's implementation", async () => {
    const { imageBuildProvider } = nodeRequire(dist) as typeof import("../../src/provider/image-build");
    for (const [name, fn] of Object.entries(imageBuildProvider)) {
      const text = String(fn);
      expect(text, name).toMatch(
        new RegExp(`^async ${name}\\([\\w, ]*\\) \\{\\s*return require\\("sealant/provider/impl/image-build"\\)\\.${name}\\([\\w, ]*\\);\\s*\\}$`),
      );
    }
  });

  it("serialises with Pulumi's closure serialiser capturing nothing, and the text works where sealant is installed", async () => {
    const pulumi = nodeRequire("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
    const { imageBuildProvider } = nodeRequire(dist) as typeof import("../../src/provider/image-build");
    const sf = await pulumi.runtime.serializeFunction(() => imageBuildProvider, { allowSecrets: true });
    expect(sf.containsSecrets).toBe(false);
    // Only the six methods and the object: no captured module, class or schema.
    expect([...sf.text.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1])).toEqual(Array(6).fill("sealant/provider/impl/image-build"));
    expect(sf.text).not.toMatch(/__pulumi|zod|Session|engine/);
    // The dynamic-provider host loads it with require-from-string, resolving from the program's
    // directory: a program with sealant in node_modules.
    const program = await temp("sealant-program-");
    await mkdir(join(program, "node_modules"));
    await symlink(REPO, join(program, "node_modules/sealant"));
    const requireFromString = nodeRequire("require-from-string") as (code: string, filename: string) => { handler: () => typeof imageBuildProvider };
    const provider = requireFromString(sf.text, join(program, "index.js")).handler();
    const ctx = await tinyContext();
    const r = await provider.check!({}, { context: ctx, tag: "t:1" });
    expect(r.failures).toEqual([]);
    expect(r.inputs?.["contextHash"]).toMatch(/^sha256:/);
    expect(await provider.diff!("id", { tag: "t:1" }, { tag: "t:2" })).toMatchObject({ changes: true });
  });

  it("the resource marks registryAuth secret and sends the serialised provider as __provider", async () => {
    const pulumi = nodeRequire("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
    const { ImageBuild } = nodeRequire(dist) as typeof import("../../src/provider/image-build");
    const seen: Array<{ type: string; inputs: Record<string, unknown> }> = [];
    await pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          seen.push({ type: args.type, inputs: args.inputs });
          return { id: "mock-id", state: { ...args.inputs, digest: "sha256:" + "1".repeat(64) } };
        },
        call: () => ({}),
      },
      "project",
      "stack",
      true,
    );
    const img = new ImageBuild("img", { context: ".", tag: "t:1", registryAuth: { username: "u", password: "pw" } });
    const auth = (img as unknown as { registryAuth: import("@pulumi/pulumi").Output<unknown> }).registryAuth;
    const digest = await new Promise<string>((res) => img.digest.apply((d) => res(d)));
    const authSecret = await pulumi.isSecret(auth);
    expect(digest).toBe("sha256:" + "1".repeat(64));
    expect(authSecret).toBe(true);
    expect(seen[0]!.type).toBe("pulumi-nodejs:dynamic/sealant:ImageBuild");
    expect(String(seen[0]!.inputs["__provider"])).toContain('require("sealant/provider/impl/image-build")');
  });
});
