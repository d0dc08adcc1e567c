import { promises as fs } from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CredentialStore, credentialMap, registryKey, staticCredentials } from "../../../../src/engine/image/credentials";
import { RegistryClient, RegistryError } from "../../../../src/engine/image/registry";
import { sharedRegistries } from "../../../support/registry";
import { tempDir } from "../../../support/tools";

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("CredentialStore", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let home: string;
  let dockerDir: string;
  let env: NodeJS.ProcessEnv;
  let warnings: string[];
  let store: CredentialStore;

  beforeEach(async () => {
    dir = await tempDir("sealant-creds-");
    home = path.join(dir.path, "sealant-home");
    dockerDir = path.join(dir.path, "docker");
    env = { HOME: path.join(dir.path, "user"), DOCKER_CONFIG: dockerDir };
    warnings = [];
    store = new CredentialStore(home, env, { warn: (m) => warnings.push(m) });
  });
  afterEach(async () => {
    await dir.cleanup();
  });

  async function dockerConfig(content: unknown): Promise<void> {
    await fs.mkdir(dockerDir, { recursive: true });
    await fs.writeFile(path.join(dockerDir, "config.json"), JSON.stringify(content));
  }

  it("GIVEN a docker config.json broken next to a credential WHEN it is read THEN the error says where, not what the text around it is", async () => {
    await fs.mkdir(dockerDir, { recursive: true });
    const secret = b64("alice:hunter2-secret");
    await fs.writeFile(path.join(dockerDir, "config.json"), `{"auths":{"r.example":{"auth":${secret}}}}`);

    const err = (await store.get("r.example").catch((e: unknown) => e)) as Error;

    expect(err.message).toBe(`reading credentials from ${path.join(dockerDir, "config.json")}: invalid JSON`);
    expect(err.message).not.toContain(secret.slice(0, 8));
  });

  it("GIVEN a login WHEN the store is read THEN auth.json holds base64(user:pass) under host:port with mode 0600", async () => {
    await store.login("127.0.0.1:5000", "alice", "s3cr:et");

    const file = path.join(home, "auth.json");
    const stat = await fs.stat(file);
    expect(stat.mode & 0o777).toBe(0o600);
    expect(JSON.parse(await fs.readFile(file, "utf8"))).toEqual({ auths: { "127.0.0.1:5000": { auth: b64("alice:s3cr:et") } } });
    expect(await store.get("127.0.0.1:5000")).toEqual({ username: "alice", password: "s3cr:et" });
    expect((await fs.readdir(home)).filter((f) => f !== "auth.json")).toEqual([]); // no temp files left
  });

  it("GIVEN credentials for two registries WHEN one logs out THEN only that one is removed, and a second logout reports nothing removed", async () => {
    await store.login("a.example:5000", "u1", "p1");
    await store.login("b.example", "u2", "p2");
    await store.login("b.example", "u2", "p2-new");

    expect(await store.logout("a.example:5000")).toBe(true);
    expect(await store.logout("a.example:5000")).toBe(false);
    expect(await store.get("a.example:5000")).toBeUndefined();
    expect(await store.get("b.example")).toEqual({ username: "u2", password: "p2-new" });
  });

  it("GIVEN other fields in auth.json WHEN logging in THEN they are kept", async () => {
    await fs.mkdir(home, { recursive: true });
    await fs.writeFile(path.join(home, "auth.json"), JSON.stringify({ auths: {}, other: { keep: true } }));
    await store.login("r.example", "u", "p");
    expect(JSON.parse(await fs.readFile(path.join(home, "auth.json"), "utf8")).other).toEqual({ keep: true });
  });

  it("GIVEN only a docker config WHEN looking up THEN its auths are used under any spelling of the registry", async () => {
    await dockerConfig({
      auths: {
        "https://index.docker.io/v1/": { auth: b64("hubuser:hubpass") },
        "https://quay.example": { auth: b64("q:qp") },
        "127.0.0.1:5000": { username: "local", password: "lp" },
      },
    });

    expect(await store.get("docker.io")).toEqual({ username: "hubuser", password: "hubpass" });
    expect(await store.get("index.docker.io")).toEqual({ username: "hubuser", password: "hubpass" });
    expect(await store.get("quay.example")).toEqual({ username: "q", password: "qp" });
    expect(await store.get("127.0.0.1:5000")).toEqual({ username: "local", password: "lp" });
    expect(await store.get("unknown.example")).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it("GIVEN both files WHEN looking up THEN sealant's own login wins", async () => {
    await dockerConfig({ auths: { "r.example": { auth: b64("docker:dp") } } });
    await store.login("r.example", "sealant", "sp");
    expect(await store.get("r.example")).toEqual({ username: "sealant", password: "sp" });
  });

  it("GIVEN DOCKER_CONFIG unset WHEN looking up THEN ~/.docker/config.json is read", async () => {
    const userDocker = path.join(env["HOME"]!, ".docker");
    await fs.mkdir(userDocker, { recursive: true });
    await fs.writeFile(path.join(userDocker, "config.json"), JSON.stringify({ auths: { "r.example": { auth: b64("h:hp") } } }));
    const s = new CredentialStore(home, { HOME: env["HOME"] });
    expect(await s.get("r.example")).toEqual({ username: "h", password: "hp" });
  });

  it("GIVEN a registry only covered by a credential helper WHEN looking up THEN nothing is returned and the warning says why", async () => {
    await dockerConfig({ auths: {}, credHelpers: { "r.example": "ecr-login" } });

    expect(await store.get("r.example")).toBeUndefined();
    expect(await store.get("r.example")).toBeUndefined();

    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('docker credential helper "docker-credential-ecr-login"');
    expect(warnings[0]).toContain("sealant login r.example");
  });

  it("GIVEN a broken auth.json WHEN reading or logging in THEN the error names the file instead of overwriting it", async () => {
    await fs.mkdir(home, { recursive: true });
    await fs.writeFile(path.join(home, "auth.json"), "{not json");
    await expect(store.get("r.example")).rejects.toThrow(`reading credentials from ${path.join(home, "auth.json")}: invalid JSON`);
    await expect(store.login("r.example", "u", "p")).rejects.toThrow(/invalid JSON/);
  });

  it("GIVEN bad input WHEN logging in THEN it is refused", async () => {
    await expect(store.login("r.example", "a:b", "p")).rejects.toThrow(/must not contain ":"/);
    await expect(store.login("r.example", "u", "")).rejects.toThrow(/password is empty/);
  });

  it("normalises registry keys", () => {
    expect(registryKey("https://index.docker.io/v1/")).toBe("docker.io");
    expect(registryKey("registry-1.docker.io")).toBe("docker.io");
    expect(registryKey("HTTP://Host.Example:5000/path")).toBe("host.example:5000");
  });

  it("GIVEN static and per-registry sources THEN they answer as configured", async () => {
    expect(await staticCredentials({ username: "a", password: "b" }).get("x")).toEqual({ username: "a", password: "b" });
    const map = credentialMap({ "https://r.example": { username: "m", password: "n" } });
    expect(await map.get("r.example")).toEqual({ username: "m", password: "n" });
    expect(await map.get("other")).toBeUndefined();
  });

  it("GIVEN a login verified with checkLogin WHEN the store is the client's credential source THEN the registry accepts it", async () => {
    const { basic } = sharedRegistries();
    const user = basic.users[0]!;

    // What `sealant login` does: verify first, then store.
    const bad = new RegistryClient(basic.host, { credentials: staticCredentials({ username: user.username, password: "nope" }) });
    await expect(bad.checkLogin()).rejects.toBeInstanceOf(RegistryError);
    bad.close();
    const check = new RegistryClient(basic.host, { credentials: staticCredentials(user) });
    await check.checkLogin();
    check.close();
    await store.login(basic.host, user.username, user.password);

    const c = new RegistryClient(basic.host, { credentials: store });
    try {
      expect(await c.listTags("never/pushed")).toEqual([]);
    } finally {
      c.close();
    }
    expect(await store.logout(basic.host)).toBe(true);
    const anon = new RegistryClient(basic.host, { credentials: store });
    try {
      await expect(anon.listTags("never/pushed")).rejects.toThrow(/no credentials for/);
    } finally {
      anon.close();
    }
  });
});
