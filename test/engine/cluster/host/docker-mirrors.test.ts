/**
 * What dockerd is given for the cluster's registry, on a real sandbox host (127.0.10.90): the
 * files written there, read back and parsed, and the docker.io view answered over TLS exactly as
 * dockerd asks a mirror (`/v2/library/<name>/manifests/<tag>`, trusting the CA from its
 * certs.d); then a real dockerd (Debian's docker.io, no bridge, no iptables, vfs storage on a
 * real directory) given those files pulls through it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  configureDockerClient,
  dockerMirrorPlan,
  hostRunsDocker,
  removeDockerClient,
  mergeDaemonJson,
  runsDocker,
  startDockerHubView,
  stopDockerHubView,
} from "../../../../src/engine/cluster/host/docker-mirrors";
import { prepareRegistryTls, type RegistrySetup, type RegistryTls } from "../../../../src/engine/cluster/host/registry";
import { DEFAULT_REAL_DIRS, sandboxDown, sandboxUp, type Sandbox } from "../../../../src/engine/sandbox";
import { SshConnection } from "../../../../src/engine/ssh";
import { startRegistry } from "../../../support/registry";
import { skopeoCopy, writeOciLayout, type OciLayoutImage } from "../../../support/tools";

const FIRST = 90;
const DATA_ROOT = "/var/lib/sealant/docker-mirrors";
let parent: string;
let sb: Sandbox;
let conn: SshConnection;
let ip: string;
let image: OciLayoutImage;
let setup: RegistrySetup;
let tls: RegistryTls;

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), "sealant-docker-mirrors-"));
  // dockerd's storage must be a real directory (an overlay cannot hold its layers).
  sb = await sandboxUp(1, { name: "test-docker-mirrors", dir: join(parent, "sb"), firstIndex: FIRST, realDirs: [...DEFAULT_REAL_DIRS, "/var/lib/docker"] });
  ip = sb.hosts[0]!.ip;
  conn = await SshConnection.connect({ host: ip, privateKeyPath: sb.ssh.pk, hostKey: { knownHosts: sb.ssh.knownHosts } });
  // A cluster image's registry/ tree, as a build leaves it: images stored under their source registry.
  image = await writeOciLayout(join(parent, "layout"), { tag: "1" });
  const reg = await startRegistry();
  try {
    await skopeoCopy(`oci:${join(parent, "layout")}:1`, `docker://${reg.host}/docker.io/library/hello:1`);
    await skopeoCopy(`oci:${join(parent, "layout")}:1`, `docker://${reg.host}/quay.io/coreos/etcd:1`);
    // ... and as distribute leaves it on a host: images/<digest>/rootfs, and the cluster's rootfs link to it.
    await conn.upload(`${DATA_ROOT}/images/abc/rootfs/registry`, [{ local: reg.storageDir, path: "." }], { sudo: true });
  } finally {
    await reg.stop();
  }
  await conn.run(`ln -sfn ${DATA_ROOT}/images/abc/rootfs ${DATA_ROOT}/rootfs`);
  setup = { domain: "sea.hub", port: 5000, servers: [ip], domains: ["docker.io", "quay.io"], tls: true, dataRoot: DATA_ROOT };
  tls = await prepareRegistryTls(conn, setup);
}, 120_000);

afterAll(async () => {
  await conn?.close().catch(() => undefined);
  if (sb) await sandboxDown(sb).catch(() => undefined);
  await rm(parent, { recursive: true, force: true });
});

const sh = async (cmd: string) => (await conn.run(cmd)).stdout;

describe("which hosts run Docker", () => {
  it("sealer's containerRuntime.type decides when set; otherwise docker.sh without containerd.sh, as the runtime runs them", () => {
    expect(runsDocker(["docker.sh", "init-kube.sh"])).toBe(true);
    expect(runsDocker(["containerd.sh", "docker.sh"])).toBe(false);
    expect(runsDocker(["containerd.sh"], "docker")).toBe(true);
    expect(runsDocker(["docker.sh"], "containerd")).toBe(false);
  });
});

describe("what dockerd can take from the cluster's registry", () => {
  it("GIVEN docker.io and quay.io images THEN only docker.io gets a mirror (the view, port + 1), and the plan says quay.io is pulled from quay.io itself", () => {
    const plan = dockerMirrorPlan(setup);
    expect(plan.mirror).toBe("https://sea.hub:5001");
    expect(plan.endpoints).toEqual(["sea.hub:5000", "sea.hub:5001"]);
    expect(plan.upstreamOnly).toEqual(["quay.io"]);
    expect(plan.warnings).toEqual([
      "dockerd mirrors docker.io only: the image's images from quay.io are pulled by Docker hosts from those registries themselves, not from the cluster registry (a host that cannot reach them fails the pull); use a containerd image, or name them sea.hub:5000/<registry>/<path>",
    ]);
  });

  it("GIVEN registry auth THEN no mirror (dockerd sends a mirror no credentials), said; GIVEN plain HTTP THEN an http mirror and both endpoints insecure", () => {
    const withAuth = dockerMirrorPlan({ ...setup, domains: ["docker.io"], username: "u" });
    expect(withAuth.mirror).toBeUndefined();
    expect(withAuth.warnings).toEqual([
      "registry.username is set and dockerd sends no credentials to a mirror: Docker hosts pull the image's docker.io images from docker.io, not from the cluster registry",
    ]);
    const http = dockerMirrorPlan({ ...setup, tls: false, domains: ["docker.io"] });
    expect(JSON.parse(mergeDaemonJson(undefined, http, { tls: false, where: "daemon.json" }))).toEqual({
      "registry-mirrors": ["http://sea.hub:5001"],
      "insecure-registries": ["sea.hub:5000", "sea.hub:5001"],
    });
  });
});

describe("on a host whose runtime is Docker", () => {
  it("GIVEN the user's daemon.json WHEN configured THEN ours is the first mirror, the user's mirror and keys stay, the CA is in certs.d for both ports; again: nothing changes", async () => {
    const mine = { "log-driver": "json-file", "registry-mirrors": ["https://mirror.example.com"], "insecure-registries": ["old.example:5000"] };
    await conn.run("mkdir -p /etc/docker && cat > /etc/docker/daemon.json", { stdin: JSON.stringify(mine) });
    expect(await configureDockerClient(conn, setup, tls)).toBe(true);
    expect(JSON.parse(await sh("cat /etc/docker/daemon.json"))).toEqual({
      ...mine,
      "registry-mirrors": ["https://sea.hub:5001", "https://mirror.example.com"],
    });
    for (const port of [5000, 5001]) expect(await sh(`cat /etc/docker/certs.d/sea.hub:${port}/sealant-registry-ca.crt`)).toBe(tls.caCert);
    const before = await sh("stat -c %Y.%i /etc/docker/daemon.json");
    expect(await configureDockerClient(conn, setup, tls)).toBe(false);
    expect(await sh("stat -c %Y.%i /etc/docker/daemon.json")).toBe(before);
    expect(await sh("ls -A /etc/docker | grep sealant || true")).toBe(""); // no temp file left
  });

  it("GIVEN a daemon.json that is not JSON THEN one error names the file and host, quoting none of it", async () => {
    await conn.run("cat > /etc/docker/daemon.json", { stdin: '{"x": "do-not-quote-me" oops}' });
    const err = await configureDockerClient(conn, setup, tls).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`/etc/docker/daemon.json on ${ip} is not valid JSON (at position 24): fix it or remove it, then apply again`);
    expect((err as Error).message).not.toContain("do-not-quote-me");
    await conn.run("rm -f /etc/docker/daemon.json");
  });

  it("the docker.io view answers what dockerd asks its mirror, over TLS with the CA dockerd trusts, and serves nothing else", async () => {
    expect(await startDockerHubView(conn, ip, `${DATA_ROOT}/rootfs`, setup)).toBe(true);
    const ca = "/etc/docker/certs.d/sea.hub:5001/sealant-registry-ca.crt";
    const curl = (path: string, extra = "") =>
      sh(
        `curl -s --cacert ${ca} --resolve sea.hub:5001:${ip} ${extra} -o /tmp/body -w '%{http_code}' https://sea.hub:5001${path}; echo; sha256sum < /tmp/body | cut -c1-64`,
      );
    const accept = "-H 'Accept: application/vnd.oci.image.manifest.v1+json' -H 'Accept: application/vnd.docker.distribution.manifest.v2+json'";
    expect(await curl("/v2/library/hello/manifests/1", accept)).toBe(`200\n${image.manifest.digest.slice(7)}\n`);
    const layer = image.layers[0]!.digest;
    expect(await curl(`/v2/library/hello/blobs/${layer}`, "-L")).toBe(`200\n${layer.slice(7)}\n`);
    expect((await curl("/v2/quay.io/coreos/etcd/manifests/1", accept)).split("\n")[0]).toBe("404");
    expect((await curl("/v2/docker.io/library/hello/manifests/1", accept)).split("\n")[0]).toBe("404");
    // Read-only: a push is refused.
    expect((await curl("/v2/library/hello/blobs/uploads/", "-X POST")).split("\n")[0]).toMatch(/^40[35]$/);

    const pid = await sh(`cat ${DATA_ROOT}/run/registry-docker-hub.pid`);
    await startDockerHubView(conn, ip, `${DATA_ROOT}/rootfs`, setup);
    expect(await sh(`cat ${DATA_ROOT}/run/registry-docker-hub.pid`)).toBe(pid); // unchanged: left running
    await stopDockerHubView(conn, DATA_ROOT);
    expect(await sh(`kill -0 ${pid.trim()} 2>/dev/null && echo alive || echo gone; ls ${DATA_ROOT}/registry`)).toBe("gone\ncerts\n");
  }, 60_000);

  it("a real dockerd given that configuration pulls the docker.io image by its own name through the view, and goes to quay.io itself for the quay.io one", async () => {
    await configureDockerClient(conn, setup, tls);
    await startDockerHubView(conn, ip, `${DATA_ROOT}/rootfs`, setup);
    // Upstream names resolve to a loopback address where nothing listens: whatever dockerd sends
    // upstream stays on this machine (and is refused), and shows in its error.
    await conn.run(`printf '%s\\n' "${ip} sea.hub" "127.0.0.9 quay.io registry-1.docker.io index.docker.io auth.docker.io" >> /etc/hosts`);
    await conn.run(
      "setsid -f dockerd --host unix:///run/docker.sock --pidfile /run/dockerd.pid --data-root /var/lib/docker --exec-root /run/docker --bridge none --iptables=false --ip6tables=false --ip-masq=false --storage-driver vfs > /run/dockerd.log 2>&1 < /dev/null",
    );
    try {
      await conn.run(
        "i=0; until docker -H unix:///run/docker.sock version > /dev/null 2>&1; do i=$((i+1)); [ $i -lt 300 ] || { tail -20 /run/dockerd.log >&2; exit 1; }; sleep 0.1; done",
        { timeoutMs: 60_000 },
      );
      const pulled = await conn.exec("docker -H unix:///run/docker.sock pull docker.io/library/hello:1 2>&1", { timeoutMs: 120_000 });
      expect(pulled.stdout).toContain(`Digest: ${image.manifest.digest}`);
      expect(pulled.code).toBe(0);
      const names = await sh("docker -H unix:///run/docker.sock images --format '{{.Repository}}:{{.Tag}}'");
      expect(names.trim()).toBe("hello:1");
      const other = await conn.exec("docker -H unix:///run/docker.sock pull quay.io/coreos/etcd:1 2>&1", { timeoutMs: 120_000 });
      expect(other.code).not.toBe(0);
      expect(other.stdout).toMatch(/Get "https?:\/\/quay\.io\/v2\/": dial tcp 127\.0\.0\.9:(443|80): connect: connection refused/);
    } finally {
      await conn.run("kill $(cat /run/dockerd.pid) 2>/dev/null; true");
    }
  }, 180_000);

  it("removing takes out only what sealant wrote: the user's daemon.json comes back as it was, the CA files go", async () => {
    const mine = { "log-driver": "json-file", "registry-mirrors": ["https://mirror.example.com"], "insecure-registries": ["old.example:5000"] };
    for (const tlsOn of [true, false]) {
      const s = { ...setup, tls: tlsOn };
      await conn.run("cat > /etc/docker/daemon.json", { stdin: JSON.stringify(mine) });
      await configureDockerClient(conn, s, tls);
      expect(JSON.parse(await sh("cat /etc/docker/daemon.json"))).not.toEqual(mine);
      await removeDockerClient(conn, s);
      expect(JSON.parse(await sh("cat /etc/docker/daemon.json"))).toEqual(mine);
    }
    expect(await sh("ls /etc/docker/certs.d")).toBe("");
  });

  it("reads the runtime from the image's scripts on the host, or sealer's containerRuntime.type", async () => {
    const rootfs = `${DATA_ROOT}/rootfs`;
    await conn.run(`mkdir -p ${rootfs}/scripts && touch ${rootfs}/scripts/docker.sh ${rootfs}/scripts/init-kube.sh`);
    expect(await hostRunsDocker(conn, rootfs)).toBe(true);
    await conn.run(`touch ${rootfs}/scripts/containerd.sh`);
    expect(await hostRunsDocker(conn, rootfs)).toBe(false);
    expect(await hostRunsDocker(conn, rootfs, "docker")).toBe(true);
    expect(await hostRunsDocker(conn, "/nonexistent")).toBe(false);
  });
});
