import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../../src/engine/build";
import { applyCluster, resetCluster, resolveClusterImage } from "../../../../src/engine/cluster";
import { parseClusterSpec, type ClusterSpec } from "../../../../src/engine/cluster/spec";
import { startExampleUpstream, type ExampleUpstream } from "../../../support/upstream";
import { openBed, type Bed } from "../../../support/bed";
import { startContainerd, type TestContainerd } from "../../../support/containerd";
import { onHost, runOnHost } from "../../../support/hosts";

/**
 * A cluster image that carries container images, run onto sandbox hosts 127.0.10.184-186 (one
 * master, two nodes) through the whole engine: the build caches docker.io images (fetched from
 * the example's loopback stand-in for docker.io, through a session mirror) into the image's
 * registry/; apply serves that registry from the master only and points every host's containerd
 * at it. Judged by a real containerd on a node pulling `docker.io/library/...` under its own
 * name, with the stand-in stopped, and by the registry's own access log.
 */
const FIRST = 184;
const NAME = "reg-e2e";
const DATA_ROOT = `/var/lib/sealant/${NAME}`;
const CERTS = "/etc/containerd/certs.d";
const LOG = `${DATA_ROOT}/run/registry.log`;

const KUBEFILE = `FROM scratch
LABEL io.sealant.runtime=hooks
COPY manifests manifests
COPY imageList .
`;
const MANIFEST = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      initContainers:
        - name: init
          image: busybox:1.36
      containers:
        - name: web
          image: docker.io/library/nginx:1.25
`;

describe("a cluster image with container images, served by the cluster's registry", () => {
  let upstream: ExampleUpstream | undefined;
  let bed: Bed;
  let image: string;
  let master: string;
  let nodes: string[];
  let registryLayer: string;
  let containerd: TestContainerd;

  beforeAll(async () => {
    upstream = await startExampleUpstream();
    bed = await openBed(3, FIRST, { mirrors: upstream.mirrors, env: {} });
    master = bed.ips[0]!;
    nodes = bed.ips.slice(1);
    const context = await mkdtemp(join(bed.home, "ctx-"));
    await mkdir(join(context, "manifests"));
    await writeFile(join(context, "Kubefile"), KUBEFILE);
    await writeFile(join(context, "manifests/web.yaml"), MANIFEST);
    await writeFile(join(context, "imageList"), "# pulled by a job at run time\ndocker.io/library/redis:7.2\n");
    const r = await build(bed.session, { context, tag: "example/registry:1" });
    image = `example/registry:1@${r.digest}`;
    // Whatever the hosts pull from now on can only come from the cluster's registry.
    await upstream.stop();
    upstream = undefined;
    const resolved = await resolveClusterImage(bed.session, image);
    const layers = [...resolved.platforms.values()][0]!.layers;
    expect(layers.filter((l) => l.registryOnly)).toHaveLength(1);
    registryLayer = layers.find((l) => l.registryOnly)!.digest.replace(/^sha256:/, "");
    expect(resolved.metadata.containerImages.map((c) => c.image).sort()).toEqual([
      "docker.io/library/busybox:1.36",
      "docker.io/library/nginx:1.25",
      "docker.io/library/redis:7.2",
    ]);
  }, 180_000);
  afterAll(async () => {
    await upstream?.stop();
    await bed?.close();
  });

  const spec = (registry: Record<string, unknown>): ClusterSpec =>
    parseClusterSpec({
      name: NAME,
      image,
      hosts: [
        { ips: [master], roles: ["master"] },
        { ips: nodes, roles: ["node"] },
      ],
      ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts },
      registry,
    });
  const apply = (s: ClusterSpec) => applyCluster({ session: bed.session, spec: s, onEvent: (e) => bed.events.push(e) });
  const registryProcesses = () => onHost(bed.sandbox, master, `pgrep -fc '[s]erve ${DATA_ROOT}/registry/config.yml' || true`);
  const pull = async (ref: string) => {
    const r = await containerd.ctr(`images pull --hosts-dir ${CERTS} ${ref}`);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  };

  it("GIVEN a plain-HTTP registry spec WHEN applied THEN the master serves it and containerd on a node pulls docker.io images under their own names from it", async () => {
    const r = await apply(spec({ insecure: true }));
    expect(r.plan.actions).toEqual(["create"]);
    expect(r.plan.phases.map((p) => p.name)).toContain("registry");
    expect(await registryProcesses()).toBe("1");
    expect(await onHost(bed.sandbox, master, `curl -s http://${master}:5000/v2/_catalog`)).toBe(
      '{"repositories":["docker.io/library/busybox","docker.io/library/nginx","docker.io/library/redis"]}',
    );

    // Every host: sea.hub is the master; containerd's certs.d sends docker.io to the master's registry.
    for (const ip of bed.ips) {
      expect(await onHost(bed.sandbox, ip, "grep ' sea.hub$' /etc/hosts"), ip).toBe(`${master} sea.hub`);
      expect(await onHost(bed.sandbox, ip, `ls ${CERTS}`), ip).toBe("docker.io\nsea.hub:5000");
      expect(await onHost(bed.sandbox, ip, `cat ${CERTS}/docker.io/hosts.toml`), ip).toContain(`[host."http://${master}:5000/v2/docker.io"]`);
    }
    expect(await onHost(bed.sandbox, nodes[1]!, "curl -s -o /dev/null -w '%{http_code}' http://sea.hub:5000/v2/")).toBe("200");

    containerd = await startContainerd(bed, nodes[0]!);
    await pull("docker.io/library/nginx:1.25");
    // ctr takes full names only (the CRI normalises busybox:1.36 to this).
    await pull("docker.io/library/busybox:1.36");
    const list = (await containerd.ctr("images ls -q")).stdout.split("\n").sort();
    expect(list).toEqual(["docker.io/library/busybox:1.36", "docker.io/library/nginx:1.25"]);
    const log = await onHost(bed.sandbox, master, `cat ${LOG}`);
    expect(log).toMatch(/"(HEAD|GET) \/v2\/docker\.io\/library\/nginx\/manifests\/1\.25\?ns=docker\.io HTTP\/1\.1" 200/);
    expect(log).toMatch(/"GET \/v2\/docker\.io\/library\/busybox\/blobs\/sha256:[0-9a-f]{64}\?ns=docker\.io HTTP\/1\.1" 200/);
    // (All hosts share one loopback stack, so the log's client address says nothing; the user agent does.)
    expect(log).toMatch(/"GET \/v2\/docker\.io\/library\/nginx\/blobs\/sha256:[0-9a-f]{64}\?ns=docker\.io HTTP\/1\.1" 200 \d+ "" "containerd\//);
  }, 180_000);

  it("GIVEN the applied cluster THEN the registry's data went only to the registry host", async () => {
    const masterLayers = (await onHost(bed.sandbox, master, `ls ${DATA_ROOT}/layers`)).split("\n").sort();
    expect(masterLayers).toContain(registryLayer);
    expect(masterLayers.every((l) => !l.endsWith(".noregistry"))).toBe(true);
    expect(await onHost(bed.sandbox, master, `ls ${DATA_ROOT}/images/*/rootfs/registry/docker/registry/v2/repositories/docker.io/library`)).toBe(
      "busybox\nnginx\nredis",
    );
    for (const ip of nodes) {
      const layers = (await onHost(bed.sandbox, ip, `ls ${DATA_ROOT}/layers`)).split("\n").sort();
      expect(layers, ip).toEqual(
        masterLayers
          .filter((l) => l !== registryLayer)
          .map((l) => `${l}.noregistry`)
          .sort(),
      );
      expect(await onHost(bed.sandbox, ip, `ls -d ${DATA_ROOT}/images/*/rootfs/registry 2>/dev/null || echo none`), ip).toBe("none");
      expect(await onHost(bed.sandbox, ip, `ls ${DATA_ROOT}/images/*/rootfs`), ip).toBe("imageList\nmanifests");
      expect(await onHost(bed.sandbox, ip, `pgrep -fc '[s]erve ${DATA_ROOT}/registry/config.yml' || true`), ip).toBe("0");
    }
  });

  it("GIVEN the applied cluster WHEN applied again THEN nothing runs and the registry keeps running", async () => {
    const pid = await onHost(bed.sandbox, master, `cat ${DATA_ROOT}/run/registry.pid`);
    const r = await apply(spec({ insecure: true }));
    expect(r.plan.phases).toEqual([]);
    expect(await onHost(bed.sandbox, master, `cat ${DATA_ROOT}/run/registry.pid`)).toBe(pid);
  }, 120_000);

  it("GIVEN the cluster WHEN switched to TLS (sealant's own CA) THEN the registry serves HTTPS only and containerd pulls over verified TLS", async () => {
    const r = await apply(spec({}));
    expect(r.plan.actions).toEqual(["reconfigure"]);
    expect(await registryProcesses()).toBe("1");
    const ca = `${CERTS}/docker.io/sealant-registry-ca.crt`;
    for (const ip of bed.ips) {
      const toml = await onHost(bed.sandbox, ip, `cat ${CERTS}/docker.io/hosts.toml`);
      expect(toml, ip).toContain(`[host."https://${master}:5000/v2/docker.io"]`);
      expect(toml, ip).toContain(`ca = "${ca}"`);
      expect(toml, ip).not.toContain("http://");
      expect(await onHost(bed.sandbox, ip, `curl -s -o /dev/null -w '%{http_code}' --cacert ${ca} https://sea.hub:5000/v2/`), ip).toBe("200");
    }
    // Not trusted without the CA, and no plain HTTP any more.
    expect((await runOnHost(bed.sandbox, nodes[1]!, `curl -sf -o /dev/null https://sea.hub:5000/v2/`)).code).not.toBe(0);
    expect(await onHost(bed.sandbox, nodes[1]!, `curl -s -o /dev/null -w '%{http_code}' http://${master}:5000/v2/`)).toBe("400");

    await pull("docker.io/library/redis:7.2");
    expect(await onHost(bed.sandbox, master, `cat ${LOG}`)).toMatch(
      /"(HEAD|GET) \/v2\/docker\.io\/library\/redis\/manifests\/7\.2\?ns=docker\.io HTTP\/1\.1" 200/,
    );
    // An image pulled over HTTP before resolves again over HTTPS.
    expect((await containerd.ctr("images rm docker.io/library/nginx:1.25")).code).toBe(0);
    await pull("docker.io/library/nginx:1.25");
    expect((await containerd.ctr("images ls -q")).stdout.split("\n").sort()).toEqual([
      "docker.io/library/busybox:1.36",
      "docker.io/library/nginx:1.25",
      "docker.io/library/redis:7.2",
    ]);
  }, 180_000);

  it("GIVEN the cluster WHEN reset THEN the registry is stopped and the hosts entries, certs.d files and data roots are gone", async () => {
    await resetCluster({ session: bed.session, spec: spec({}) });
    expect(await registryProcesses()).toBe("0");
    expect((await runOnHost(bed.sandbox, nodes[0]!, `curl -s --max-time 2 http://${master}:5000/v2/`)).code).not.toBe(0);
    for (const ip of bed.ips) {
      expect(await onHost(bed.sandbox, ip, "cat /etc/hosts"), ip).not.toMatch(/sealant|sea\.hub/);
      expect(await onHost(bed.sandbox, ip, `ls -A ${CERTS} 2>/dev/null || true`), ip).toBe("");
      expect(await onHost(bed.sandbox, ip, "ls -A /var/lib/sealant/ 2>/dev/null || true"), ip).toBe("");
    }
  }, 120_000);
});
