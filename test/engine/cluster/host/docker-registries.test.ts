/**
 * The user's registries (`registry.registries`) on a host whose runtime is Docker, on a real
 * sandbox host: what dockerd is given (daemon.json merged with the user's own entries, CAs in
 * its certs.d, the proxy drop-in for docker.service), what it cannot take said, and a real dockerd
 * given that configuration pulling a docker.io image by its own name through a user mirror
 * behind TLS with a private CA (docker.io itself resolves to a loopback address where nothing
 * listens). Taken out again, the user's daemon.json is as it was.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configureDockerRegistries, dockerRegistriesPlan } from "../../../../src/engine/cluster/host/docker-registries";
import { configureDockerUserRegistries, DOCKER_PROXY_DROP_IN, removeUserRegistries } from "../../../../src/engine/cluster/host/user-registries";
import { parseRegistryConfig, type RegistryConfig } from "../../../../src/engine/image/registry-config";
import { DEFAULT_REAL_DIRS, sandboxDown, sandboxUp, type Sandbox } from "../../../../src/engine/sandbox";
import { SshConnection } from "../../../../src/engine/ssh";
import { startRegistry, type TestRegistry } from "../../../support/registry";
import { skopeoCopy, writeOciLayout, type OciLayoutImage } from "../../../support/tools";

const DATA_ROOT = "/var/lib/sealant/docker-user-reg";
const DOCKER = "docker -H unix:///run/docker.sock";
const USERS_OWN = { "log-driver": "json-file", "registry-mirrors": ["https://own-mirror.example"], "insecure-registries": ["old.example:5000"] };

let parent: string;
let sb: Sandbox;
let conn: SshConnection;
let mirror: TestRegistry;
let image: OciLayoutImage;
const sh = async (cmd: string, stdin?: string) => (await conn.run(cmd, stdin === undefined ? {} : { stdin })).stdout.trim();
const model = (doc: unknown): Promise<RegistryConfig> => parseRegistryConfig(doc, "registry.registries", parent);
const doc = () => ({
  mirrors: { "docker.io": { endpoint: [`https://${mirror.host}`] }, "quay.io": { endpoint: [`https://${mirror.host}`] } },
  configs: {
    [mirror.host]: { tls: { ca: mirror.tlsCert! } },
    "10.0.0.9:5000": { plain_http: true },
    "r.example": { auth: { username: "robot", password: "Docker-pw-3" } },
    "*": { proxy: "http://proxy.test:3128" },
  },
});

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), "sealant-docker-registries-"));
  // A user's mirror of docker.io behind TLS with a private CA (no login: dockerd sends none to a mirror).
  mirror = await startRegistry({ tls: true, privateCa: true });
  image = await writeOciLayout(join(parent, "layout"), { tag: "1" });
  await skopeoCopy(`oci:${join(parent, "layout")}:1`, `docker://${mirror.host}/library/sealdocker:1`);
  // dockerd's storage must be a real directory (an overlay cannot hold its layers). 127.0.10.233: a fixed
  // number, as the suite's other host tests have (a free one picked at start could be one a test starting later asks for).
  sb = await sandboxUp(1, { name: "test-docker-registries", dir: join(parent, "sb"), firstIndex: 233, realDirs: [...DEFAULT_REAL_DIRS, "/var/lib/docker"] });
  const ip = sb.hosts[0]!.ip;
  conn = await SshConnection.connect({ host: ip, privateKeyPath: sb.ssh.pk, hostKey: { knownHosts: sb.ssh.knownHosts } });
  await sh("mkdir -p /etc/docker && cat > /etc/docker/daemon.json", `${JSON.stringify(USERS_OWN, null, 2)}\n`);
}, 120_000);

afterAll(async () => {
  await conn?.run("kill $(cat /run/dockerd.pid) 2>/dev/null; true").catch(() => undefined);
  await conn?.close().catch(() => undefined);
  if (sb) await sandboxDown(sb).catch(() => undefined);
  await mirror?.stop();
  await rm(parent, { recursive: true, force: true });
});

describe("the user's registries on a Docker host", () => {
  it("GIVEN mirrors for docker.io and quay.io, a CA, plain HTTP, a login WHEN planned THEN docker.io's mirror, the CA and the insecure registry are dockerd's, and quay.io's mirror and the login are said not to be", async () => {
    const plan = dockerRegistriesPlan(await model(doc()));
    expect(plan.mirrors).toEqual([`https://${mirror.host}`]);
    expect(plan.insecure).toEqual(["10.0.0.9:5000"]);
    expect(Object.keys(plan.cas)).toEqual([mirror.host]);
    expect(plan.warnings).toEqual([
      "dockerd mirrors docker.io only: registry.registries mirrors of quay.io are not applied on Docker hosts, which pull those images from the registries themselves",
      "dockerd takes no registry login from its configuration (and sends none to a mirror): the logins for r.example in registry.registries are not given to Docker hosts; use image pull secrets",
    ]);
    expect(plan.warnings.join("\n")).not.toContain("Docker-pw-3");
  });

  it("GIVEN the user's own daemon.json WHEN configured THEN sealant's entries follow the user's, the CA is in certs.d, docker.service gets the proxy", async () => {
    const warnings = await configureDockerUserRegistries(conn, DATA_ROOT, { config: await model(doc()), noProxy: ["sea.hub"] });
    expect(warnings).toHaveLength(2);
    expect(JSON.parse(await sh("cat /etc/docker/daemon.json"))).toEqual({
      ...USERS_OWN,
      "registry-mirrors": ["https://own-mirror.example", `https://${mirror.host}`],
      "insecure-registries": ["old.example:5000", "10.0.0.9:5000"],
    });
    expect(await sh(`cat '/etc/docker/certs.d/${mirror.host}/sealant-ca.crt'`)).toBe(mirror.tlsCert!.trim());
    expect(await sh(`cat ${DOCKER_PROXY_DROP_IN}`)).toContain('Environment="HTTPS_PROXY=http://proxy.test:3128"');
  });

  it("GIVEN that configuration WHEN a real dockerd pulls docker.io/library/sealdocker:1 THEN the user's mirror serves it over TLS verified with the private CA", async () => {
    // docker.io itself is a loopback address where nothing listens: only the mirror can serve.
    await sh(`printf '%s\\n' "127.0.0.9 registry-1.docker.io index.docker.io auth.docker.io" >> /etc/hosts`);
    await sh(
      "setsid -f dockerd --host unix:///run/docker.sock --pidfile /run/dockerd.pid --data-root /var/lib/docker --exec-root /run/docker --bridge none --iptables=false --ip6tables=false --ip-masq=false --storage-driver vfs > /run/dockerd.log 2>&1 < /dev/null",
    );
    try {
      await conn.run(
        `i=0; until ${DOCKER} version > /dev/null 2>&1; do i=$((i+1)); [ $i -lt 300 ] || { tail -20 /run/dockerd.log >&2; exit 1; }; sleep 0.1; done`,
        { timeoutMs: 60_000 },
      );
      const pulled = await conn.exec(`${DOCKER} pull docker.io/library/sealdocker:1 2>&1`, { timeoutMs: 120_000 });
      expect(pulled.code, pulled.stdout).toBe(0);
      expect(pulled.stdout).toContain(`Digest: ${image.manifest.digest}`);
      expect(await mirror.logTail(200)).toMatch(/"HEAD \/v2\/library\/sealdocker\/manifests\/1 HTTP\/1\.1" 200 \d+ "" "docker\//);
    } finally {
      await conn.run("kill $(cat /run/dockerd.pid) 2>/dev/null; true");
    }
  }, 180_000);

  it("GIVEN entries dropped, then everything removed WHEN configured THEN exactly sealant's entries go and the user's daemon.json is as it was", async () => {
    await configureDockerRegistries(conn, DATA_ROOT, await model({ configs: { "10.0.0.9:5000": { plain_http: true } } }));
    expect(JSON.parse(await sh("cat /etc/docker/daemon.json"))).toEqual({ ...USERS_OWN, "insecure-registries": ["old.example:5000", "10.0.0.9:5000"] });
    expect((await conn.exec(`test -e '/etc/docker/certs.d/${mirror.host}'`)).code).toBe(1);
    await removeUserRegistries(conn, DATA_ROOT);
    expect(JSON.parse(await sh("cat /etc/docker/daemon.json"))).toEqual(USERS_OWN);
    expect((await conn.exec(`test -e ${DOCKER_PROXY_DROP_IN}`)).code).toBe(1);
    expect(await sh(`ls -A ${DATA_ROOT}/registry 2>/dev/null || true`)).toBe("");
  });
});
