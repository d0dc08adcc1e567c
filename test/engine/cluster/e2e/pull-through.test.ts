import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../../src/engine/build";
import { applyCluster, resetCluster } from "../../../../src/engine/cluster";
import { parseClusterfile, type ClusterSpec } from "../../../../src/engine/cluster/spec";
import { openBed, type Bed } from "../../../support/bed";
import { startContainerd, type TestContainerd } from "../../../support/containerd";
import { onHost, runOnHost } from "../../../support/hosts";
import { startExampleUpstream, type ExampleUpstream } from "../../../support/upstream";

/**
 * registry.pullThrough through the whole engine on sandbox hosts 127.0.10.106-108 (one master,
 * two nodes): the cluster image carries docker.io/library/nginx:1.25 only; the Clusterfile names
 * the example's loopback stand-ins for docker.io and quay.io as upstreams. Judged by a real
 * containerd on each node pulling images the cluster image lacks by their upstream names, the
 * second node after the stand-ins are stopped.
 */
const FIRST = 106;
const NAME = "pt-e2e";
const DATA_ROOT = `/var/lib/sealant/${NAME}`;
const CERTS = "/etc/containerd/certs.d";

describe("a cluster whose registry caches docker.io and quay.io", () => {
  let upstream: ExampleUpstream | undefined;
  let bed: Bed;
  let image: string;
  let master: string;
  let nodes: string[];
  let spec: ClusterSpec;

  beforeAll(async () => {
    upstream = await startExampleUpstream();
    bed = await openBed(3, FIRST, { mirrors: upstream.mirrors, env: {} });
    [master = "", ...nodes] = bed.ips;
    const context = await mkdtemp(join(bed.home, "ctx-"));
    await mkdir(join(context, "manifests"));
    await writeFile(join(context, "Kubefile"), "FROM scratch\nLABEL io.sealant.runtime=hooks\nCOPY imageList .\n");
    await writeFile(join(context, "imageList"), "docker.io/library/nginx:1.25\n");
    const r = await build(bed.session, { context, tag: "example/pull-through:1" });
    image = `example/pull-through:1@${r.digest}`;
    // A sealant Clusterfile as a user writes it; the upstream URLs are the stand-ins'.
    spec = parseClusterfile(`apiVersion: sealant.io/v1
kind: Cluster
metadata: {name: ${NAME}}
spec:
  image: ${image}
  hosts:
    - {ips: [${master}], roles: [master]}
    - {ips: [${nodes.join(", ")}], roles: [node]}
  ssh: {privateKeyPath: ${bed.sandbox.ssh.pk}, knownHosts: ${bed.sandbox.ssh.knownHosts}}
  registry:
    pullThrough:
      - {domain: docker.io, url: "http://${upstream.mirrors["docker.io"]}"}
      - {domain: quay.io, url: "http://${upstream.mirrors["quay.io"]}", port: 5031}
`).spec;
  }, 180_000);
  afterAll(async () => {
    await upstream?.stop();
    await bed?.close();
  });

  const pull = async (c: TestContainerd, ref: string) => {
    const r = await c.ctr(`images pull --hosts-dir ${CERTS} ${ref}`);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  };
  const caches = () => onHost(bed.sandbox, master, `pgrep -fc '[s]erve ${DATA_ROOT}/cache/' || true`);

  it("GIVEN the Clusterfile WHEN applied THEN the master runs one cache per upstream and a node's containerd pulls images the cluster image lacks by their upstream names", async () => {
    const r = await applyCluster({ session: bed.session, spec, onEvent: (e) => bed.events.push(e) });
    expect(r.plan.phases.map((p) => p.name)).toEqual(expect.arrayContaining(["registry", "pull-through"]));
    expect(await caches()).toBe("2");
    for (const ip of bed.ips) {
      expect(await onHost(bed.sandbox, ip, `ls ${CERTS}`), ip).toBe("docker.io\nquay.io\nsea.hub:5000");
      // The cluster's tree first (nginx is in the image), then the cache; nothing after it.
      const toml = await onHost(bed.sandbox, ip, `cat ${CERTS}/docker.io/hosts.toml`);
      expect(toml.indexOf(`[host."https://${master}:5000/v2/docker.io"]`)).toBeLessThan(toml.indexOf(`[host."https://${master}:5010"]`));
      expect(toml).toContain(`server = "https://${master}:5010"`);
      expect(await onHost(bed.sandbox, ip, `cat ${CERTS}/quay.io/hosts.toml`)).toContain(`[host."https://${master}:5031"]`);
    }
    const first = await startContainerd(bed, nodes[0]!);
    await pull(first, "docker.io/library/nginx:1.25");
    await pull(first, "docker.io/library/busybox:1.36");
    await pull(first, "quay.io/prometheus/node-exporter:v1.7.0");
    expect(await onHost(bed.sandbox, master, `cat ${DATA_ROOT}/run/cache-docker.io.log`)).toMatch(/library\/busybox\/manifests\/1\.36/);
    expect(await onHost(bed.sandbox, master, `cat ${DATA_ROOT}/run/cache-docker.io.log`)).not.toMatch(/library\/nginx/);
  }, 180_000);

  it("GIVEN the upstreams gone WHEN the other node pulls the same images THEN the caches serve them; applying again changes nothing", async () => {
    await upstream!.stop();
    upstream = undefined;
    const second = await startContainerd(bed, nodes[1]!);
    await pull(second, "docker.io/library/busybox:1.36");
    await pull(second, "quay.io/prometheus/node-exporter:v1.7.0");
    const failed = await second.ctr(`images pull --hosts-dir ${CERTS} docker.io/library/redis:7.2`);
    expect(failed.code).not.toBe(0);
    const again = await applyCluster({ session: bed.session, spec, onEvent: (e) => bed.events.push(e) });
    expect(again.plan.phases).toEqual([]);
  }, 120_000);

  it("GIVEN the upstreams taken out of the Clusterfile WHEN applied THEN the caches stop and docker.io is the cluster registry's alone again", async () => {
    const registry = { ...spec.registry };
    delete registry.pullThrough;
    const without: ClusterSpec = { ...spec, registry };
    const r = await applyCluster({ session: bed.session, spec: without, onEvent: (e) => bed.events.push(e) });
    expect(r.plan.phases.map((p) => p.name)).toContain("pull-through");
    expect(await caches()).toBe("0");
    for (const ip of bed.ips) {
      expect(await onHost(bed.sandbox, ip, `ls ${CERTS}`), ip).toBe("docker.io\nsea.hub:5000");
      expect(await onHost(bed.sandbox, ip, `cat ${CERTS}/docker.io/hosts.toml`), ip).not.toContain(":5010");
    }
    spec = without;
  }, 120_000);

  it("GIVEN the cluster WHEN reset THEN the caches are stopped, their data and the hosts' files gone", async () => {
    await resetCluster({ session: bed.session, spec });
    expect(await caches()).toBe("0");
    expect((await runOnHost(bed.sandbox, nodes[0]!, `curl -sk --max-time 2 https://${master}:5010/v2/`)).code).not.toBe(0);
    for (const ip of bed.ips) {
      expect(await onHost(bed.sandbox, ip, `ls -A ${CERTS} 2>/dev/null || true`), ip).toBe("");
      expect(await onHost(bed.sandbox, ip, "ls -A /var/lib/sealant/ 2>/dev/null || true"), ip).toBe("");
    }
  }, 120_000);
});
