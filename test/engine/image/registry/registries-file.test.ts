import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../../../src/engine/image/digest";
import { RegistryClient } from "../../../../src/engine/image/registry";
import { MirroredClient } from "../../../../src/engine/image/registry/mirrored";
import { loadRegistryConfig, mirrorsOf, settingsOf } from "../../../../src/engine/image/registry-config";
import { pullImage } from "../../../../src/engine/image/transfer";
import { Session } from "../../../../src/engine/session";
import { startPrivateCaFront, type PrivateCaRegistry } from "../../../support/private-ca";
import { pushOneLayerImage } from "../../../support/push";
import { freePort, startRegistry, type TestRegistry } from "../../../support/registry";
import { randomLayer } from "../../../support/tools";

/**
 * The registries file against real registries: mirrors tried in order (a dead one, one without
 * the image, one with it behind a private CA), then the registry itself; logins from the file;
 * and every malformed file refused with one error naming the field.
 */

let full: TestRegistry;
let empty: TestRegistry;
let locked: TestRegistry;
let tokens: TestRegistry;
let fullFront: PrivateCaRegistry;
let emptyFront: PrivateCaRegistry;
const temps: string[] = [];

async function temp(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

async function pushImage(client: RegistryClient, repo: string): Promise<void> {
  const { gz, diffId } = await randomLayer(1024);
  await pushOneLayerImage(client, repo, "1", { digest: sha256(gz), size: gz.length, diffId: diffId as `sha256:${string}`, open: () => Readable.from([gz]) });
}

beforeAll(async () => {
  [full, empty, locked, tokens] = await Promise.all([startRegistry(), startRegistry(), startRegistry({ auth: "htpasswd" }), startRegistry({ auth: "token" })]);
  await pushImage(new RegistryClient(tokens.host, { credentials: { get: async () => tokens.users[0]! } }), "team/app");
  await pushImage(new RegistryClient(full.host), "library/app");
  const user = locked.users[0]!;
  await pushImage(new RegistryClient(locked.host, { credentials: { get: async () => user } }), "team/app");
  [fullFront, emptyFront] = await Promise.all([startPrivateCaFront(full.host), startPrivateCaFront(empty.host)]);
}, 60_000);

afterAll(async () => {
  await Promise.all([fullFront?.stop(), emptyFront?.stop()]);
  await Promise.all([full?.stop(), empty?.stop(), locked?.stop(), tokens?.stop()]);
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

async function sessionWith(yaml: string): Promise<Session> {
  const home = await temp("sealant-home-");
  await writeFile(join(home, "registries.yaml"), yaml);
  return Session.open({ home, env: { HOME: home } });
}

const trust = (f: PrivateCaRegistry) => `  "${f.host}":\n    tls:\n      ca_file: ${f.caFile}\n`;

describe("mirrors from the registries file", () => {
  it("tries the mirrors in order: a dead one and one without the image are passed over; the registry itself is not asked", async () => {
    // GIVEN docker.io mirrored by a closed port, a registry lacking the image, then one that has it (private CA)
    const dead = await freePort();
    const session = await sessionWith(
      `mirrors:\n  docker.io:\n    endpoint:\n      - http://127.0.0.1:${dead}\n      - https://${emptyFront.host}\n      - https://${fullFront.host}\n` +
        `configs:\n${trust(emptyFront)}${trust(fullFront)}`,
    );
    const client = session.clientFor("docker.io");
    expect(client).toBeInstanceOf(MirroredClient);
    expect((client as MirroredClient).mirrorHosts).toEqual([`127.0.0.1:${dead}`, emptyFront.host, fullFront.host]);
    const [emptyBefore, fullBefore] = [emptyFront.requests.length, fullFront.requests.length];
    // WHEN docker.io/library/app:1 is pulled (Docker Hub itself is not reachable from here)
    const pulled = await pullImage(session.store, "docker.io/library/app:1", { clientFor: session.clientFor });
    session.close();
    // THEN the empty mirror was asked and said no; the third mirror served manifest and blobs
    expect(pulled.ref).toBe("docker.io/library/app:1");
    expect(emptyFront.requests.slice(emptyBefore).some((r) => r.includes("/v2/library/app/manifests/1"))).toBe(true);
    const served = fullFront.requests.slice(fullBefore);
    expect(served.some((r) => r.includes("/manifests/1"))).toBe(true);
    expect(served.filter((r) => r.includes("/blobs/sha256:")).length).toBe(2);
  }, 60_000);

  it("falls back to the registry itself when no mirror has the image", async () => {
    // GIVEN the registry `full` mirrored only by the empty one
    const session = await sessionWith(`mirrors:\n  "${full.host}":\n    endpoint: ["https://${emptyFront.host}"]\nconfigs:\n${trust(emptyFront)}`);
    const before = emptyFront.requests.length;
    const pulled = await pullImage(session.store, `${full.host}/library/app:1`, { clientFor: session.clientFor });
    session.close();
    expect(pulled.digest).toMatch(/^sha256:/);
    expect(emptyFront.requests.length).toBeGreaterThan(before);
  }, 60_000);

  it("insecure_skip_verify lets a mirror's certificate go unchecked (containerd's skip_verify)", async () => {
    const session = await sessionWith(
      `mirrors:\n  "*":\n    endpoint: ["https://${fullFront.host}"]\nconfigs:\n  "${fullFront.host}":\n    tls: { insecure_skip_verify: true }\n`,
    );
    const before = fullFront.requests.length;
    const pulled = await pullImage(session.store, "quay.io/library/app:1", { clientFor: session.clientFor });
    session.close();
    expect(pulled.ref).toBe("quay.io/library/app:1");
    expect(fullFront.requests.length).toBeGreaterThan(before);
  }, 60_000);

  it("without the CA in the file, the private-CA mirror is refused and the pull fails over to the registry", async () => {
    const session = await sessionWith(`mirrors:\n  "*":\n    endpoint: ["https://${fullFront.host}"]\n`);
    const before = fullFront.requests.length;
    const err = await pullImage(session.store, "docker.io/library/app:1", { clientFor: session.clientFor, signal: AbortSignal.timeout(20_000) }).catch(
      (e: Error) => e,
    );
    session.close();
    // The TLS handshake failed, so the front served nothing; Docker Hub is then tried and is not reachable here.
    expect(fullFront.requests.length).toBe(before);
    expect(err).toBeInstanceOf(Error);
  }, 60_000);
});

describe("logins from the registries file", () => {
  it("pulls from an htpasswd registry with the file's credentials, and is refused without them", async () => {
    const user = locked.users[0]!;
    const auth = Buffer.from(`${user.username}:${user.password}`).toString("base64");
    const session = await sessionWith(`configs:\n  "${locked.host}":\n    auth:\n      auth: ${auth}\n`);
    const pulled = await pullImage(session.store, `${locked.host}/team/app:1`, { clientFor: session.clientFor });
    session.close();
    expect(pulled.digest).toMatch(/^sha256:/);
    const anonymous = await sessionWith(`configs:\n  "${locked.host}":\n    plain_http: true\n`);
    const err = await pullImage(anonymous.store, `${locked.host}/team/app:1`, { clientFor: anonymous.clientFor }).catch((e: Error) => e);
    anonymous.close();
    expect((err as Error).message).toMatch(/401|unauthorized|credentials/i);
  }, 60_000);
});

/** A pull token for `repo`, asked of the registry's token service the way a CI system would. */
async function pullToken(registry: TestRegistry, repo: string): Promise<string> {
  const challenge = (await fetch(`http://${registry.host}/v2/`)).headers.get("www-authenticate") ?? "";
  const realm = new URL(/realm="([^"]+)"/.exec(challenge)![1]!);
  realm.searchParams.set("service", /service="([^"]+)"/.exec(challenge)![1]!);
  realm.searchParams.set("scope", `repository:${repo}:pull`);
  const user = registry.users[0]!;
  const res = await fetch(realm, { headers: { Authorization: `Basic ${Buffer.from(`${user.username}:${user.password}`).toString("base64")}` } });
  return ((await res.json()) as { token: string }).token;
}

describe("a registry token from the registries file", () => {
  it("is sent as the bearer token as it is, without asking the registry's token service", async () => {
    const token = await pullToken(tokens, "team/app");
    const session = await sessionWith(`configs:\n  "${tokens.host}":\n    auth:\n      token: ${token}\n`);
    const asked = tokens.tokenRequests();
    const pulled = await pullImage(session.store, `${tokens.host}/team/app:1`, { clientFor: session.clientFor });
    session.close();
    expect(pulled.digest).toMatch(/^sha256:/);
    expect(tokens.tokenRequests()).toBe(asked);
    // A token that does not cover the repository is refused, and not shown.
    const other = await pullToken(tokens, "team/other");
    const wrong = await sessionWith(`configs:\n  "${tokens.host}":\n    auth:\n      token: ${other}\n`);
    const err = await pullImage(wrong.store, `${tokens.host}/team/app:1`, { clientFor: wrong.clientFor }).catch((e: Error) => e);
    wrong.close();
    expect((err as Error).message).toMatch(/401|unauthorized|denied/i);
    expect(`${(err as Error).message}${(err as Error).stack}`).not.toContain(other);
  }, 60_000);
});

describe("reading the registries file", () => {
  async function file(yaml: string): Promise<string> {
    const dir = await temp("sealant-registries-");
    const f = join(dir, "registries.yaml");
    await writeFile(f, yaml);
    return f;
  }

  it('resolves k3s\'s shape: mirrors by registry, configs by host with the "*" entry as default', async () => {
    const dir = await temp("sealant-registries-");
    await writeFile(join(dir, "ca.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    const f = join(dir, "registries.yaml");
    await writeFile(
      f,
      [
        "mirrors:",
        "  docker.io:",
        '    endpoint: ["https://Mirror.Example:5000/", "http://10.0.0.5:5000/v2"]',
        "configs:",
        '  "*":',
        "    proxy: http://proxy.corp:3128",
        "  harbor.corp:",
        "    auth: { username: robot, password: Pw-1 }",
        "    tls: { ca_file: ca.pem }",
        "    proxy: direct",
        "  10.0.0.5:5000:",
        "    plain_http: true",
      ].join("\n"),
    );
    const config = await loadRegistryConfig(f, { required: true });
    expect(mirrorsOf(config, "index.docker.io")).toEqual([
      { scheme: "https", host: "mirror.example:5000" },
      { scheme: "http", host: "10.0.0.5:5000" },
    ]);
    expect(mirrorsOf(config, "quay.io")).toEqual([]);
    const harbor = settingsOf(config, "harbor.corp");
    expect(harbor.auth).toEqual({ username: "robot", password: "Pw-1" });
    expect(harbor.ca).toContain("BEGIN CERTIFICATE");
    expect(harbor.proxy).toBe("direct");
    expect(String(settingsOf(config, "quay.io").proxy)).toBe("http://proxy.corp:3128/");
    expect(settingsOf(config, "10.0.0.5:5000").plainHttp).toBe(true);
  });

  it.each([
    [
      "mirrors:\n  docker.io:\n    endpoint: [ftp://m.example]\n",
      /mirrors\["docker\.io"\]\.endpoint\[0\]: "ftp:\/\/m\.example": expected http\(s\):\/\/host\[:port\]/,
    ],
    ["mirrors:\n  docker.io:\n    endpoint: []\n", /mirrors\["docker\.io"\]\.endpoint: list at least one endpoint/],
    [
      "configs:\n  r.example:\n    tls: { ca_file: /nonexistent/ca.pem }\n",
      /configs\["r\.example"\]\.tls\.ca_file: cannot read \/nonexistent\/ca\.pem \(ENOENT\)/,
    ],
    ["configs:\n  r.example:\n    tls: { ca: not-a-pem }\n", /configs\["r\.example"\]\.tls\.ca: expected PEM text/],
    ["configs:\n  r.example:\n    auth: { username: u }\n", /configs\["r\.example"\]\.auth: needs username and password/],
    [
      "configs:\n  r.example:\n    auth: { token: T0ken-Leak, password: Leaky-Pw }\n",
      /configs\["r\.example"\]\.auth: give either token, or auth, or username and password/,
    ],
    ["configs:\n  r.example:\n    proxy: socks5://p:1080\n", /configs\["r\.example"\]\.proxy: the proxy must be reached over http:\/\/.*or "direct"/],
    ["configs:\n  r.example:\n    plain_http: yes-please\n", /configs\["r\.example"\]\.plain_http: .*boolean/],
    ["configs:\n  r.example:\n    tls: { insecure: true }\n", /configs\["r\.example"\]\.tls: .*insecure/],
    ['configs:\n  "*":\n    auth: { username: u, password: Leaky-Pw }\n', /configs\["\*"\]\.auth: credentials belong to one registry/],
    ['configs:\n  "bad host!":\n    plain_http: true\n', /configs(\["bad host!"\])?: .*registry host\[:port\]/],
    ["mirror:\n  docker.io: {}\n", /\(the document\): .*mirror/],
  ])("refuses %j with one error naming the field", async (yaml, message) => {
    const f = await file(yaml);
    const err = await loadRegistryConfig(f).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message.startsWith(`registries file ${f}: `)).toBe(true);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain("Leaky-Pw");
  });

  it("quotes no line of a broken YAML file (it may hold a password), only where it broke", async () => {
    const f = await file('configs:\n  r.example:\n    auth: { username: u, password: "Leaky-Pw\n');
    const err = await loadRegistryConfig(f).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/invalid YAML at line \d+, column \d+/);
    expect((err as Error).message).not.toContain("Leaky-Pw");
  });

  it("a missing default file is no configuration; a missing named file is an error", async () => {
    expect(await loadRegistryConfig("/nonexistent/registries.yaml")).toEqual({ mirrors: {}, hosts: {} });
    await expect(loadRegistryConfig("/nonexistent/registries.yaml", { required: true })).rejects.toThrow(
      "registries file /nonexistent/registries.yaml: no such file",
    );
  });
});
