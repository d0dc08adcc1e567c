import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticCredentials } from "../../../../src/engine/image/credentials";
import { sha256, type Digest } from "../../../../src/engine/image/digest";
import { RegistryClient, RegistryError, parseChallenges } from "../../../../src/engine/image/registry";
import { pushOneLayerImage } from "../../../support/push";
import { sharedRegistries, startRegistry, type TestRegistry } from "../../../support/registry";

const { basic } = sharedRegistries();
const basicUser = basic.users[0]!;

let seq = 0;
const repoName = (p: string) => `auth/${p}-${process.pid}-${Date.now().toString(36)}-${seq++}`;

async function pushSmallImage(c: RegistryClient, repo: string, tag: string): Promise<Digest> {
  const layer = randomBytes(512);
  const digest = sha256(layer);
  return (await pushOneLayerImage(c, repo, tag, { digest, size: layer.length, diffId: digest, open: () => Readable.from([layer]) })).digest;
}

async function failure(p: Promise<unknown>): Promise<RegistryError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RegistryError);
  return err as RegistryError;
}

describe("basic auth (docker-registry with htpasswd, plain HTTP)", () => {
  it("GIVEN the right credentials WHEN pushing and pulling THEN it works and checkLogin passes", async () => {
    const c = new RegistryClient(basic.host, { credentials: staticCredentials(basicUser) });
    try {
      await c.checkLogin();
      const repo = repoName("basic-ok");
      const digest = await pushSmallImage(c, repo, "v1");
      expect((await c.getManifest(repo, "v1")).descriptor.digest).toBe(digest);
    } finally {
      c.close();
    }
  });

  it("GIVEN a wrong password WHEN logging in or pulling THEN a 401 names the registry and the login command, never the password", async () => {
    const password = `wrong-${randomBytes(6).toString("hex")}`;
    const c = new RegistryClient(basic.host, { credentials: staticCredentials({ username: basicUser.username, password }) });
    try {
      const login = await failure(c.checkLogin());
      const pull = await failure(c.getManifest("some/repo", "latest"));

      for (const e of [login, pull]) {
        expect(e.status).toBe(401);
        expect(e.message).toContain(`unauthorized: check credentials for ${basic.host} (sealant login ${basic.host})`);
        expect(e.message).not.toContain(password);
        expect(e.message).not.toContain(Buffer.from(`${basicUser.username}:${password}`).toString("base64"));
      }
      expect(login.message).toMatch(new RegExp(`^GET ${basic.host}/v2/: 401 UNAUTHORIZED`));
      expect(pull.message).toMatch(new RegExp(`^GET ${basic.host}/v2/some/repo/manifests/latest: 401`));
      expect(pull.attempts).toBe(1);
    } finally {
      c.close();
    }
  });

  it("GIVEN no credentials WHEN pulling from a registry that wants them THEN the error says to log in", async () => {
    const c = new RegistryClient(basic.host);
    try {
      const e = await failure(c.listTags("some/repo"));
      expect(e.status).toBe(401);
      expect(e.message).toContain(`no credentials for ${basic.host} (sealant login ${basic.host})`);
    } finally {
      c.close();
    }
  });
});

describe("bearer token auth (docker-registry auth.token + a test token issuer)", () => {
  let reg: TestRegistry;
  const rw = { username: "writer", password: randomBytes(8).toString("hex") };
  const ro = { username: "reader", password: randomBytes(8).toString("hex"), access: "pull" as const };

  beforeAll(async () => {
    reg = await startRegistry({ auth: "token", users: [rw, ro], anonymousPull: true });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("GIVEN a registry answering with a Bearer challenge THEN the challenge names realm and service", async () => {
    const res = await fetch(`http://${reg.host}/v2/`);
    const challenges = parseChallenges(res.headers.get("www-authenticate") ?? "");
    expect(challenges[0]).toMatchObject({ scheme: "bearer", params: { service: "sealant-test-registry" } });
    expect(challenges[0]!.params["realm"]).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/token$/);
  });

  it("GIVEN valid credentials WHEN pushing and pulling THEN tokens are fetched per scope and reused", async () => {
    const c = new RegistryClient(reg.host, { credentials: staticCredentials(rw) });
    try {
      const repo = repoName("bearer");
      const before = reg.tokenRequests();
      const digest = await pushSmallImage(c, repo, "v1");
      const afterPush = reg.tokenRequests() - before;

      expect((await c.getManifest(repo, "v1")).descriptor.digest).toBe(digest);
      await c.listTags(repo);
      await c.headManifest(repo, digest);

      // pull scope (HEAD blob) and pull,push scope (uploads); later pulls reuse the push token.
      expect(afterPush).toBeLessThanOrEqual(2);
      expect(reg.tokenRequests() - before).toBe(afterPush);
    } finally {
      c.close();
    }
  });

  it("GIVEN valid credentials WHEN a blob is pushed with mountFrom THEN the token covers both repositories and it is mounted", async () => {
    const c = new RegistryClient(reg.host, { credentials: staticCredentials(rw) });
    try {
      const source = repoName("mount-src");
      const target = repoName("mount-dst");
      const bytes = randomBytes(4096);
      const desc = { digest: sha256(bytes), size: bytes.length };
      await c.pushBlob(source, desc, () => Readable.from([bytes]));
      expect(await c.pushBlob(target, desc, () => Readable.from([bytes]), { mountFrom: [source] })).toBe("mounted");
    } finally {
      c.close();
    }
  });

  it("GIVEN a wrong password WHEN checking the login THEN the token request fails with a clear 401", async () => {
    const password = `bad-${randomBytes(6).toString("hex")}`;
    const c = new RegistryClient(reg.host, { credentials: staticCredentials({ username: rw.username, password }) });
    try {
      const e = await failure(c.checkLogin());
      expect(e.status).toBe(401);
      expect(e.message).toContain(`unauthorized: check credentials for ${reg.host} (sealant login ${reg.host})`);
      expect(e.message).not.toContain(password);
    } finally {
      c.close();
    }
  });

  it("GIVEN a read-only user WHEN pushing THEN the registry's insufficient scope becomes an unauthorized error; pulling works", async () => {
    const writer = new RegistryClient(reg.host, { credentials: staticCredentials(rw) });
    const reader = new RegistryClient(reg.host, { credentials: staticCredentials(ro) });
    try {
      const repo = repoName("ro");
      const digest = await pushSmallImage(writer, repo, "v1");
      expect((await reader.getManifest(repo, "v1")).descriptor.digest).toBe(digest);

      const bytes = randomBytes(100);
      const e = await failure(reader.pushBlob(repo, { digest: sha256(bytes), size: 100 }, () => Readable.from([bytes])));

      expect(e.status).toBe(401);
      expect(e.method).toBe("POST");
      expect(e.message).toContain(`check credentials for ${reg.host}`);
      expect(e.message).toContain("lack access");
    } finally {
      writer.close();
      reader.close();
    }
  });

  it("GIVEN no credentials and anonymous pull tokens WHEN pulling THEN it works; pushing asks for a login", async () => {
    const writer = new RegistryClient(reg.host, { credentials: staticCredentials(rw) });
    const anon = new RegistryClient(reg.host);
    try {
      const repo = repoName("anon");
      await pushSmallImage(writer, repo, "v1");
      expect(await anon.listTags(repo)).toEqual(["v1"]);
      const e = await failure(pushSmallImage(anon, repo, "v2"));
      expect(e.message).toContain(`no credentials for ${reg.host} (sealant login ${reg.host})`);
      expect(e.message).not.toContain("lack access");
    } finally {
      writer.close();
      anon.close();
    }
  });
});
