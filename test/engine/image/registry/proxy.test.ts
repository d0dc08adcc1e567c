import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../../src/engine/build";
import { downloadSource } from "../../../../src/engine/build/remote-source";
import { sha256 } from "../../../../src/engine/image/digest";
import { RegistryClient } from "../../../../src/engine/image/registry";
import { noProxyMatcher, proxyFromEnv } from "../../../../src/engine/image/registry/proxy";
import { pullImage, pushImage } from "../../../../src/engine/image/transfer";
import { Session } from "../../../../src/engine/session";
import { startPrivateCaFront, type PrivateCaRegistry } from "../../../support/private-ca";
import { startProxy, type TestProxy } from "../../../support/proxy";
import { pushOneLayerImage } from "../../../support/push";
import { startRegistry, type TestRegistry } from "../../../support/registry";
import { randomLayer } from "../../../support/tools";

/**
 * Builds and pulls behind an HTTP proxy, for real: a docker-registry behind TLS signed by a
 * private CA, reachable only as `registry.test` — a name only the loopback proxy resolves — so
 * a request that did not go through the proxy's CONNECT tunnel cannot reach it at all.
 */

let backend: TestRegistry;
let front: PrivateCaRegistry;
let proxy: TestProxy;
let ref: string;
const temps: string[] = [];

async function temp(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

beforeAll(async () => {
  backend = await startRegistry();
  front = await startPrivateCaFront(backend.host, ["DNS:registry.test"]);
  proxy = await startProxy({ hosts: { "registry.test": "127.0.0.1" }, requireAuth: "squid:Pr0xy-Secret" });
  const layer = await randomLayer(2048);
  const gz = layer.gz;
  await pushOneLayerImage(new RegistryClient(backend.host), "base/app", "1", {
    digest: sha256(gz),
    size: gz.length,
    diffId: layer.diffId as `sha256:${string}`,
    open: () => Readable.from([gz]),
  });
  ref = `registry.test:${front.port}/base/app:1`;
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await front?.stop();
  await backend?.stop();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

/** A session behind the proxy, trusting the private CA through a registries file. */
async function behindProxy(env: NodeJS.ProcessEnv, trustCa = true): Promise<Session> {
  const home = await temp("sealant-home-");
  if (trustCa) await writeFile(join(home, "registries.yaml"), `configs:\n  "registry.test:${front.port}":\n    tls:\n      ca_file: ${front.caFile}\n`);
  return Session.open({ home, env: { HOME: home, ...env } });
}

const PROXY_ENV = (): NodeJS.ProcessEnv => ({ HTTPS_PROXY: proxy.url.replace("://", "://squid:Pr0xy-Secret@") });

describe("registry requests through an HTTP proxy", () => {
  it("pulls through a CONNECT tunnel, trusting the registry's private CA from the registries file", async () => {
    // GIVEN HTTPS_PROXY with credentials and the CA in $SEALANT_HOME/registries.yaml
    const session = await behindProxy(PROXY_ENV());
    const before = proxy.tunnels.length;
    // WHEN the image is pulled
    const pulled = await pullImage(session.store, ref, { clientFor: session.clientFor });
    session.close();
    // THEN it came through tunnels to registry.test (kept alive: a few, not one per request)
    expect(pulled.digest).toMatch(/^sha256:/);
    const tunnels = proxy.tunnels.slice(before);
    expect(tunnels.length).toBeGreaterThan(0);
    expect(tunnels.length).toBeLessThanOrEqual(8);
    expect(new Set(tunnels)).toEqual(new Set([`registry.test:${front.port}`]));
    expect(front.requests.some((r) => r.startsWith("GET /v2/base/app/manifests/1"))).toBe(true);
    expect(proxy.authorizations.at(-1)).toBe(`Basic ${Buffer.from("squid:Pr0xy-Secret").toString("base64")}`);
  });

  it("pushes through the tunnel too (the registry's upload locations are followed through it)", async () => {
    const session = await behindProxy(PROXY_ENV());
    await pullImage(session.store, ref, { clientFor: session.clientFor });
    const before = front.requests.length;
    const target = `registry.test:${front.port}/pushed/app:2`;
    const pushed = await pushImage(session.store, ref, { clientFor: session.clientFor, destination: target });
    session.close();
    expect(pushed.ref).toBe(`${target}@${pushed.digest}`);
    const seen = front.requests.slice(before);
    expect(seen.some((r) => r.startsWith("PUT /v2/pushed/app/manifests/2"))).toBe(true);
    // Read back directly from the registry behind the front.
    expect(await new RegistryClient(backend.host).headManifest("pushed/app", "2")).toMatchObject({ digest: pushed.digest });
  }, 60_000);

  it("builds FROM an image, and caches a container image, through the proxy", async () => {
    // GIVEN a Kubefile whose base image is only reachable through the proxy
    const session = await behindProxy(PROXY_ENV());
    const context = await temp("sealant-ctx-");
    await writeFile(join(context, "Kubefile"), `FROM ${ref}\nLABEL through=proxy\nCOPY imageList .\n`);
    // AND an image list naming the same registry's image, which the build caches in the cluster image
    await writeFile(join(context, "imageList"), `${ref}\n`);
    const before = proxy.tunnels.length;
    // WHEN it is built
    const result = await build(session, { context, tag: "proxied/app:1" });
    session.close();
    // THEN the base came through a tunnel
    expect(result.digest).toMatch(/^sha256:/);
    expect(result.metadata.containerImages.map((c) => c.image)).toEqual([ref]);
    expect(proxy.tunnels.length).toBeGreaterThan(before);
    expect(new Set(proxy.tunnels.slice(before))).toEqual(new Set([`registry.test:${front.port}`]));
  }, 60_000);

  it("takes a registry's own proxy from the file, and `proxy: direct` overrides HTTPS_PROXY", async () => {
    // GIVEN no proxy variable, and the registries file naming the proxy for registry.test
    const home = await temp("sealant-home-");
    const entry = (proxyLine: string) =>
      `configs:\n  "registry.test:${front.port}":\n    tls:\n      ca: |\n${front.caPem.replace(/^/gm, "        ")}\n    proxy: ${proxyLine}\n`;
    const file = join(home, "registries.yaml");
    await writeFile(file, entry(proxy.url.replace("://", "://squid:Pr0xy-Secret@")));
    const before = proxy.tunnels.length;
    const session = await Session.open({ home, env: { HOME: home } });
    await pullImage(session.store, ref, { clientFor: session.clientFor });
    session.close();
    expect(proxy.tunnels.length).toBeGreaterThan(before);
    // WHEN the file says direct while HTTPS_PROXY is set THEN no tunnel is opened (and the name cannot be resolved here)
    await writeFile(file, entry("direct"));
    const direct = await Session.open({ home, env: { HOME: home, ...PROXY_ENV() } });
    const after = proxy.tunnels.length;
    const err = await pullImage(direct.store, ref, { clientFor: direct.clientFor }).catch((e: Error) => e);
    direct.close();
    expect((err as Error).message).toMatch(/unknown host registry\.test|ENOTFOUND|EAI_AGAIN/);
    expect(proxy.tunnels.length).toBe(after);
  }, 60_000);

  it("goes direct for a NO_PROXY host (and so cannot resolve registry.test), opening no tunnel", async () => {
    const session = await behindProxy({ ...PROXY_ENV(), NO_PROXY: "example.com,.test" });
    const before = proxy.tunnels.length;
    const err = await pullImage(session.store, ref, { clientFor: session.clientFor }).catch((e: Error) => e);
    session.close();
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/registry\.test/);
    expect((err as Error).message).toMatch(/unknown host registry\.test|ENOTFOUND|EAI_AGAIN/);
    expect(proxy.tunnels.length).toBe(before);
  }, 60_000);

  it("without the CA the tunnelled TLS is refused; the proxy password appears in no error", async () => {
    const session = await behindProxy(PROXY_ENV(), false);
    const err = await pullImage(session.store, ref, { clientFor: session.clientFor }).catch((e: Error) => e);
    session.close();
    expect((err as Error).message).toMatch(/certificate/i);
    const wrong = await behindProxy({ HTTPS_PROXY: proxy.url.replace("://", "://squid:Wr0ng-Secret@") });
    const refused = await pullImage(wrong.store, ref, { clientFor: wrong.clientFor }).catch((e: Error) => e);
    wrong.close();
    expect((refused as Error).message).toMatch(/: through proxy http:\/\/127\.0\.0\.1:\d+: refused the tunnel to registry\.test:\d+: HTTP 407/);
    expect(`${(refused as Error).message}${(refused as Error).stack}`).not.toContain("Wr0ng-Secret");
  }, 60_000);

  it("a proxy that is down is named as the failure, for https and plain http alike", async () => {
    const session = await behindProxy({ HTTPS_PROXY: "http://127.0.0.1:9", HTTP_PROXY: "http://127.0.0.1:9" });
    const viaTunnel = await pullImage(session.store, ref, { clientFor: session.clientFor }).catch((e: Error) => e);
    session.close();
    const home = await temp("sealant-home-");
    const plain = await Session.open({
      home,
      env: { HTTP_PROXY: "http://127.0.0.1:9" },
      registries: { mirrors: {}, hosts: { "plain.test:5000": { plainHttp: true } } },
    });
    const viaHttp = await pullImage(plain.store, "plain.test:5000/a/b:1", { clientFor: plain.clientFor }).catch((e: Error) => e);
    plain.close();
    expect((viaTunnel as Error).message).toMatch(
      /GET registry\.test:\d+\/v2\/base\/app\/manifests\/1: through proxy http:\/\/127\.0\.0\.1:9: connect ECONNREFUSED/,
    );
    expect((viaHttp as Error).message).toMatch(/through proxy http:\/\/127\.0\.0\.1:9: connect ECONNREFUSED/);
  }, 60_000);
});

describe("ADD/APP downloads through the proxy", () => {
  it("sends a plain-http download to HTTP_PROXY in absolute form; NO_PROXY and loopback go direct", async () => {
    // GIVEN a file server only the proxy can name (files.test -> 127.0.0.1)
    const files = http.createServer((req, res) => res.end(`served ${req.url}`));
    await new Promise<void>((r) => files.listen(0, "127.0.0.1", r));
    const port = (files.address() as AddressInfo).port;
    const fileProxy = await startProxy({ hosts: { "files.test": "127.0.0.1" } });
    const scratch = await temp("sealant-scratch-");
    const where = { file: "Kubefile", line: 2, instruction: "ADD" };
    try {
      // WHEN it is downloaded with HTTP_PROXY set
      const got = await downloadSource(`http://files.test:${port}/a.txt`, scratch, where, { proxy: proxyFromEnv({ http_proxy: fileProxy.url }) });
      // THEN the proxy forwarded it
      expect(fileProxy.forwarded).toEqual([`GET http://files.test:${port}/a.txt`]);
      expect(await import("node:fs/promises").then((f) => f.readFile(got, "utf8"))).toBe("served /a.txt");
      // AND a loopback URL never goes through the proxy
      await downloadSource(`http://127.0.0.1:${port}/b.txt`, scratch, where, { proxy: proxyFromEnv({ http_proxy: fileProxy.url }) });
      expect(fileProxy.forwarded).toHaveLength(1);
      // AND a NO_PROXY host goes direct (and cannot be resolved here)
      const err = await downloadSource(`http://files.test:${port}/c.txt`, scratch, where, {
        proxy: proxyFromEnv({ http_proxy: fileProxy.url, no_proxy: "files.test" }),
      }).catch((e: Error) => e);
      expect((err as Error).message).toMatch(/ENOTFOUND|EAI_AGAIN/);
      expect(fileProxy.forwarded).toHaveLength(1);
    } finally {
      await fileProxy.stop();
      await new Promise<void>((r) => files.close(() => r()));
    }
  });
});

describe("which requests the proxy variables cover", () => {
  const url = (u: string) => new URL(u);
  it("reads upper case first, then lower case; http and https separately; never loopback", () => {
    const rule = proxyFromEnv({ HTTPS_PROXY: "http://up:3128", https_proxy: "http://low:3128", http_proxy: "plain:8080" });
    expect(rule.proxyFor(url("https://quay.io/v2/"))?.host).toBe("up:3128");
    expect(rule.proxyFor(url("http://quay.io/v2/"))?.host).toBe("plain:8080");
    for (const local of ["https://127.0.0.1:5000/", "http://localhost:5000/", "https://[::1]:5000/"]) expect(rule.proxyFor(url(local))).toBeUndefined();
  });

  it("matches NO_PROXY as Go does: domains with subdomains, ports, IPs, CIDR ranges, *", () => {
    const bypass = noProxyMatcher(" corp.example , .internal,registry.local:5000, 10.0.0.0/8, 192.168.1.7 ");
    expect(bypass(url("https://corp.example/"))).toBe(true);
    expect(bypass(url("https://harbor.corp.example/"))).toBe(true);
    expect(bypass(url("https://notcorp.example/"))).toBe(false);
    expect(bypass(url("https://a.internal/"))).toBe(true);
    expect(bypass(url("https://registry.local:5000/"))).toBe(true);
    expect(bypass(url("https://registry.local:5001/"))).toBe(false);
    expect(bypass(url("https://10.2.3.4/"))).toBe(true);
    expect(bypass(url("https://11.2.3.4/"))).toBe(false);
    expect(bypass(url("http://192.168.1.7:80/"))).toBe(true);
    expect(noProxyMatcher("*")(url("https://docker.io/"))).toBe(true);
  });

  it("refuses a proxy variable that is not an http:// URL, naming the variable and not its credentials", () => {
    expect(() => proxyFromEnv({ HTTPS_PROXY: "socks5://u:Hidden-Pw@proxy:1080" })).toThrow(/^HTTPS_PROXY: the proxy must be reached over http:\/\//);
    try {
      proxyFromEnv({ HTTPS_PROXY: "socks5://u:Hidden-Pw@proxy:1080" });
    } catch (err) {
      expect((err as Error).message).not.toContain("Hidden-Pw");
    }
  });
});
