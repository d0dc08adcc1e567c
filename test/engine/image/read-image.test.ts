import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { build } from "../../../src/engine/build";
import { readImage, sourceReader, storeReader } from "../../../src/engine/image/read-image";
import { registryDigest, resolveImage, storedDigest } from "../../../src/engine/image/resolve";
import { pushImage } from "../../../src/engine/image/transfer";
import { Session } from "../../../src/engine/session";
import { freePort, sharedRegistries } from "../../support/registry";

/** engine/image read-image and resolve: one walk over the store or a registry; a reference resolved where it is. */

const temps: string[] = [];
async function temp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

const uniq = () => Math.random().toString(36).slice(2, 8);

async function tiny(session: Session, tag: string, architectures?: string[]) {
  const ctx = await temp("sealant-read-ctx-");
  await writeFile(
    join(ctx, "Kubefile"),
    'FROM scratch\nLABEL io.sealant.runtime="hooks" io.sealant.runtime.version="r-1" purpose="read"\nCOPY data.txt data.txt\n',
  );
  await writeFile(join(ctx, "data.txt"), `${tag} ${uniq()}\n`);
  return build(session, { context: ctx, tag, ...(architectures ? { platforms: architectures.map((architecture) => ({ os: "linux", architecture })) } : {}) });
}

describe("readImage", () => {
  it("walks an index to each platform's manifest and config, the same from the store and from a registry", async () => {
    // GIVEN a two-platform image, built and pushed
    const session = await Session.open({ home: await temp("sealant-home-") });
    const ref = `${sharedRegistries().upstream.host}/sealant-test/read-${uniq()}:1`;
    const built = await tiny(session, ref, ["amd64", "arm64"]);
    await pushImage(session.store, ref, { clientFor: session.clientFor });
    // WHEN it is read from the store and from the registry
    const local = await readImage(storeReader(session.store), built.descriptor);
    const parsed = ref.split("/");
    const remote = await readImage(sourceReader(session.sourceFor(parsed[0]!), parsed.slice(1).join("/").split(":")[0]!), built.descriptor);
    // THEN both name the index and each platform with its labels and metadata
    for (const image of [local, remote]) {
      expect(image.descriptor.digest).toBe(built.digest);
      expect(image.parts.map((p) => `${p.platform.os}/${p.platform.architecture}`)).toEqual(["linux/amd64", "linux/arm64"]);
      expect(image.parts[0]!.config.config?.Labels).toMatchObject({ purpose: "read" });
      expect(image.parts[0]!.metadata.runtime).toEqual({ type: "hooks", version: "r-1" });
    }
    expect(remote.parts.map((p) => p.descriptor.digest)).toEqual(local.parts.map((p) => p.descriptor.digest));
    expect(await registryDigest(session.clientFor, ref)).toBe(built.digest);
    expect(await storedDigest(session.store, ref)).toBe(built.digest);
    expect(await storedDigest(session.store, `${ref}-missing`)).toBeUndefined();
    session.close();
  });
});

describe("resolveImage", () => {
  it("resolves from the registry without pulling, from the store when the registry is down, and says nowhere", async () => {
    const upstream = sharedRegistries().upstream;
    const home = await temp("sealant-home-");
    const session = await Session.open({ home });
    const ref = `${upstream.host}/sealant-test/resolve-${uniq()}:1`;
    const built = await tiny(session, ref);
    await pushImage(session.store, ref, { clientFor: session.clientFor });
    // A fresh store: the registry answers, nothing is pulled.
    const other = await Session.open({ home: await temp("sealant-home-") });
    const remote = await resolveImage(other, ref, { pull: false });
    expect(remote).toMatchObject({ digest: built.digest, repoDigest: `${ref}@${built.digest}`, source: "registry", labels: { purpose: "read" } });
    expect(remote!.metadata.runtime?.type).toBe("hooks");
    expect(await storedDigest(other.store, ref)).toBeUndefined();
    // Pulled when asked.
    const lines: string[] = [];
    expect(await resolveImage(other, ref, { pull: true, log: (l) => void lines.push(l) })).toMatchObject({ digest: built.digest, source: "registry" });
    expect(lines[0]).toMatch(/^pulling /);
    expect(await storedDigest(other.store, ref)).toBe(built.digest);
    // A registry that is down: the store's copy, said so.
    const down = `127.0.0.1:${await freePort()}/local/only-${uniq()}:1`;
    const local = await tiny(session, down);
    lines.length = 0;
    expect(await resolveImage(session, down, { pull: true, log: (l) => void lines.push(l) })).toMatchObject({ digest: local.digest, source: "store" });
    expect(lines.join("\n")).toMatch(/could not be asked .*using the local store/);
    // Found nowhere: undefined; not in the store and the registry down: an error naming both.
    expect(await resolveImage(session, `${upstream.host}/sealant-test/never-${uniq()}:1`, { pull: false })).toBeUndefined();
    await expect(resolveImage(other, down, { pull: false })).rejects.toThrow(/is not in the local store .* its registry could not be asked/);
    session.close();
    other.close();
  });
});

describe("Session auth", () => {
  it("uses in-memory credentials for their registry only, and never writes them", async () => {
    const basic = sharedRegistries().basic;
    const user = basic.users[0]!;
    const home = await temp("sealant-home-");
    const anonymous = await Session.open({ home });
    await expect(anonymous.clientFor(basic.host).headManifest("sealant-test/none", "1")).rejects.toThrow(/401/);
    anonymous.close();
    const session = await Session.open({ home, auth: { [basic.host]: { username: user.username, password: user.password } } });
    expect(await session.clientFor(basic.host).headManifest("sealant-test/none", "1")).toBeUndefined();
    expect(session.clientFor(basic.host)).toBe(session.clientFor(basic.host));
    expect(await session.credentials.get(basic.host)).toBeUndefined();
    session.close();
  });
});
