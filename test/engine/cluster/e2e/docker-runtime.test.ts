/**
 * An image whose hosts run Docker (sealer's layout: `scripts/docker.sh`, no containerd.sh),
 * carrying a docker.io and a quay.io image, applied onto sandbox hosts 127.0.10.86-88 through
 * the whole engine. Judged by what every host was given (daemon.json, certs.d), by the warning
 * the apply gave, and by a real dockerd on a node pulling `nginx:1.25` under its own name from
 * the cluster's registry with every upstream gone — while the quay.io image goes to quay.io.
 */
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../../src/engine/build";
import { applyCluster, resetCluster, type ClusterEvent } from "../../../../src/engine/cluster";
import { parseClusterSpec, type ClusterSpec } from "../../../../src/engine/cluster/spec";
import { openBed, type Bed } from "../../../support/bed";
import { onHost, runOnHost } from "../../../support/hosts";
import { startExampleUpstream, type ExampleUpstream } from "../../../support/upstream";

const FIRST = 86;
const NAME = "docker-e2e";
const KUBEFILE = `FROM scratch
LABEL io.sealant.runtime=hooks
COPY manifests manifests
COPY scripts scripts
`;
const MANIFEST = `apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
    - {name: web, image: nginx:1.25}
    - {name: metrics, image: quay.io/prometheus/node-exporter:v1.7.0}
`;
const DOCKER = "docker -H unix:///run/docker.sock";

describe("an image whose runtime is Docker", () => {
  let upstream: ExampleUpstream | undefined;
  let bed: Bed;
  let image: string;
  let master: string;
  let node: string;
  const events: ClusterEvent[] = [];

  beforeAll(async () => {
    upstream = await startExampleUpstream();
    bed = await openBed(3, FIRST, { mirrors: upstream.mirrors, env: {} });
    [master, node] = [bed.ips[0]!, bed.ips[1]!];
    const context = await mkdtemp(join(bed.home, "ctx-"));
    await mkdir(join(context, "manifests"));
    await mkdir(join(context, "scripts"));
    await writeFile(join(context, "Kubefile"), KUBEFILE);
    await writeFile(join(context, "manifests/web.yaml"), MANIFEST);
    await writeFile(join(context, "scripts/docker.sh"), "#!/bin/sh\n# sealer's layout: installs and starts dockerd (the test starts its own)\n");
    image = `example/docker:1@${(await build(bed.session, { context, tag: "example/docker:1" })).digest}`;
    await upstream.stop();
    upstream = undefined;
  }, 180_000);
  afterAll(async () => {
    await upstream?.stop();
    await bed?.close();
  });

  const spec = (): ClusterSpec =>
    parseClusterSpec({
      name: NAME,
      image,
      hosts: [
        { ips: [master], roles: ["master"] },
        { ips: bed.ips.slice(1), roles: ["node"] },
      ],
      ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts },
    });

  it("GIVEN the apply THEN every host's dockerd is told the docker.io view (TLS, CA in certs.d), and the apply warns that quay.io is not mirrored", async () => {
    await applyCluster({ session: bed.session, spec: spec(), onEvent: (e) => events.push(e) });
    const warnings = events.flatMap((e) => (e.type === "warning" ? [`${e.host}: ${e.text}`] : []));
    expect(warnings.sort()).toEqual(
      bed.ips.map(
        (ip) =>
          `${ip}: dockerd mirrors docker.io only: the image's images from quay.io are pulled by Docker hosts from those registries themselves, not from the cluster registry (a host that cannot reach them fails the pull); use a containerd image, or name them sea.hub:5000/<registry>/<path>`,
      ),
    );
    for (const ip of bed.ips) {
      expect(JSON.parse(await onHost(bed.sandbox, ip, "cat /etc/docker/daemon.json"))).toEqual({ "registry-mirrors": ["https://sea.hub:5001"] });
      expect(await onHost(bed.sandbox, ip, "ls /etc/docker/certs.d/sea.hub:5000 /etc/docker/certs.d/sea.hub:5001")).toMatch(
        /sealant-registry-ca\.crt\n\n.*\nsealant-registry-ca\.crt/,
      );
    }
    const catalog = await onHost(
      bed.sandbox,
      node,
      `curl -s --cacert /etc/docker/certs.d/sea.hub:5001/sealant-registry-ca.crt https://sea.hub:5001/v2/_catalog`,
    );
    expect(JSON.parse(catalog)).toEqual({ repositories: ["library/nginx"] });
  }, 180_000);

  it("a real dockerd on a node pulls nginx:1.25 by its own name from the cluster registry with every upstream gone; quay.io's image goes to quay.io", async () => {
    // Upstream names resolve to a loopback address where nothing listens: no traffic leaves this machine.
    await onHost(bed.sandbox, node, `echo "127.0.0.9 quay.io registry-1.docker.io index.docker.io auth.docker.io" >> /etc/hosts`);
    await onHost(
      bed.sandbox,
      node,
      "setsid -f dockerd --host unix:///run/docker.sock --pidfile /run/dockerd.pid --data-root /var/lib/sealant-real/docker --exec-root /run/docker --bridge none --iptables=false --ip6tables=false --ip-masq=false --storage-driver vfs > /run/dockerd.log 2>&1 < /dev/null",
    );
    try {
      await onHost(
        bed.sandbox,
        node,
        `i=0; until ${DOCKER} version > /dev/null 2>&1; do i=$((i+1)); [ $i -lt 300 ] || { tail -20 /run/dockerd.log >&2; exit 1; }; sleep 0.1; done`,
      );
      const pulled = await runOnHost(bed.sandbox, node, `${DOCKER} pull nginx:1.25 2>&1`);
      expect(pulled.code, pulled.stdout).toBe(0);
      expect(pulled.stdout).toMatch(/Status: Downloaded newer image for nginx:1\.25/);
      const other = await runOnHost(bed.sandbox, node, `${DOCKER} pull quay.io/prometheus/node-exporter:v1.7.0 2>&1`);
      expect(other.code).not.toBe(0);
      expect(other.stdout).toMatch(/quay\.io\/v2\/": dial tcp 127\.0\.0\.9:(443|80): connect: connection refused/);
    } finally {
      await runOnHost(bed.sandbox, node, "kill $(cat /run/dockerd.pid) 2>/dev/null; true");
    }
  }, 180_000);

  it("reset takes back what dockerd was given and stops the view", async () => {
    await resetCluster({ session: bed.session, spec: spec() });
    for (const ip of bed.ips) {
      expect(JSON.parse(await onHost(bed.sandbox, ip, "cat /etc/docker/daemon.json"))).toEqual({});
      expect(await onHost(bed.sandbox, ip, "ls /etc/docker/certs.d 2>/dev/null; ls /var/lib/sealant 2>/dev/null; true")).toBe("");
    }
    expect(await onHost(bed.sandbox, master, `pgrep -fc '[r]egistry-docker-hub|[d]ocker-hub/config.yml' || true`)).toBe("0");
  }, 120_000);
});
