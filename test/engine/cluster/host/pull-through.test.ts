import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheImages, type CachedImage } from "../../../../src/engine/build/image-cache";
import {
  checkUpstreams,
  configurePullThroughClients,
  removePullThrough,
  startPullThroughCaches,
  type PullThroughUpstream,
} from "../../../../src/engine/cluster/host/pull-through";
import {
  configureRegistryClients,
  prepareRegistryTls,
  registryDomains,
  startRegistry,
  type RegistrySetup,
  type RegistryTls,
} from "../../../../src/engine/cluster/host/registry";
import { sandboxDown, sandboxUp, type Sandbox } from "../../../../src/engine/sandbox";
import { Session } from "../../../../src/engine/session";
import { SshConnection, type Connection } from "../../../../src/engine/ssh";
import { startRegistry as startTestRegistry, type TestRegistry } from "../../../support/registry";
import { skopeoCopy, writeOciLayout } from "../../../support/tools";

// This file's hosts: 127.0.10.69-71. S serves the cluster registry and the caches; H1 and H2
// run a real containerd each (no CRI). The upstreams are real docker-registry instances on
// loopback standing in for docker.io and for a private quay.io with a login.
const FIRST = 69;
const [S, H1, H2] = ["127.0.10.69", "127.0.10.70", "127.0.10.71"] as const;
const ROOTFS = "/srv/sealant-test/rootfs";
const CERTS = "/etc/containerd/certs.d";
const SOCK = "/run/ctd/containerd.sock";
const DATA = "/var/lib/sealant/pt";
const LOGIN = { username: "puller", password: `pt-${Math.random().toString(36).slice(2)}-secret` };

let parent: string;
let sb: Sandbox;
let dockerHub: TestRegistry;
let privateQuay: TestRegistry;
let inImage: CachedImage[];
let setup: RegistrySetup;
let tls: RegistryTls;
let upstreams: PullThroughUpstream[];
const digests = new Map<string, string>();
const raw = new Map<string, SshConnection>();
/** Every command line sealant sent: the upstream's password must never be in one. */
const sent: string[] = [];

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
const ctr = (ip: string, args: string) => raw.get(ip)!.exec(`ctr -a ${SOCK} ${args}`);
const pull = (ip: string, ref: string) => ctr(ip, `images pull --hosts-dir ${CERTS} ${ref}`);

async function seed(reg: TestRegistry, repo: string, i: number, creds?: { username: string; password: string }): Promise<void> {
  const layout = await writeOciLayout(join(parent, `oci-${i}`), { tag: "t" });
  await skopeoCopy(`oci:${layout.dir}:t`, `docker://${reg.host}/${repo}`, creds ? { destCreds: creds } : {});
  digests.set(repo, layout.manifest.digest);
}

async function startContainerd(ip: string): Promise<void> {
  const config = `version = 2\nroot = "/var/lib/containerd/root"\nstate = "/run/ctd"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${SOCK}"\n`;
  await sh(ip, "mkdir -p /run/ctd /etc/ctd && cat > /etc/ctd/config.toml", config);
  await sh(ip, "setsid -f containerd --config /etc/ctd/config.toml > /run/ctd/log 2>&1 < /dev/null");
  await sh(ip, `for i in $(seq 1 100); do ctr -a ${SOCK} version > /dev/null 2>&1 && exit 0; sleep 0.1; done; cat /run/ctd/log >&2; exit 1`);
}

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), "sealant-pull-through-"));
  // GIVEN a cluster image whose registry/ tree holds docker.io/library/in-image:1 (cached as builds do) ...
  const build = await startTestRegistry();
  try {
    await skopeoCopy(`oci:${(await writeOciLayout(join(parent, "oci-image"), { tag: "t" })).dir}:t`, `docker://${build.host}/library/in-image:1`);
    const session = await Session.open({ home: join(parent, "home"), mirrors: { "docker.io": build.host }, env: {} });
    try {
      inImage = await cacheImages(["in-image:1"], join(parent, "rootfs/registry"), {
        sourceFor: session.sourceFor,
        platform: { os: "linux", architecture: "amd64" },
      });
    } finally {
      session.close();
    }
  } finally {
    await build.stop();
  }
  // ... and two upstreams that hold images the cluster image does not: an open one for docker.io, a private one for quay.io with token auth as quay.io, Docker Hub and Harbor have (distribution's proxy logs in only to a Bearer realm).
  dockerHub = await startTestRegistry();
  privateQuay = await startTestRegistry({ auth: "token", users: [LOGIN] });
  await seed(dockerHub, "library/outside:1", 1);
  await seed(privateQuay, "team/private:2", 2, LOGIN);

  sb = await sandboxUp(3, { name: "test-pull-through", dir: join(parent, "sb"), firstIndex: FIRST });
  for (const h of sb.hosts) raw.set(h.ip, await SshConnection.connect({ host: h.ip, privateKeyPath: sb.ssh.pk, hostKey: { knownHosts: sb.ssh.knownHosts } }));
  await raw.get(S)!.upload(`${ROOTFS}/registry`, [{ local: join(parent, "rootfs/registry"), path: "." }]);
  await startContainerd(H1);
  await startContainerd(H2);

  setup = { domain: "sea.hub", port: 5000, servers: [S], domains: registryDomains(inImage.map((c) => c.image)), tls: true, dataRoot: DATA };
  tls = await prepareRegistryTls(conn(S), setup);
  await startRegistry(conn(S), S, ROOTFS, setup, tls);
  upstreams = [
    { domain: "docker.io", url: dockerHub.url, port: 5010, fallback: "none" },
    { domain: "quay.io", url: privateQuay.url, port: 5011, fallback: "none", ...LOGIN },
  ];
}, 120_000);

afterAll(async () => {
  for (const c of raw.values()) await c.close().catch(() => undefined);
  if (sb) await sandboxDown(sb).catch(() => undefined);
  await dockerHub?.stop().catch(() => undefined);
  await privateQuay?.stop().catch(() => undefined);
  await rm(parent, { recursive: true, force: true });
});

describe("pull-through caches beside the cluster registry", () => {
  it("GIVEN two upstreams WHEN the caches start and hosts are configured THEN a real containerd pulls images the cluster image lacks by their upstream names, and the cluster image's own from its tree", async () => {
    expect(await startPullThroughCaches(conn(S), S, setup, tls, upstreams)).toEqual([]);
    for (const h of [H1, H2]) {
      await configureRegistryClients(conn(h), h, setup, tls);
      await configurePullThroughClients(conn(h), h, setup, tls, upstreams);
    }

    for (const [ref, repo] of [
      ["docker.io/library/outside:1", "library/outside:1"],
      ["quay.io/team/private:2", "team/private:2"],
    ] as const) {
      const r = await pull(H1, ref);
      expect(r.code, r.stderr).toBe(0);
      expect((await ctr(H1, "images ls")).stdout).toMatch(new RegExp(`^${ref.replace(/[.:/]/g, "\\$&")} .*${digests.get(repo)}`, "m"));
    }
    const own = await pull(H1, "docker.io/library/in-image:1");
    expect(own.code, own.stderr).toBe(0);
    // The tree is tried first: the cluster registry answered in-image, and outside only after its 404 went on to the cache.
    const treeLog = await sh(S, `cat ${DATA}/run/registry.log`);
    expect(treeLog).toMatch(/"HEAD \/v2\/docker\.io\/library\/in-image\/manifests\/1\?ns=docker\.io HTTP\/[\d.]+" 200/);
    expect(treeLog).toMatch(/"HEAD \/v2\/docker\.io\/library\/outside\/manifests\/1\?ns=docker\.io HTTP\/[\d.]+" 404/);
    expect(await sh(S, `cat ${DATA}/run/cache-docker.io.log`)).not.toMatch(/in-image/);
  }, 120_000);

  it("GIVEN the private upstream's login WHEN the caches run THEN it is only in a 0600 config file: never in a command line, a process's argv or a log", async () => {
    expect(await sh(S, `stat -c %a ${DATA}/cache/quay.io/config.yml`)).toBe("600");
    expect(await sh(S, `grep -c ${LOGIN.username} ${DATA}/cache/quay.io/config.yml`)).toBe("1");
    expect(sent.some((c) => c.includes(LOGIN.password))).toBe(false);
    const argv = await sh(S, "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done");
    expect(argv).toContain(`${DATA}/cache/quay.io/config.yml`);
    expect(argv).not.toContain(LOGIN.password);
    expect(await sh(S, `cat ${DATA}/run/*.log`)).not.toContain(LOGIN.password);
    expect(await sh(H1, `cat ${CERTS}/quay.io/hosts.toml`)).not.toContain(LOGIN.username);
  });

  it("GIVEN both upstreams gone WHEN another host pulls the same images by tag and digest THEN the caches serve them, also after a restart; what was never fetched fails and no host goes out to the upstream", async () => {
    await dockerHub.stop();
    await privateQuay.stop();
    const images = [
      ["docker.io/library/outside:1", "library/outside:1"],
      ["quay.io/team/private:2", "team/private:2"],
    ] as const;
    const pullAll = async () => {
      for (const [ref, repo] of images) {
        const r = await pull(H2, ref);
        expect(r.code, r.stderr).toBe(0);
        expect((await ctr(H2, "images ls")).stdout).toMatch(new RegExp(`^${ref.replace(/[.:/]/g, "\\$&")} .*${digests.get(repo)}`, "m"));
        const byDigest = await pull(H2, `${ref.split(":")[0]}@${digests.get(repo)}`);
        expect(byDigest.code, byDigest.stderr).toBe(0);
      }
    };
    // The caches as they run: distribution's tag lookup falls back to the tag it stored.
    await pullAll();

    // Caches started again meanwhile (their server rebooted): distribution exits when it cannot reach
    // its upstream at start, so each comes up on its storage, read-only, and says so.
    await sh(S, `kill $(cat ${DATA}/run/cache-quay.io.pid) $(cat ${DATA}/run/cache-docker.io.pid)`);
    const warnings = await startPullThroughCaches(conn(S), S, setup, tls, upstreams);
    expect(warnings).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${S}: the pull-through cache of docker\\.io could not reach ${dockerHub.url} \\(Get .*connection refused\\): it serves what it has cached, read-only`,
        ),
      ),
      expect.stringMatching(/the pull-through cache of quay\.io could not reach/),
    ]);
    expect(warnings.join("\n")).not.toContain(LOGIN.password);
    expect(await sh(S, `grep -c remoteurl ${DATA}/cache/quay.io/config.yml || true`)).toBe("0");
    // H2 forgets the images and their content, and fetches everything again.
    await sh(
      H2,
      `ctr -a ${SOCK} images rm $(ctr -a ${SOCK} images ls -q) >/dev/null; ctr -a ${SOCK} content ls -q | xargs -r ctr -a ${SOCK} content rm >/dev/null`,
    );
    expect(await sh(H2, `ctr -a ${SOCK} content ls -q | wc -l`)).toBe("0");
    await pullAll();

    const missing = await pull(H2, "docker.io/library/never:1");
    expect(missing.code).not.toBe(0);
    // "none": containerd's last endpoint is the cache again, never registry-1.docker.io.
    expect(missing.stderr).not.toMatch(/registry-1\.docker\.io/);
    expect(await sh(H2, `grep '^server' ${CERTS}/docker.io/hosts.toml`)).toBe(`server = "https://${S}:5010"`);
  }, 120_000);

  it("GIVEN an upstream dropped from the configuration WHEN configured again THEN its cache stops and a domain the image carries gets the cluster registry's own file back; removal takes the rest", async () => {
    const quayOnly = upstreams.filter((u) => u.domain === "quay.io");
    await startPullThroughCaches(conn(S), S, setup, tls, quayOnly);
    await configurePullThroughClients(conn(H1), H1, setup, tls, quayOnly);
    expect(await sh(S, `cat ${DATA}/run/cache-docker.io.pid 2>/dev/null || echo gone`)).toBe("gone");
    const dockerToml = await sh(H1, `cat ${CERTS}/docker.io/hosts.toml`);
    expect(dockerToml).toContain("# sealant-cluster: /var/lib/sealant/pt");
    expect(dockerToml).not.toContain(":5010");
    const own = await pull(H1, "docker.io/library/in-image:1");
    expect(own.code, own.stderr).toBe(0);

    await removePullThrough(conn(S), DATA);
    await removePullThrough(conn(H1), DATA);
    expect(await sh(S, `ls ${DATA}/cache 2>/dev/null || echo gone; pgrep -fc '[s]erve ${DATA}/cache' || true`)).toBe("gone\n0");
    expect(await sh(H1, `ls ${CERTS}/quay.io 2>/dev/null || echo gone`)).toBe("gone");
    expect(await sh(H1, `test -f ${CERTS}/docker.io/hosts.toml && echo kept`)).toBe("kept");
  }, 60_000);
});

describe("an upstream with a Basic login", () => {
  it("GIVEN a login for an htpasswd registry WHEN its cache starts THEN the warning says distribution gives it no login and the private images will not be found", async () => {
    const basic = await startTestRegistry({ auth: "htpasswd", users: [LOGIN] });
    const dir = "/var/lib/sealant/pt-basic";
    try {
      const own: RegistrySetup = { ...setup, dataRoot: dir, port: 5100, tls: false };
      await startRegistry(conn(S), S, ROOTFS, own, undefined);
      const warnings = await startPullThroughCaches(conn(S), S, own, undefined, [
        { domain: "registry.example.com", url: basic.url, port: 5110, fallback: "none", ...LOGIN },
      ]);
      expect(warnings).toEqual([
        `${S}: ${basic.url} asks for a Basic login, and distribution's pull-through cache logs in only where the upstream hands out tokens (Bearer, as Docker Hub, quay.io and Harbor do): the cache of registry.example.com fetches without the login, so its private images will not be found`,
      ]);
      // The token-auth upstream of the first test got no such warning (it returned []).
    } finally {
      await removePullThrough(conn(S), dir);
      await basic.stop();
    }
  }, 60_000);
});

describe("a cluster registry with a login", () => {
  it("GIVEN registry.username/password WHEN the caches run THEN they take the same login, and containerd's CRI gets it for their endpoints too", async () => {
    const open = await startTestRegistry();
    const dir = "/var/lib/sealant/pt-login";
    const user = { username: "cluster", password: `reg-${Math.random().toString(36).slice(2)}` };
    const own: RegistrySetup = { ...setup, dataRoot: dir, port: 5200, tls: false, ...user };
    const upstream: PullThroughUpstream[] = [{ domain: "docker.io", url: open.url, port: 5210, fallback: "none" }];
    try {
      await seed(open, "library/guarded:1", 3);
      await startRegistry(conn(S), S, ROOTFS, own, undefined);
      expect(await startPullThroughCaches(conn(S), S, own, undefined, upstream)).toEqual([]);
      await sh(H1, "mkdir -p /etc/containerd && printf 'version = 2\\n' > /etc/containerd/config.toml");
      await configureRegistryClients(conn(H1), H1, own, undefined);
      await configurePullThroughClients(conn(H1), H1, own, undefined, upstream);
      const config = await sh(H1, "cat /etc/containerd/config.toml");
      expect(config).toContain(`configs."${S}:5210".auth`);
      expect(config).toContain(`configs."${S}:5200".auth`);
      expect(sent.some((c) => c.includes(user.password))).toBe(false);
      // The cache refuses anonymous pulls and serves the cluster's login.
      const anonymous = await pull(H1, "docker.io/library/guarded:1");
      expect(anonymous.code).not.toBe(0);
      const withLogin = await raw
        .get(H1)!
        .exec(`ctr -a ${SOCK} images pull --hosts-dir ${CERTS} --user ${user.username}:${user.password} docker.io/library/guarded:1`, {
          secrets: [user.password],
        });
      expect(withLogin.code, withLogin.stderr).toBe(0);
    } finally {
      await removePullThrough(conn(S), dir);
      await open.stop();
    }
  }, 60_000);
});

describe("checkUpstreams", () => {
  const u: PullThroughUpstream = { domain: "quay.io", url: "https://quay.io", port: 5010, fallback: "none" };
  it("GIVEN bad upstreams WHEN checked THEN each gets one error naming the upstream and what is allowed", () => {
    expect(() => checkUpstreams([{ ...u, url: "https://me:pw@quay.io" }], 5000)).toThrow(
      /"quay.io": url must be http\(s\):\/\/host\[:port\] with no path or login in it/,
    );
    expect(() => checkUpstreams([{ ...u, url: "quay.io" }], 5000)).toThrow(/url "quay.io" is not a URL/);
    expect(() => checkUpstreams([{ ...u, port: 5001 }], 5000)).toThrow(/port 5001 is already used by the cluster registry's docker.io view/);
    expect(() => checkUpstreams([u, { ...u, port: 5011 }], 5000)).toThrow(/"quay.io" is listed twice/);
    expect(() => checkUpstreams([{ ...u, username: "a" }], 5000)).toThrow(/needs both username and password/);
    expect(() => checkUpstreams([{ ...u, domain: "quay.io/x" }], 5000)).toThrow(/expected a registry domain/);
    expect(() => checkUpstreams([{ ...u, username: "a", password: "x\ny" }], 5000)).toThrow(/password must not be empty or contain line breaks/);
  });
});
