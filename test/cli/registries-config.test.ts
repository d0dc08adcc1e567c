import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../src/engine/image/digest";
import { RegistryClient } from "../../src/engine/image/registry";
import { startPrivateCaFront, type PrivateCaRegistry } from "../support/private-ca";
import { startProxy, type TestProxy } from "../support/proxy";
import { pushOneLayerImage } from "../support/push";
import { startRegistry, type TestRegistry } from "../support/registry";
import { randomLayer } from "../support/tools";

/**
 * The compiled CLI with a registries file, as a user behind a company proxy runs it: a registry
 * with a login (htpasswd) behind TLS from a private CA, reachable only through the proxy (only the
 * proxy resolves registry.test). `sealant login` and `sealant pull` take the CA from
 * `--registries`, the proxy from HTTPS_PROXY; a bad file or proxy variable is one `sealant: ...`
 * line naming the field, with no secret in it.
 */
const CLI = resolve(__dirname, "../../dist/cli/main.js");
const temps: string[] = [];
let backend: TestRegistry;
let front: PrivateCaRegistry;
let proxy: TestProxy;
let ref: string;

async function temp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

beforeAll(async () => {
  backend = await startRegistry({ auth: "htpasswd" });
  const user = backend.users[0]!;
  const { gz, diffId } = await randomLayer(1024);
  await pushOneLayerImage(new RegistryClient(backend.host, { credentials: { get: async () => user } }), "team/app", "1", {
    digest: sha256(gz),
    size: gz.length,
    diffId: diffId as `sha256:${string}`,
    open: () => Readable.from([gz]),
  });
  front = await startPrivateCaFront(backend.host, ["DNS:registry.test"]);
  proxy = await startProxy({ hosts: { "registry.test": "127.0.0.1" } });
  ref = `registry.test:${front.port}/team/app:1`;
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await front?.stop();
  await backend?.stop();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function sealant(args: string[], opts: { home: string; env?: NodeJS.ProcessEnv; input?: string }): Promise<Run> {
  return new Promise((done) => {
    const env: NodeJS.ProcessEnv = { ...process.env, SEALANT_HOME: opts.home, HOME: opts.home, SEALANT_DEBUG: "" };
    for (const k of ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"]) delete env[k];
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...env, ...opts.env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(opts.input ?? "");
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

async function registriesFile(extra = ""): Promise<string> {
  const f = join(await temp("sealant-registries-"), "registries.yaml");
  await writeFile(f, `configs:\n  "registry.test:${front.port}":\n    tls:\n      ca_file: ${front.caFile}\n${extra}`);
  return f;
}

describe("sealant with a registries file, behind a proxy", () => {
  it("logs in and pulls through the proxy, trusting the file's CA", async () => {
    const home = await temp("sealant-home-");
    const file = await registriesFile();
    const user = backend.users[0]!;
    const env = { HTTPS_PROXY: proxy.url };
    const before = proxy.tunnels.length;
    // WHEN the user logs in (password on stdin) and pulls
    const login = await sealant(["login", `registry.test:${front.port}`, "-u", user.username, "--password-stdin", "--registries", file], {
      home,
      env,
      input: user.password,
    });
    expect(login.stderr).toBe("");
    expect(login.code).toBe(0);
    const pull = await sealant(["pull", ref, "--registries", file, "-q"], { home, env });
    expect(pull.stderr).toBe("");
    expect(pull.code).toBe(0);
    // THEN both went through the proxy's tunnels to registry.test
    expect(proxy.tunnels.length).toBeGreaterThan(before);
    expect(new Set(proxy.tunnels.slice(before))).toEqual(new Set([`registry.test:${front.port}`]));
  }, 60_000);

  it("takes the login from the file too, and a wrong one is refused without printing it", async () => {
    const home = await temp("sealant-home-");
    const user = backend.users[0]!;
    const good = await registriesFile(`    auth:\n      username: ${user.username}\n      password: ${user.password}\n`);
    const ok = await sealant(["pull", ref, "--registries", good, "-q"], { home, env: { HTTPS_PROXY: proxy.url } });
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    const bad = await registriesFile(`    auth:\n      username: ${user.username}\n      password: Wr0ng-Pass-Never-Shown\n`);
    const refused = await sealant(["pull", ref, "--registries", bad, "-q"], { home: await temp("sealant-home-"), env: { HTTPS_PROXY: proxy.url } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^sealant: .*401/);
    expect(refused.stderr).not.toContain("Wr0ng-Pass-Never-Shown");
  }, 60_000);

  it("a bad registries file is one line naming the file and the field, the password unshown", async () => {
    const home = await temp("sealant-home-");
    const f = join(await temp("sealant-registries-"), "registries.yaml");
    await writeFile(f, `configs:\n  registry.test:\n    auth: { password: Leaky-Pw-9 }\n    tls: { ca_file: ./missing.pem }\n`);
    const r = await sealant(["pull", ref, "--registries", f], { home });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `sealant: registries file ${f}: configs["registry.test"].auth: needs username and password (or auth, base64 of username:password, or token)\n`,
    );
    // The default file in $SEALANT_HOME is read the same way.
    await writeFile(join(home, "registries.yaml"), "mirrors:\n  docker.io:\n    endpoint: [registry.example]\n");
    const d = await sealant(["pull", ref], { home });
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(
      /^sealant: registries file .*registries\.yaml: mirrors\["docker\.io"\]\.endpoint\[0\]: "registry\.example": expected http\(s\):\/\/host\[:port\] \(no path\)\n$/,
    );
    const missing = await sealant(["pull", ref, "--registries", join(home, "nope.yaml")], { home });
    expect(missing.stderr).toBe(`sealant: registries file ${join(home, "nope.yaml")}: no such file\n`);
  });

  it("a proxy variable that is not an http:// URL is one line naming it, its credentials unshown", async () => {
    const r = await sealant(["pull", ref], { home: await temp("sealant-home-"), env: { https_proxy: "socks5://me:Proxy-Pw-7@proxy:1080" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sealant: https_proxy: the proxy must be reached over http:\/\/ \(got socks5:\/\/\)/);
    expect(r.stderr).not.toContain("Proxy-Pw-7");
  });
});
