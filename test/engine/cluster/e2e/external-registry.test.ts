import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../../src/engine/build";
import { applyCluster, resetCluster } from "../../../../src/engine/cluster";
import { externalClient, pushImageRegistry } from "../../../../src/engine/cluster/host/external-registry";
import { resolveClusterImage } from "../../../../src/engine/cluster/host/image";
import { parseClusterSpec, type ClusterSpec } from "../../../../src/engine/cluster/spec";
import { staticCredentials } from "../../../../src/engine/image/credentials";
import { openBed, type Bed } from "../../../support/bed";
import { onHost, runOnHost } from "../../../support/hosts";
import { startRegistry, type TestRegistry } from "../../../support/registry";
import { startExampleUpstream, type ExampleUpstream } from "../../../support/upstream";
import {
  CRI_SOCKET as SOCKET,
  CERTS_DIR as CERTS,
  CONTAINERD_CONFIG_FILE as CONFIG,
  CRI_CONTAINERD_CONFIG as CONTAINERD_CONFIG,
  crictl,
} from "../../../support/cri";

/**
 * External registry mode on sandbox hosts 127.0.10.61-62 (a master and a node): a real
 * docker-registry behind TLS with a private CA and htpasswd stands in for Harbor. apply pushes
 * the image's cached container images there (no registry of the cluster's own), and a real
 * containerd with its CRI on the node — configured as the Kubernetes image's containerd.sh
 * configures it, `config_path` at certs.d — pulls `docker.io/library/busybox:1.36` by that
 * name through crictl, with the CA and the login sealant gave it, the stand-in upstream gone.
 */
const FIRST = 61;
const NAME = "ext-reg";
const DATA_ROOT = `/var/lib/sealant/${NAME}`;
const NAMESPACE = "sealant";
const PASSWORD = "Harbor-S3cret-pw-61";

const KUBEFILE = `FROM scratch
LABEL io.sealant.runtime=hooks
COPY manifests manifests
`;
const MANIFEST = `apiVersion: v1
kind: Pod
metadata: { name: web }
spec:
  initContainers: [{ name: init, image: "busybox:1.36" }]
  containers: [{ name: web, image: "docker.io/library/nginx:1.25" }]
`;

describe("an external registry (TLS with a private CA, htpasswd) instead of the cluster's own", () => {
  let upstream: ExampleUpstream | undefined;
  let harbor: TestRegistry;
  let bed: Bed;
  let image: string;
  let master: string;
  let node: string;
  let psLog: string;

  beforeAll(async () => {
    upstream = await startExampleUpstream();
    harbor = await startRegistry({ auth: "htpasswd", tls: true, privateCa: true, users: [{ username: "robot", password: PASSWORD }] });
    bed = await openBed(2, FIRST, { mirrors: upstream.mirrors, env: {} });
    [master, node] = bed.ips as [string, string];
    const context = await mkdtemp(join(bed.home, "ctx-"));
    await mkdir(join(context, "manifests"));
    await writeFile(join(context, "Kubefile"), KUBEFILE);
    await writeFile(join(context, "manifests/pod.yaml"), MANIFEST);
    const r = await build(bed.session, { context, tag: "example/ext-registry:1" });
    image = `example/ext-registry:1@${r.digest}`;
    // From now on the hosts can get images only from the external registry.
    await upstream.stop();
    upstream = undefined;
  }, 240_000);
  afterAll(async () => {
    await upstream?.stop();
    // The containerd this test started, by its pid (the host's teardown would end it too).
    await runOnHost(bed.sandbox, node, "[ -f /run/ctd/pid ] && kill $(cat /run/ctd/pid) || true").catch(() => undefined);
    await bed?.close();
    await harbor?.stop();
  });

  const port = () => Number(harbor.host.split(":")[1]);
  const endpoint = () => harbor.host;
  const spec = (external: Record<string, unknown>, name = NAME): ClusterSpec =>
    parseClusterSpec({
      name,
      image,
      hosts: [
        { ips: [master], roles: ["master"] },
        { ips: [node], roles: ["node"] },
      ],
      ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts },
      registry: { external: { domain: "127.0.0.1", port: port(), namespace: NAMESPACE, username: "robot", password: PASSWORD, ...external } },
    });
  const apply = (s: ClusterSpec) =>
    applyCluster({ session: bed.session, spec: s, onEvent: (e) => (bed.events.push(e), process.env["EXT_DEBUG"] && console.log(JSON.stringify(e))) });

  it("GIVEN registry.external WHEN planned THEN the plan pushes the images to it and serves no registry, naming no password", async () => {
    const plan = await applyCluster({ session: bed.session, spec: spec({ ca: harbor.tlsCert! }), dryRun: true });
    const steps = plan.plan.phases.flatMap((p) => p.steps);
    expect(plan.plan.phases.map((p) => p.name)).not.toContain("registry");
    expect(steps.filter((s) => s.kind === "registry")).toEqual([]);
    expect(steps.filter((s) => s.kind === "push").map((s) => s.description)).toEqual([`push 2 container images to ${endpoint()}`]);
    expect(steps.filter((s) => s.kind === "mirrors").map((s) => s.host)).toEqual([master, node]);
    expect(JSON.stringify(plan)).not.toContain(PASSWORD);
  }, 120_000);

  it("GIVEN the node's containerd config WHEN applied THEN the images are in the external registry and the node's containerd pulls busybox by its upstream name with the CA and the login", async () => {
    await onHost(bed.sandbox, node, `mkdir -p /etc/containerd /run/ctd && cat > ${CONFIG} << 'EOF'\n${CONTAINERD_CONFIG}EOF`);
    // Every process's command line on both hosts, sampled while apply runs.
    psLog = `/tmp/ps-${NAME}.log`;
    for (const ip of bed.ips)
      await onHost(bed.sandbox, ip, `setsid -f sh -c 'while [ ! -e /tmp/ps-stop ]; do ps -eo args >> ${psLog}; sleep 0.02; done' > /dev/null 2>&1 < /dev/null`);
    let r;
    try {
      r = await apply(spec({ ca: harbor.tlsCert! }));
    } finally {
      for (const ip of bed.ips) await onHost(bed.sandbox, ip, "touch /tmp/ps-stop");
    }
    expect(r.plan.actions).toEqual(["create"]);
    expect(r.plan.phases.map((p) => p.name)).toEqual(expect.arrayContaining(["push", "mirrors"]));

    // In the registry, under the namespace and the source registry: the engine's client, as any user's.
    const client = await externalClient(
      { domain: "127.0.0.1", port: port(), ca: harbor.tlsCert! },
      staticCredentials({ username: "robot", password: PASSWORD }),
    );
    expect(await client.listTags(`${NAMESPACE}/docker.io/library/busybox`)).toEqual(["1.36"]);
    expect(await client.listTags(`${NAMESPACE}/docker.io/library/nginx`)).toEqual(["1.25"]);
    client.close();

    // No registry of the cluster's own anywhere; no registry/ data sent to any host.
    for (const ip of bed.ips) {
      expect(await onHost(bed.sandbox, ip, `pgrep -fc '[s]erve ${DATA_ROOT}/registry/config.yml' || true`), ip).toBe("0");
      expect(await onHost(bed.sandbox, ip, `ls -d ${DATA_ROOT}/images/*/rootfs/registry 2>/dev/null || echo none`), ip).toBe("none");
      expect(await onHost(bed.sandbox, ip, `ls ${CERTS}`), ip).toBe(`${endpoint()}\ndocker.io`);
      const toml = await onHost(bed.sandbox, ip, `cat ${CERTS}/docker.io/hosts.toml`);
      expect(toml, ip).toContain(`[host."https://${endpoint()}/v2/${NAMESPACE}/docker.io"]`);
      expect(toml, ip).toContain(`ca = "${CERTS}/docker.io/sealant-registry-ca.crt"`);
    }
    // The node's containerd config got the login, readable by root only.
    expect(await onHost(bed.sandbox, node, `stat -c %a ${CONFIG}`)).toBe("600");
    expect(await onHost(bed.sandbox, node, `grep -A2 -F 'registry.configs."${endpoint()}".auth' ${CONFIG}`)).toBe(
      `[plugins."io.containerd.grpc.v1.cri".registry.configs."${endpoint()}".auth]\n  username = "robot"\n  password = "${PASSWORD}"`,
    );
    expect(await onHost(bed.sandbox, node, `stat -c %a ${DATA_ROOT}/registry/containerd-auth.toml`)).toBe("600");

    await onHost(bed.sandbox, node, `setsid -f sh -c 'echo $$ > /run/ctd/pid; exec containerd --config ${CONFIG}' > /run/ctd/log 2>&1 < /dev/null`);
    await onHost(
      bed.sandbox,
      node,
      `for i in $(seq 1 100); do ctr -a ${SOCKET} version > /dev/null 2>&1 && exit 0; sleep 0.1; done; cat /run/ctd/log >&2; exit 1`,
    );
    const pulled = await runOnHost(bed.sandbox, node, `${crictl()} pull docker.io/library/busybox:1.36`);
    expect(pulled.code, `${pulled.stdout}\n${pulled.stderr}\n${await onHost(bed.sandbox, node, "tail -n 20 /run/ctd/log")}`).toBe(0);
    expect(await onHost(bed.sandbox, node, `${crictl()} images -o json`)).toContain('"docker.io/library/busybox:1.36"');
    // Fetched from the external registry: refused without the login (401), then authorized with it.
    const log = await harbor.logTail(400);
    expect(log).toMatch(
      new RegExp(`GET /v2/${NAMESPACE}/docker\\.io/library/busybox/blobs/sha256:[0-9a-f]{64}\\?ns=docker\\.io HTTP/1\\.1" 200 .*containerd/`),
    );
    expect(log).toMatch(/"HEAD \/v2\/sealant\/docker\.io\/library\/busybox\/manifests\/1\.36\?ns=docker\.io HTTP\/1\.1" 401 .*containerd\//);
    expect(log).toMatch(
      /msg="authorized request".*http\.request\.uri="\/v2\/sealant\/docker\.io\/library\/busybox\/manifests\/1\.36\?ns=docker\.io" http\.request\.useragent="containerd\//,
    );

    // The password: in no process's command line, no event, the record, or the plan.
    for (const ip of bed.ips) expect(await onHost(bed.sandbox, ip, `grep -c -F -- ${PASSWORD} ${psLog} || true`), ip).toBe("0");
    expect(await onHost(bed.sandbox, master, `wc -l < ${psLog}`)).not.toBe("0");
    expect(JSON.stringify(bed.events)).not.toContain(PASSWORD);
    expect(JSON.stringify(r.plan)).not.toContain(PASSWORD);
    expect(await onHost(bed.sandbox, master, `cat ${DATA_ROOT}/state.json`)).not.toContain(PASSWORD);
  }, 300_000);

  it("GIVEN a container runtime script that rewrote containerd's config WHEN sealant's script runs after it (as the Kubernetes runtime does) THEN the login is back", async () => {
    await onHost(bed.sandbox, master, `mkdir -p /etc/containerd && cat > ${CONFIG} << 'EOF'\n${CONTAINERD_CONFIG}EOF`);
    expect(await onHost(bed.sandbox, master, `sh ${DATA_ROOT}/registry/containerd-auth.sh`)).toBe("changed");
    expect(await onHost(bed.sandbox, master, `sh ${DATA_ROOT}/registry/containerd-auth.sh`)).toBe("same");
    expect(await onHost(bed.sandbox, master, `grep -c -F 'registry.configs."${endpoint()}".auth' ${CONFIG}`)).toBe("1");
    expect(await onHost(bed.sandbox, master, `stat -c %a ${CONFIG}`)).toBe("600");
  }, 60_000);

  it("GIVEN the pushed images WHEN applied again or pushed again THEN nothing runs and nothing is uploaded", async () => {
    const again = await apply(spec({ ca: harbor.tlsCert! }));
    expect(again.plan.phases).toEqual([]);
    const client = await externalClient(
      { domain: "127.0.0.1", port: port(), ca: harbor.tlsCert! },
      staticCredentials({ username: "robot", password: PASSWORD }),
    );
    try {
      const r = await pushImageRegistry({
        store: bed.session.store,
        image: await resolveClusterImage(bed.session, image),
        client,
        ext: { namespace: NAMESPACE },
      });
      expect(r).toMatchObject({ images: 2, blobsUploaded: 0, blobsMounted: 0, manifestsPut: 0 });
    } finally {
      client.close();
    }
  }, 120_000);

  it("GIVEN a wrong password WHEN applied THEN it fails naming the registry and the fields to check, never the password", async () => {
    const wrong = "Wrong-pw-61-xyz";
    const caFile = join(bed.home, "harbor-ca.pem");
    await writeFile(caFile, harbor.tlsCert!);
    const err = await apply(spec({ password: wrong, ca: caFile }, "ext-bad")).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toContain(endpoint());
    expect(err!.message).toMatch(/refused the login \(401\): check registry\.external\.username and password/);
    expect(err!.message).not.toContain(wrong);
    await resetCluster({ session: bed.session, spec: spec({ password: wrong, ca: caFile }, "ext-bad"), force: true }).catch(() => undefined);
  }, 120_000);

  it("GIVEN the cluster WHEN reset THEN the login, the hosts.toml files and the data root are gone from every host", async () => {
    await resetCluster({ session: bed.session, spec: spec({ ca: harbor.tlsCert! }) });
    for (const ip of bed.ips) {
      expect(await onHost(bed.sandbox, ip, `ls -A ${CERTS} 2>/dev/null || true`), ip).toBe("");
      expect(await onHost(bed.sandbox, ip, `cat ${CONFIG}`), ip).not.toMatch(/sealant registry auth|robot/);
      expect(await onHost(bed.sandbox, ip, "ls -A /var/lib/sealant/ 2>/dev/null || true"), ip).toBe("");
    }
  }, 120_000);
});
