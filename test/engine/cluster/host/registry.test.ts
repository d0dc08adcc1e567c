import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheImages, type CachedImage } from "../../../../src/engine/build/image-cache";
import {
  configureRegistryClients,
  prepareRegistryTls,
  registryDomains,
  removeRegistry,
  startRegistry,
  type RegistrySetup,
  type RegistryTls,
} from "../../../../src/engine/cluster/host/registry";
import { sandboxDown, sandboxUp, type Sandbox } from "../../../../src/engine/sandbox";
import { Session } from "../../../../src/engine/session";
import { SshConnection, type Connection } from "../../../../src/engine/ssh";
import { startRegistry as startTestRegistry } from "../../../support/registry";
import { skopeoCopy, writeOciLayout } from "../../../support/tools";

// This file's hosts: 127.0.10.141-143 (other test files use other ranges). A serves the
// registry, B runs a real containerd, C is a listed server with no registry (then a host
// whose PATH has none).
const FIRST = 141;
const [A, B, C] = ["127.0.10.141", "127.0.10.142", "127.0.10.143"] as const;
const ROOTFS = "/srv/sealant-test/rootfs";
const CERTS = "/etc/containerd/certs.d";
const SOCK = "/run/ctd/containerd.sock";

let parent: string;
let sb: Sandbox;
let upstreamPort: string;
let cached: CachedImage[];
const raw = new Map<string, SshConnection>();
/** Every command line sealant sent, by host: secrets must never be in them. */
const sent: string[] = [];

/** The Connection sealant gets: the real one, recording each command line. */
function conn(ip: string): Connection {
  const c = raw.get(ip)!;
  return {
    host: c.host,
    exec: (cmd, o) => (sent.push(cmd), c.exec(cmd, o)),
    run: (cmd, o) => (sent.push(cmd), c.run(cmd, o)),
    upload: (t, s, o) => c.upload(t, s, o),
    close: () => c.close(),
  };
}
const sh = async (ip: string, cmd: string, stdin?: string) => (await raw.get(ip)!.run(cmd, stdin === undefined ? {} : { stdin })).stdout.trim();
const ctr = (args: string, secrets: string[] = []) => raw.get(B)!.exec(`ctr -a ${SOCK} ${args}`, { secrets });

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), "sealant-registry-phase-"));
  // GIVEN an upstream stand-in holding three small images (one under a host:port registry) ...
  const upstream = await startTestRegistry();
  upstreamPort = upstream.host.split(":")[1]!;
  try {
    for (const [i, repo] of ["library/sealtest:1.0", "library/sealsecure:1.0", "team/app:1"].entries()) {
      const layout = await writeOciLayout(join(parent, `oci${i}`), { tag: "t" });
      await skopeoCopy(`oci:${layout.dir}:t`, `docker://${upstream.host}/${repo}`);
    }
    // ... cached into an image's registry/ tree the way builds do (docker.io through a mirror) ...
    const session = await Session.open({ home: join(parent, "home"), mirrors: { "docker.io": upstream.host }, env: {} });
    try {
      cached = await cacheImages(["sealtest:1.0", "sealsecure:1.0", `${upstream.host}/team/app:1`], join(parent, "rootfs/registry"), {
        sourceFor: session.sourceFor,
        platform: { os: "linux", architecture: "amd64" },
      });
    } finally {
      session.close();
    }
  } finally {
    // ... and then gone: whatever the hosts pull later can only come from the cluster registry.
    await upstream.stop();
  }
  sb = await sandboxUp(3, { name: "test-registry-phase", dir: join(parent, "sb"), firstIndex: FIRST });
  for (const h of sb.hosts) raw.set(h.ip, await SshConnection.connect({ host: h.ip, privateKeyPath: sb.ssh.pk, hostKey: { knownHosts: sb.ssh.knownHosts } }));
  await raw.get(A)!.upload(`${ROOTFS}/registry`, [{ local: join(parent, "rootfs/registry"), path: "." }]);

  // A real containerd on B as a plain process: its root on the host's real /var/lib/containerd (overlay snapshots need it), no CRI.
  const config = `version = 2\nroot = "/var/lib/containerd/root"\nstate = "/run/ctd"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${SOCK}"\n`;
  await sh(B, "mkdir -p /run/ctd /etc/ctd && cat > /etc/ctd/config.toml", config);
  await sh(B, "setsid -f containerd --config /etc/ctd/config.toml > /run/ctd/log 2>&1 < /dev/null");
  await sh(B, `for i in $(seq 1 100); do ctr -a ${SOCK} version > /dev/null 2>&1 && exit 0; sleep 0.1; done; cat /run/ctd/log >&2; exit 1`);
});

afterAll(async () => {
  for (const c of raw.values()) await c.close().catch(() => undefined);
  if (sb) await sandboxDown(sb).catch(() => undefined);
  await rm(parent, { recursive: true, force: true });
});

describe("registryDomains", () => {
  it("GIVEN image references WHEN asked THEN it gives their source registries, normalised, deduplicated and sorted", () => {
    expect(registryDomains(["nginx:1", "quay.io/a/b:1", "docker.io/library/redis", "127.0.0.1:5001/x:y", "index.docker.io/x/y"])).toEqual([
      "127.0.0.1:5001",
      "docker.io",
      "quay.io",
    ]);
  });
});

describe("plain HTTP registry", () => {
  const plain: RegistrySetup = { domain: "sea.hub", port: 5000, servers: [C, A], domains: [], tls: false, dataRoot: "/var/lib/sealant/reg-plain" };
  const registryLog = `${plain.dataRoot}/run/registry.log`;
  const pidOf = () => sh(A, `cat ${plain.dataRoot}/run/registry.pid`);
  // "[s]erve": the pattern must not match the shell running pgrep.
  const processes = () => sh(A, `pgrep -fc '[s]erve ${plain.dataRoot}/registry/config.yml' || true`);

  beforeAll(() => {
    plain.domains = registryDomains(cached.map((c) => c.image));
  });

  it("GIVEN the image's registry/ on A WHEN started and B configured THEN containerd on B pulls docker.io and host:port images under their own names from A", async () => {
    expect(plain.domains).toEqual([`127.0.0.1:${upstreamPort}`, "docker.io"]);
    await startRegistry(conn(A), A, ROOTFS, plain, undefined);
    await configureRegistryClients(conn(B), B, plain, undefined);

    // The first listed server (C) has no registry: containerd falls back to A.
    const pulled = await ctr(`images pull --hosts-dir ${CERTS} docker.io/library/sealtest:1.0`);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stderr).toMatch(/trying next host.*127\.0\.10\.143:5000: connect: connection refused/);
    const other = await ctr(`images pull --hosts-dir ${CERTS} 127.0.0.1:${upstreamPort}/team/app:1`);
    expect(other.code, other.stderr).toBe(0);

    const list = (await ctr("images ls")).stdout;
    expect(list).toMatch(new RegExp(`^docker\\.io/library/sealtest:1\\.0 .*${cached[0]!.digest}`, "m"));
    expect(list).toMatch(new RegExp(`^127\\.0\\.0\\.1:${upstreamPort}/team/app:1 .*${cached[2]!.digest}`, "m"));
    // The content came from A's registry, under the source registry's path.
    const log = await sh(A, `cat ${registryLog}`);
    expect(log).toContain('"HEAD /v2/docker.io/library/sealtest/manifests/1.0?ns=docker.io HTTP/1.1" 200');
    expect(log).toContain(`"HEAD /v2/127.0.0.1_${upstreamPort}/team/app/manifests/1?ns=127.0.0.1%3A${upstreamPort} HTTP/1.1" 200`);
    expect(log).toMatch(/GET \/v2\/docker\.io\/library\/sealtest\/blobs\/sha256:/);
    // certs.d dirs are named host[:port] as written; /etc/hosts maps the domain to the first server (B serves none).
    expect(await sh(B, `ls ${CERTS}`)).toBe([`127.0.0.1:${upstreamPort}`, "docker.io", "sea.hub:5000"].join("\n"));
    expect(await sh(B, `cat ${CERTS}/docker.io/hosts.toml`)).toContain(`[host."http://${C}:5000/v2/docker.io"]`);
    expect(await sh(B, "grep sea.hub /etc/hosts")).toBe(`${C} sea.hub`);
  });

  it("GIVEN a running registry WHEN started and configured again THEN the same single process serves on, and no file changes", async () => {
    const pid = await pidOf();
    const hostsBefore = await sh(B, "cat /etc/hosts");
    const tomlBefore = await sh(B, `stat -c '%n %Y %i' ${CERTS}/*/hosts.toml`);
    await startRegistry(conn(A), A, ROOTFS, plain, undefined);
    await configureRegistryClients(conn(B), B, plain, undefined);
    await configureRegistryClients(conn(A), A, plain, undefined);
    expect(await pidOf()).toBe(pid);
    expect(await processes()).toBe("1");
    expect(await sh(B, "cat /etc/hosts")).toBe(hostsBefore);
    expect(await sh(B, `stat -c '%n %Y %i' ${CERTS}/*/hosts.toml`)).toBe(tomlBefore);
    expect((await sh(B, "cat /etc/hosts")).match(/sealant registry/g)).toHaveLength(2);
    // A serves the registry itself, so its name maps there.
    expect(await sh(A, "grep sea.hub /etc/hosts")).toBe(`${A} sea.hub`);
  });

  it("GIVEN a running registry WHEN its port changes THEN it is restarted on the new one, and the old process is gone", async () => {
    const old = await pidOf();
    await startRegistry(conn(A), A, ROOTFS, { ...plain, port: 5001 }, undefined);
    expect(await pidOf()).not.toBe(old);
    expect(await processes()).toBe("1");
    expect(await sh(A, `curl -s -o /dev/null -w '%{http_code}' http://${A}:5001/v2/`)).toBe("200");
    expect(await sh(A, `curl -s -o /dev/null -w '%{http_code}' http://${A}:5000/v2/ || true`)).toBe("000");
  });

  it("GIVEN a configured cluster WHEN removed THEN the registry stops and its hosts entry, certs.d files and state are gone, other lines kept", async () => {
    await sh(B, `mkdir -p ${CERTS}/quay.io && echo mine > ${CERTS}/quay.io/hosts.toml`);
    await removeRegistry(conn(A), plain);
    await removeRegistry(conn(B), plain);
    expect(await processes()).toBe("0");
    expect(await sh(A, `ls ${plain.dataRoot}`)).toBe("run");
    expect(await sh(A, `ls ${plain.dataRoot}/run`)).toBe("");
    for (const ip of [A, B]) expect(await sh(ip, "cat /etc/hosts")).not.toMatch(/sealant|sea\.hub/);
    expect(await sh(B, "grep -c localhost /etc/hosts")).not.toBe("0");
    // Only what this cluster wrote goes.
    expect(await sh(B, `ls ${CERTS}`)).toBe("quay.io");
    await sh(B, `rm -rf ${CERTS}/quay.io`);
    await removeRegistry(conn(B), plain); // nothing left: still fine
  });
});

describe("HTTPS registry with htpasswd auth", () => {
  const password = "s3cret-Pa55 'with' $pecial;chars";
  const secure: RegistrySetup = {
    domain: "sea.hub",
    port: 5443,
    servers: [A],
    domains: ["docker.io"],
    username: "sealant",
    password,
    tls: true,
    subjectAltNames: ["registry.example.test"],
    dataRoot: "/var/lib/sealant/reg-tls",
  };
  let tls: RegistryTls;

  it("GIVEN TLS and a password WHEN set up THEN containerd on B pulls over verified HTTPS with the credentials only, and no secret was in any command line", async () => {
    sent.length = 0;
    tls = await prepareRegistryTls(conn(A), secure);
    await startRegistry(conn(A), A, ROOTFS, secure, tls);
    await configureRegistryClients(conn(B), B, secure, tls);

    const anonymous = await ctr(`images pull --hosts-dir ${CERTS} docker.io/library/sealsecure:1.0`);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toMatch(/401|unauthorized/i);
    const pulled = await ctr(`images pull --hosts-dir ${CERTS} --user sealant:${shq(password)} docker.io/library/sealsecure:1.0`, [password]);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect((await ctr("images ls")).stdout).toMatch(new RegExp(`^docker\\.io/library/sealsecure:1\\.0 .*${cached[1]!.digest}`, "m"));

    const toml = await sh(B, `cat ${CERTS}/docker.io/hosts.toml`);
    expect(toml).toContain(`[host."https://${A}:5443/v2/docker.io"]`);
    expect(toml).toContain(`ca = "${CERTS}/docker.io/sealant-registry-ca.crt"`);
    expect(toml).not.toContain(password);
    const sans = await sh(A, `openssl x509 -noout -ext subjectAltName -in ${secure.dataRoot}/registry/certs/registry.crt`);
    expect(sans).toMatch(/DNS:sea\.hub, IP Address:127\.0\.10\.141, DNS:registry\.example\.test/);
    expect(await sh(A, `stat -c %a ${secure.dataRoot}/registry/htpasswd ${secure.dataRoot}/registry/certs/registry.key`)).toBe("600\n600");

    const keyBody = tls.key.split("\n").find((l) => l.length > 40)!;
    for (const cmd of sent) {
      expect(cmd).not.toContain(password);
      expect(cmd).not.toContain(keyBody);
    }
    expect(await sh(A, `cat ${secure.dataRoot}/run/registry.log`)).not.toContain(password);
  });

  it("GIVEN the certificate exists WHEN prepared and started again THEN the same CA and cert are reused and the registry is not restarted", async () => {
    const pid = await sh(A, `cat ${secure.dataRoot}/run/registry.pid`);
    const again = await prepareRegistryTls(conn(A), secure);
    expect(again).toEqual(tls);
    await startRegistry(conn(A), A, ROOTFS, secure, again);
    expect(await sh(A, `cat ${secure.dataRoot}/run/registry.pid`)).toBe(pid);
    // A new server joins: same CA, a new cert that covers it.
    const grown = await prepareRegistryTls(conn(A), { ...secure, servers: [A, C] });
    expect(grown.caCert).toBe(tls.caCert);
    expect(grown.cert).not.toBe(tls.cert);
    await removeRegistry(conn(A), secure);
    await removeRegistry(conn(B), secure);
  });
});

describe("registry binary", () => {
  const setup: RegistrySetup = { domain: "sea.hub", port: 5000, servers: [C], domains: ["docker.io"], tls: false, dataRoot: "/var/lib/sealant/reg-bin" };

  it("GIVEN a host without a registry binary WHEN the image has none THEN start fails clearly; WHEN the image carries bin/registry THEN that one serves", async () => {
    await sh(C, "mv /usr/bin/docker-registry /usr/bin/docker-registry.off"); // C's own overlay: the machine keeps it
    await raw.get(C)!.upload(`${ROOTFS}/registry`, [{ local: join(parent, "rootfs/registry"), path: "." }]);
    await expect(startRegistry(conn(C), C, ROOTFS, setup, undefined)).rejects.toThrow(
      /no registry binary: the image has no bin\/registry or bin\/docker-registry/,
    );
    await expect(startRegistry(conn(C), C, "/srv/nothing", setup, undefined)).rejects.toThrow(/\/srv\/nothing\/registry does not exist/);

    const bin = join(parent, "bin");
    await mkdir(bin, { recursive: true });
    await copyFile("/usr/bin/docker-registry", join(bin, "registry"));
    await raw.get(C)!.upload(`${ROOTFS}/bin`, [{ local: bin, path: "." }]);
    await startRegistry(conn(C), C, ROOTFS, setup, undefined);
    expect(await sh(C, `head -n 1 ${setup.dataRoot}/registry/config.yml`)).toContain(`${ROOTFS}/bin/registry`);
    expect(await sh(C, `curl -s http://${C}:5000/v2/docker.io/library/sealtest/tags/list`)).toBe('{"name":"docker.io/library/sealtest","tags":["1.0"]}');
    await removeRegistry(conn(C), setup);
  });
});

/** POSIX sh single-quoting, for the test's own ctr command. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
