/**
 * The user's registries (`registry.registries`, the registries-file model) on a real host: a
 * sandbox host whose real containerd, with its CRI (as the Kubernetes image's containerd.sh sets
 * it up: certs.d as config_path), pulls images by their upstream names through a user mirror
 * that is TLS with a private CA and htpasswd — the CA beside the hosts.toml, the login as CRI
 * registry auth. docker.io is also the cluster registry's (its entries first, the user's after, in
 * one file); quay.io is the user's alone. The proxy drop-in, a login given twice, entries taken
 * out, and removal leaving nothing.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configurePullThroughClients, removePullThrough } from "../../../../src/engine/cluster/host/pull-through";
import { DEFAULT_DIR, userEntries } from "../../../../src/engine/cluster/host/registry-hosts";
import { configureRegistryClients, removeRegistry, type RegistrySetup } from "../../../../src/engine/cluster/host/registry";
import { configureUserRegistries, loginsOf, PROXY_DROP_IN, proxyDropIn } from "../../../../src/engine/cluster/host/user-registries";
import { parseRegistryConfig, type RegistryConfig } from "../../../../src/engine/image/registry-config";
import { sandboxDown, sandboxUp, type Sandbox } from "../../../../src/engine/sandbox";
import { SshConnection, type Connection } from "../../../../src/engine/ssh";
import { startRegistry, type TestRegistry } from "../../../support/registry";
import { skopeoCopy, writeOciLayout } from "../../../support/tools";
import { CERTS_DIR as CERTS, CONTAINERD_CONFIG_FILE as CONFIG, CRI_CONTAINERD_CONFIG as CONTAINERD_CONFIG, crictl } from "../../../support/cri";

const PASSWORD = "User-mirror-pw-7";
const DATA_ROOT = "/var/lib/sealant/user-reg";

let parent: string;
let sb: Sandbox;
let mirror: TestRegistry;
let host: string;
let raw: SshConnection;
/** Every command line sealant sent: the password must never be in one. */
const sent: string[] = [];
const conn = (): Connection => ({
  host: raw.host,
  exec: (cmd, o) => (sent.push(cmd), raw.exec(cmd, o)),
  run: (cmd, o) => (sent.push(cmd), raw.run(cmd, o)),
  upload: (t, s, o) => raw.upload(t, s, o),
  close: () => raw.close(),
});
const sh = async (cmd: string, stdin?: string) => (await raw.run(cmd, stdin === undefined ? {} : { stdin })).stdout.trim();

/** The user's registries file, as builds read it. */
const model = (doc: unknown): Promise<RegistryConfig> => parseRegistryConfig(doc, "registry.registries", parent);
const full = () => ({
  mirrors: { "docker.io": { endpoint: [`https://${mirror.host}`] }, "quay.io": { endpoint: [`https://${mirror.host}`] } },
  configs: { [mirror.host]: { auth: { username: "robot", password: PASSWORD }, tls: { ca: mirror.tlsCert! } }, "*": { proxy: "http://proxy.test:3128" } },
});
const setup = (): RegistrySetup => ({ domain: "sea.hub", port: 5000, servers: [host], domains: ["docker.io"], tls: false, dataRoot: DATA_ROOT });

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), "sealant-user-registries-"));
  // GIVEN a registry behind TLS with a private CA and a login, holding two images ...
  mirror = await startRegistry({ auth: "htpasswd", tls: true, privateCa: true, users: [{ username: "robot", password: PASSWORD }] });
  for (const [i, repo] of ["library/sealmirror:1", "team/app:1"].entries()) {
    const layout = await writeOciLayout(join(parent, `oci${i}`), { tag: "t" });
    await skopeoCopy(`oci:${layout.dir}:t`, `docker://${mirror.host}/${repo}`, { destCreds: { username: "robot", password: PASSWORD } });
  }
  // ... and a sandbox host with containerd's config as the image's container runtime script writes it.
  // 127.0.10.232: a fixed number, as the suite's other host tests have (a free one picked at start could be one a test starting later asks for).
  sb = await sandboxUp(1, { name: "test-user-registries", dir: join(parent, "sb"), firstIndex: 232 });
  host = sb.hosts[0]!.ip;
  raw = await SshConnection.connect({ host, privateKeyPath: sb.ssh.pk, hostKey: { knownHosts: sb.ssh.knownHosts } });
  await sh(`mkdir -p /etc/containerd /run/ctd && cat > ${CONFIG}`, CONTAINERD_CONFIG);
}, 120_000);

afterAll(async () => {
  await raw?.run("[ -f /run/ctd/pid ] && kill $(cat /run/ctd/pid) || true").catch(() => undefined);
  await raw?.close().catch(() => undefined);
  if (sb) await sandboxDown(sb).catch(() => undefined);
  await mirror?.stop();
  await rm(parent, { recursive: true, force: true });
});

describe("the user's registries on a host's containerd", () => {
  it("GIVEN a user mirror with a private CA and a login for docker.io (also the cluster registry's) and quay.io WHEN configured THEN one hosts.toml each, the cluster's entries first, the login in CRI auth, the proxy in a drop-in", async () => {
    const warnings = await configureRegistryClients(conn(), host, setup(), undefined, {
      registries: { config: await model(full()), noProxy: ["sea.hub", host] },
    });
    expect(warnings).toEqual([]);
    const caFile = `sealant-ca-${mirror.host.replace(":", "_")}.crt`;
    const docker = await sh(`cat ${CERTS}/docker.io/hosts.toml`);
    expect(docker.split("\n")[0]).toBe(`# sealant-cluster: ${DATA_ROOT}`);
    const cluster = docker.indexOf(`[host."http://${host}:5000/v2/docker.io"]`);
    const user = docker.indexOf(`[host."https://${mirror.host}"]\n  capabilities = ["pull", "resolve"]\n  ca = "${CERTS}/docker.io/${caFile}"`);
    expect(cluster).toBeGreaterThan(0);
    expect(user).toBeGreaterThan(cluster);
    expect(await sh(`cat ${CERTS}/docker.io/${caFile}`)).toBe(mirror.tlsCert!.trim());
    const quay = await sh(`cat ${CERTS}/quay.io/hosts.toml`);
    expect(quay.split("\n")[0]).toBe(`# sealant-registries: ${DATA_ROOT}`);
    expect(quay).toContain(`[host."https://${mirror.host}"]`);
    expect(quay).not.toContain("5000");

    const config = await sh(`cat ${CONFIG}`);
    expect(config).toContain(`[plugins."io.containerd.grpc.v1.cri".registry.configs."${mirror.host}".auth]\n  username = "robot"\n  password = "${PASSWORD}"`);
    expect(await sh(`stat -c %a ${CONFIG}`)).toBe("600");
    const dropIn = await sh(`cat ${PROXY_DROP_IN}`);
    expect(dropIn).toContain('Environment="HTTPS_PROXY=http://proxy.test:3128"');
    expect(dropIn).toContain('Environment="HTTP_PROXY=http://proxy.test:3128"');
    expect(dropIn).toContain(`Environment="NO_PROXY=localhost,127.0.0.1,::1,sea.hub,${host}"`);
    expect(await sh(`stat -c %a ${PROXY_DROP_IN}`)).toBe("600");
    expect(sent.join("\n")).not.toContain(PASSWORD);
  });

  it("GIVEN that configuration WHEN containerd's CRI pulls by the upstream names THEN the cluster registry (down) is tried first and the user mirror serves them over verified TLS with the login", async () => {
    await sh(`setsid -f sh -c 'echo $$ > /run/ctd/pid; exec containerd --config ${CONFIG}' > /run/ctd/log 2>&1 < /dev/null`);
    await sh(`for i in $(seq 1 100); do ${crictl()} version > /dev/null 2>&1 && exit 0; sleep 0.1; done; cat /run/ctd/log >&2; exit 1`);
    const hub = await raw.exec(`${crictl()} pull docker.io/library/sealmirror:1`);
    expect(hub.code, hub.stderr).toBe(0);
    const quay = await raw.exec(`${crictl()} pull quay.io/team/app:1`);
    expect(quay.code, quay.stderr).toBe(0);
    const images = await sh(`${crictl()} images -o json`);
    expect(images).toContain('"docker.io/library/sealmirror:1"');
    expect(images).toContain('"quay.io/team/app:1"');
    const log = await mirror.logTail(400);
    // Anonymous first (401), then the login: the registry authorised containerd's requests.
    expect(log).toMatch(/"HEAD \/v2\/library\/sealmirror\/manifests\/1\?ns=docker\.io HTTP\/1\.1" 401 .*containerd\//);
    expect(log).toMatch(/"HEAD \/v2\/library\/sealmirror\/manifests\/1\?ns=docker\.io HTTP\/1\.1" 200 .*containerd\//);
    expect(log).toMatch(/"HEAD \/v2\/team\/app\/manifests\/1\?ns=quay\.io HTTP\/1\.1" 200 .*containerd\//);
    expect(await sh("cat /run/ctd/log")).toMatch(/trying next host.*5000.*connection refused|connection refused/);
    await sh("kill $(cat /run/ctd/pid); rm -f /run/ctd/pid; while pidof containerd > /dev/null; do sleep 0.1; done");
  }, 120_000);

  it("GIVEN quay.io also cached by a pull-through cache WHEN configured THEN its one hosts.toml lists the cluster tree, the cache, then the user's mirror, and the CRI pulls quay.io's image from the mirror with both down", async () => {
    const upstreams = [{ domain: "quay.io", url: "https://quay.io", port: 5010, fallback: "none" as const }];
    const registries = { config: await model(full()), noProxy: [] };
    expect(await configurePullThroughClients(conn(), host, setup(), undefined, upstreams, { registries })).toEqual([]);
    const quay = await sh(`cat ${CERTS}/quay.io/hosts.toml`);
    expect(quay.split("\n")[0]).toBe(`# sealant-pull-through: ${DATA_ROOT}`);
    const order = [`[host."http://${host}:5000/v2/quay.io"]`, `[host."http://${host}:5010"]`, `[host."https://${mirror.host}"]`].map((h) => quay.indexOf(h));
    expect(
      order.every((at, i) => at > 0 && (i === 0 || at > order[i - 1]!)),
      quay,
    ).toBe(true);
    await sh(`setsid -f sh -c 'echo $$ > /run/ctd/pid; exec containerd --config ${CONFIG}' > /run/ctd/log 2>&1 < /dev/null`);
    await sh(`for i in $(seq 1 100); do ${crictl()} version > /dev/null 2>&1 && exit 0; sleep 0.1; done; cat /run/ctd/log >&2; exit 1`);
    await sh(`${crictl()} rmi quay.io/team/app:1`);
    const pulled = await raw.exec(`${crictl()} pull quay.io/team/app:1`);
    expect(pulled.code, pulled.stderr).toBe(0);
    await sh("kill $(cat /run/ctd/pid); rm -f /run/ctd/pid");
    await removePullThrough(conn(), DATA_ROOT);
    expect((await raw.exec(`test -e ${CERTS}/quay.io`)).code).toBe(1);
  }, 120_000);

  it("GIVEN the cluster registry has a login WHEN the user's registries give its endpoint one too THEN one clear error names both places, and no password", async () => {
    const registries = { config: await model({ configs: { [`${host}:5000`]: { auth: { username: "other", password: PASSWORD } } } }), noProxy: [] };
    const err = await configureRegistryClients(conn(), host, { ...setup(), username: "robot", password: "Cluster-pw-1" }, undefined, { registries }).catch(
      (e: unknown) => e,
    );
    expect(String(err)).toMatch(
      new RegExp(
        `registry ${host.replace(/\./g, "\\.")}:5000 is given a login by both the cluster's registry .* and registry\\.registries configs: give it in one place`,
      ),
    );
    expect(String(err)).not.toContain(PASSWORD);
  });

  it("GIVEN entries taken out of the spec WHEN configured again THEN their files, CA, login and proxy are gone, and the cluster's own file is as without them", async () => {
    await configureRegistryClients(conn(), host, setup(), undefined, {
      registries: { config: await model({ configs: { [mirror.host]: { tls: { ca: mirror.tlsCert! } } } }), noProxy: [] },
    });
    expect(await sh(`ls ${CERTS}`)).toBe(["docker.io", "sea.hub:5000", mirror.host].sort().join("\n"));
    expect(await sh(`ls ${CERTS}/docker.io`)).toBe("hosts.toml");
    expect(await sh(`cat ${CERTS}/docker.io/hosts.toml`)).not.toContain(mirror.host);
    // A registry with only a CA: its own server line.
    const own = await sh(`cat '${CERTS}/${mirror.host}/hosts.toml'`);
    expect(own).toContain(`server = "https://${mirror.host}"\nca = "${CERTS}/${mirror.host}/sealant-ca-${mirror.host.replace(":", "_")}.crt"`);
    expect(await sh(`cat ${CONFIG}`)).not.toContain("robot");
    expect((await raw.exec(`test -e ${PROXY_DROP_IN}`)).code).toBe(1);
  });

  it("GIVEN a hosts.toml that is not sealant's WHEN the user's registries name that registry THEN it is left as it was, with a warning", async () => {
    await sh(`mkdir -p ${CERTS}/ghcr.io && printf 'server = "https://ghcr.io"\\n' > ${CERTS}/ghcr.io/hosts.toml`);
    const warnings = await configureUserRegistries(conn(), DATA_ROOT, {
      config: await model({ mirrors: { "ghcr.io": { endpoint: ["https://m.example"] } } }),
      noProxy: [],
    });
    expect(warnings).toEqual([`${CERTS}/ghcr.io/hosts.toml is not sealant's: left as it is, so registry.registries for ghcr.io is not applied on this host`]);
    expect(await sh(`cat ${CERTS}/ghcr.io/hosts.toml`)).toBe('server = "https://ghcr.io"');
    await sh(`rm -rf ${CERTS}/ghcr.io`);
  });

  it("GIVEN everything configured WHEN the cluster's registry is removed THEN nothing of the user's registries is left", async () => {
    await configureRegistryClients(conn(), host, setup(), undefined, { registries: { config: await model(full()), noProxy: [] } });
    expect(await sh(`ls ${CERTS}`)).toContain("quay.io");
    await removeRegistry(conn(), setup());
    expect(await sh(`ls -A ${CERTS} 2>/dev/null || true`)).toBe("");
    expect((await raw.exec(`test -e ${PROXY_DROP_IN}`)).code).toBe(1);
    expect(await sh(`cat ${CONFIG}`)).toBe(CONTAINERD_CONFIG.trim());
    expect(await sh(`ls -A ${DATA_ROOT}/registry 2>/dev/null || true`)).toBe("");
  });
});

describe("what hosts.toml and the drop-in say (pure)", () => {
  it("GIVEN plain_http on a mirror, on a registry and on '*' WHEN written THEN http:// entries and server lines, '*' into _default, plain HTTP for every registry said as a warning", async () => {
    const config = await model({
      mirrors: { "*": { endpoint: ["https://m.example"] }, "docker.io": { endpoint: ["https://10.0.0.9:5000"] } },
      configs: {
        "10.0.0.9:5000": { plain_http: true },
        "r.example:5000": { plain_http: true },
        "*": { plain_http: true, tls: { insecure_skip_verify: true } },
      },
    });
    expect(userEntries(config, "docker.io", "/c/docker.io").hosts.join("\n")).toContain('[host."http://10.0.0.9:5000"]');
    expect(userEntries(config, "r.example:5000", "/c/r").server).toEqual(['server = "http://r.example:5000"']);
    const def = userEntries(config, DEFAULT_DIR, "/c/_default");
    // "*" reaches every registry so: the "*" mirror too, and plain HTTP takes no TLS settings.
    expect(def.hosts.join("\n")).toBe('\n[host."http://m.example"]\n  capabilities = ["pull", "resolve"]');
    expect(def.server).toEqual(["skip_verify = true"]);
    expect(def.warnings[0]).toMatch(/configs\["\*"\]\.plain_http: containerd cannot reach every registry over plain HTTP/);
  });

  it("GIVEN logins for a plain-HTTP registry, a registry token and Docker Hub WHEN made CRI logins THEN the token is said not to be one, plain HTTP said to carry the login in clear, Docker Hub's under the host containerd asks", async () => {
    const config = await model({
      mirrors: { "quay.io": { endpoint: ["http://10.0.0.9:5000"] } },
      configs: {
        "10.0.0.9:5000": { auth: { username: "u", password: "p" } },
        "t.example": { auth: { token: "tok" } },
        "docker.io": { auth: { username: "hub", password: "h" } },
      },
    });
    const { logins, skipped } = loginsOf(config);
    expect(logins.map((l) => l.endpoint)).toEqual(["10.0.0.9:5000", "docker.io", "registry-1.docker.io"]);
    expect(skipped).toEqual([
      'registry.registries configs["10.0.0.9:5000"]: the hosts reach 10.0.0.9:5000 over plain HTTP, so containerd sends its login there unencrypted; give it TLS (a CA) if the network is not trusted',
      'registry.registries configs["t.example"].auth.token: containerd\'s CRI takes a username and password, not a registry token: the hosts pull from t.example without it',
    ]);
    expect(skipped.join("\n")).not.toContain('tok"');
  });

  it("GIVEN a proxy named on one registry only, with a login in its URL, and a direct one WHEN the drop-in is made THEN it is every registry's, said as a warning without the login; % doubled for systemd", async () => {
    const config = await model({ configs: { "a.example": { proxy: "http://u:p%40ss@proxy.test:3128" }, "b.example": { proxy: "direct" } } });
    const d = proxyDropIn("/var/lib/sealant/x", { config, noProxy: ["sea.hub"] })!;
    expect(d.text).toContain('Environment="HTTPS_PROXY=http://u:p%%40ss@proxy.test:3128"');
    expect(d.text).toContain('Environment="NO_PROXY=localhost,127.0.0.1,::1,sea.hub,b.example"');
    expect(d.warning).toMatch(/one proxy for every registry: http:\/\/proxy\.test:3128 \(configs\["a\.example"\]\.proxy\)/);
    expect(d.warning).not.toContain("p%40ss");
  });
});
