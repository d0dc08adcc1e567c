import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageNotFoundError } from "../../src/engine/image/store";
import { Session } from "../../src/engine/session";
import * as impl from "../../src/provider/impl/cluster-image";
import * as build from "../../src/provider/impl/image-build";
import { UNKNOWN } from "../../src/provider/impl/unknown";
import { freePort, sharedRegistries } from "../support/registry";

/**
 * The ClusterImage provider's methods called directly, with the real engine, temp
 * SEALANT_HOMEs and the real registries of the test run: resolving a pushed image (pulling it
 * or not), a moved tag noticed by read, images only in the local store, registry credentials.
 */

const REPO = resolve(__dirname, "../..");
const temps: string[] = [];
const saved = process.env.SEALANT_HOME;
const lines: string[] = [];
const hooks = { log: (l: string) => void lines.push(l) };
const uniq = () => Math.random().toString(36).slice(2, 8);

async function temp(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

/** Points SEALANT_HOME at a new empty home (a fresh machine, as far as the store goes). */
async function freshHome(): Promise<string> {
  const home = await temp("sealant-home-");
  process.env.SEALANT_HOME = home;
  return home;
}

/** Builds a tiny cluster image with the ImageBuild provider (pushing it when asked); returns its outputs. */
async function buildTiny(tag: string, content: string, extra: Record<string, unknown> = {}) {
  const ctx = await temp("sealant-ctx-");
  await writeFile(
    join(ctx, "Kubefile"),
    'FROM scratch\nLABEL io.sealant.runtime="hooks" io.sealant.runtime.version="tiny-1" purpose="provider-test"\nCOPY data.txt data.txt\n',
  );
  await writeFile(join(ctx, "data.txt"), content);
  const checked = await build.check({}, { context: ctx, tag, ...extra });
  expect(checked.failures).toEqual([]);
  return (await build.create(checked.inputs, hooks)).outs;
}

async function stored(ref: string): Promise<string | undefined> {
  const session = await Session.open();
  try {
    return (await session.store.resolve(ref)).descriptor.digest;
  } catch (err) {
    if (err instanceof ImageNotFoundError) return undefined;
    throw err;
  } finally {
    session.close();
  }
}

beforeAll(async () => {
  await freshHome();
});

afterAll(async () => {
  if (saved === undefined) delete process.env.SEALANT_HOME;
  else process.env.SEALANT_HOME = saved;
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

describe("ClusterImage check and diff", () => {
  it("check names bad inputs by property; unknown values pass", async () => {
    const bad = await impl.check({}, { ref: "Not A Ref", pull: "yes", registryAuth: { username: "u:x", password: "s3cret" } });
    expect(bad.failures.map((f) => f.property).sort()).toEqual(["pull", "ref", "registryAuth.username"]);
    expect(JSON.stringify(bad.failures)).not.toContain("s3cret");
    expect((await impl.check({}, {})).failures).toEqual([{ property: "ref", reason: expect.stringMatching(/required/) }]);
    expect((await impl.check({}, { ref: UNKNOWN, registryAuth: { username: UNKNOWN, password: UNKNOWN } })).failures).toEqual([]);
    expect((await impl.check({}, { ref: "registry.example.com/team/app:1@sha256:" + "a".repeat(64) })).failures).toEqual([]);
  });

  it("diff: a new reference is an update; another spelling, or new credentials, is no change; unknown is a change", async () => {
    const olds = { ref: "etcd:3.4", digest: "sha256:1", registryAuth: { username: "u", password: "p" } };
    expect(await impl.diff("id", olds, { ref: "docker.io/library/etcd:3.4", registryAuth: { username: "u", password: "rotated" } })).toEqual({
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
    });
    expect(await impl.diff("id", olds, { ref: "etcd:3.5" })).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    expect((await impl.diff("id", olds, { ref: UNKNOWN })).changes).toBe(true);
    expect((await impl.diff("id", { ...olds, pull: false }, { ref: "etcd:3.4" })).changes).toBe(true);
  });
});

describe("ClusterImage against a registry", () => {
  it("resolves a pushed image, pulling it into a fresh store; pull: false reads the registry only", async () => {
    // GIVEN an image built and pushed to the test registry
    const upstream = sharedRegistries().upstream;
    const ref = `${upstream.host}/sealant-test/tiny-${uniq()}:1`;
    await freshHome();
    const built = await buildTiny(ref, "one\n", { push: true });
    expect(built.pushedRepoDigest).toBe(`${ref}@${built.digest}`);

    // WHEN a ClusterImage is created on another machine (an empty store)
    await freshHome();
    const checked = await impl.check({}, { ref });
    expect(checked.failures).toEqual([]);
    const { id, outs } = await impl.create(checked.inputs, hooks);
    // THEN it names the same digest with the image's metadata, and the store now has it
    expect(outs).toEqual({
      ref,
      pull: true,
      digest: built.digest,
      repoDigest: `${ref}@${built.digest}`,
      labels: { "io.sealant.runtime": "hooks", "io.sealant.runtime.version": "tiny-1", purpose: "provider-test" },
      kind: "kube-installer",
      runtime: "hooks",
      runtimeVersion: "tiny-1",
      containerImages: [],
      platforms: [built.layers[0]!.platform],
      source: "registry",
    });
    expect(await stored(ref)).toBe(built.digest);
    expect(await impl.read(id, outs as never)).toEqual({ id, props: outs });

    // AND with pull: false on yet another machine, the same answer without pulling
    await freshHome();
    const remote = await impl.create({ ref, pull: false }, hooks);
    expect(remote.outs).toMatchObject({ digest: built.digest, runtime: "hooks", pull: false, source: "registry" });
    expect(await stored(ref)).toBeUndefined();
  });

  it("read notices a tag moved in the registry", async () => {
    const upstream = sharedRegistries().upstream;
    const ref = `${upstream.host}/sealant-test/moving-${uniq()}:1`;
    const first = await buildTiny(ref, "first\n", { push: true });
    const { id, outs } = await impl.create({ ref }, hooks);
    expect(outs.digest).toBe(first.digest);
    // The tag is pushed over from elsewhere (another machine's store).
    const here = process.env.SEALANT_HOME;
    await freshHome();
    const second = await buildTiny(ref, "second\n", { push: true });
    process.env.SEALANT_HOME = here;
    expect(second.digest).not.toBe(first.digest);
    // refresh: the new digest (this store still has the old one under the tag: the registry wins)
    const refreshed = await impl.read(id, outs as never);
    expect(refreshed.id).toBe(id);
    expect(refreshed.props).toMatchObject({ ref, digest: second.digest, repoDigest: `${ref}@${second.digest}`, source: "registry" });
    // and the next diff (same ref) has nothing to do: the refreshed digest is the state
    expect((await impl.diff(id, refreshed.props, { ref })).changes).toBe(false);
    // update (e.g. after another input changed) pulls the new one
    const updated = await impl.update(id, refreshed.props, { ref }, hooks);
    expect(updated.outs.digest).toBe(second.digest);
    expect(await stored(ref)).toBe(second.digest);
  });

  it("uses registryAuth for a registry with basic auth, and fails clearly without it", async () => {
    const basic = sharedRegistries().basic;
    const user = basic.users[0]!;
    const auth = { username: user.username, password: user.password };
    const ref = `${basic.host}/sealant-test/private-${uniq()}:1`;
    await freshHome();
    const built = await buildTiny(ref, "private\n", { push: true, registryAuth: auth });
    await freshHome();
    await expect(impl.create({ ref }, hooks)).rejects.toThrow(
      new RegExp(`not in the local store .* its registry could not be asked: .*${basic.host.replace(/\./g, "\\.")}.*401`),
    );
    const { outs } = await impl.create({ ref, registryAuth: auth }, hooks);
    expect(outs).toMatchObject({ digest: built.digest, registryAuth: auth });
    expect(await stored(ref)).toBe(built.digest);
  });
});

describe("ClusterImage from the local store", () => {
  it("an ImageBuild's repoDigest resolves from the store without asking the registry; a tag falls back to the store when the registry is down", async () => {
    await freshHome();
    // A registry that is not there: nothing listens on this port.
    const down = `127.0.0.1:${await freePort()}`;
    const tag = `${down}/local/only-${uniq()}:1`;
    const built = await buildTiny(tag, "local\n");
    lines.length = 0;
    const pinned = await impl.create({ ref: built.repoDigest }, hooks);
    expect(pinned.outs).toMatchObject({ digest: built.digest, source: "store", runtime: "hooks" });
    expect(lines).toEqual([]); // the registry was not even asked

    lines.length = 0;
    const byTag = await impl.create({ ref: tag }, hooks);
    expect(byTag.outs).toMatchObject({ digest: built.digest, repoDigest: `${tag}@${built.digest}`, source: "store" });
    expect(lines.join("\n")).toMatch(new RegExp(`registry ${down.replace(/\./g, "\\.")} could not be asked .*using the local store`));

    // The local tag moved (rebuilt with other content): read notices.
    const rebuilt = await buildTiny(tag, "local, rebuilt\n");
    expect((await impl.read(byTag.id, byTag.outs as never, hooks)).props).toMatchObject({ digest: rebuilt.digest, source: "store" });
    // The pinned digest no longer has a name in the store (its blobs are just cache until gc), and
    // its registry cannot be asked: an error, not "gone" (refresh must not drop it on an outage).
    await expect(impl.read(pinned.id, pinned.outs as never, hooks)).rejects.toThrow(
      /is not in the local store .* its registry could not be asked: .*connection refused/,
    );
  });

  it("read of an image found nowhere says gone; create fails naming the reference", async () => {
    await freshHome();
    const upstream = sharedRegistries().upstream;
    const ref = `${upstream.host}/sealant-test/never-pushed-${uniq()}:1`;
    expect(await impl.read("id", { ref, digest: "sha256:" + "0".repeat(64) })).toEqual({ id: "", props: {} });
    await expect(impl.create({ ref }, hooks)).rejects.toThrow(`ClusterImage ${ref}: not found in its registry nor in the local store`);
    await expect(impl.delete("id", { ref })).resolves.toBeUndefined();
  });
});

describe("the ClusterImage provider object", () => {
  it("each method only requires the package's implementation, and Pulumi serialises it capturing nothing", async () => {
    const nodeRequire = createRequire(__filename);
    const { clusterImageProvider } = nodeRequire(join(REPO, "dist/provider/cluster-image.js")) as typeof import("../../src/provider/cluster-image");
    for (const [name, fn] of Object.entries(clusterImageProvider)) {
      expect(String(fn), name).toMatch(
        new RegExp(`^async ${name}\\([\\w, ]*\\) \\{\\s*return require\\("sealant/provider/impl/cluster-image"\\)\\.${name}\\([\\w, ]*\\);\\s*\\}$`),
      );
    }
    const pulumi = nodeRequire("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
    const sf = await pulumi.runtime.serializeFunction(() => clusterImageProvider, { allowSecrets: true });
    expect([...sf.text.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1])).toEqual(Array(6).fill("sealant/provider/impl/cluster-image"));
    const program = await temp("sealant-program-");
    await mkdir(join(program, "node_modules"));
    await symlink(REPO, join(program, "node_modules/sealant"));
    const requireFromString = nodeRequire("require-from-string") as (code: string, filename: string) => { handler: () => typeof clusterImageProvider };
    const provider = requireFromString(sf.text, join(program, "index.js")).handler();
    expect(await provider.diff!("id", { ref: "a:1" }, { ref: "a:2" })).toMatchObject({ changes: true, replaces: [] });
  });
});
