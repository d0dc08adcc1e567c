import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../../src/engine/build";
import { applyCluster, resetCluster } from "../../../../src/engine/cluster";
import { loadClusterfile, type ClusterSpec } from "../../../../src/engine/cluster/spec";
import { openBed, type Bed } from "../../../support/bed";
import { onHost, runOnHost } from "../../../support/hosts";
import { startRegistry, type TestRegistry } from "../../../support/registry";
import { skopeoCopy, writeOciLayout } from "../../../support/tools";
import { startExampleUpstream, type ExampleUpstream } from "../../../support/upstream";
import {
  CRI_SOCKET as SOCKET,
  CERTS_DIR as CERTS,
  CONTAINERD_CONFIG_FILE as CONFIG,
  CRI_CONTAINERD_CONFIG as CONTAINERD_CONFIG,
  crictl,
} from "../../../support/cri";

/**
 * `registry.registries` through a whole apply, on sandbox hosts 127.0.10.230-231: a Clusterfile
 * names a registries.yaml (the file builds read) whose docker.io mirror is a registry behind TLS
 * with a private CA and a login. The node's real containerd, with its CRI as the Kubernetes
 * image's containerd.sh sets it up, pulls the cluster image's busybox from the cluster registry
 * and an image the cluster image lacks, by its docker.io name, from the user's mirror (tried after
 * the cluster registry). Dropped from the Clusterfile, the mirror leaves the hosts; reset leaves
 * nothing.
 */
const FIRST = 230;
const NAME = "user-reg";
const PASSWORD = "User-reg-e2e-pw";

describe("the user's registries (a registries.yaml the Clusterfile names) on a cluster's hosts", () => {
  let upstream: ExampleUpstream | undefined;
  let mirror: TestRegistry;
  let bed: Bed;
  let image: string;
  let master: string;
  let node: string;
  let dir: string;

  beforeAll(async () => {
    upstream = await startExampleUpstream();
    mirror = await startRegistry({ auth: "htpasswd", tls: true, privateCa: true, users: [{ username: "robot", password: PASSWORD }] });
    bed = await openBed(2, FIRST, { mirrors: upstream.mirrors, env: {} });
    [master, node] = bed.ips as [string, string];
    const context = await mkdtemp(join(bed.home, "ctx-"));
    await mkdir(join(context, "manifests"));
    await writeFile(join(context, "Kubefile"), "FROM scratch\nLABEL io.sealant.runtime=hooks\nCOPY manifests manifests\n");
    await writeFile(
      join(context, "manifests/pod.yaml"),
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: "busybox:1.36"}]}\n',
    );
    const r = await build(bed.session, { context, tag: "example/user-reg:1" });
    image = `example/user-reg:1@${r.digest}`;
    await upstream.stop();
    upstream = undefined;
    // An image the cluster image does not carry, only in the user's mirror.
    const layout = await writeOciLayout(join(bed.home, "extra"), { tag: "1" });
    await skopeoCopy(`oci:${layout.dir}:1`, `docker://${mirror.host}/library/extra:1`, { destCreds: { username: "robot", password: PASSWORD } });
    dir = await mkdtemp(join(bed.home, "cf-"));
    await writeFile(join(dir, "mirror-ca.pem"), mirror.tlsCert!);
    await writeFile(
      join(dir, "registries.yaml"),
      `mirrors:\n  docker.io:\n    endpoint: ["https://${mirror.host}"]\nconfigs:\n  "${mirror.host}":\n    auth: {username: robot, password: ${PASSWORD}}\n    tls: {ca_file: mirror-ca.pem}\n`,
    );
  }, 240_000);
  afterAll(async () => {
    await upstream?.stop();
    await runOnHost(bed.sandbox, node, "[ -f /run/ctd/pid ] && kill $(cat /run/ctd/pid) || true").catch(() => undefined);
    await bed?.close();
    await mirror?.stop();
  });

  /** The Clusterfile, with or without `registries: registries.yaml`. */
  const spec = async (registries: boolean): Promise<ClusterSpec> => {
    await writeFile(
      join(dir, "Clusterfile"),
      `apiVersion: sealant.io/v1
kind: Cluster
metadata: {name: ${NAME}}
spec:
  image: ${image}
  hosts:
    - {ips: [${master}], roles: [master]}
    - {ips: [${node}], roles: [node]}
  ssh: {privateKeyPath: ${bed.sandbox.ssh.pk}, knownHosts: ${bed.sandbox.ssh.knownHosts}}
${registries ? "  registry:\n    registries: registries.yaml\n" : ""}`,
    );
    return (await loadClusterfile(join(dir, "Clusterfile"))).spec;
  };

  it("GIVEN the Clusterfile names registries.yaml WHEN applied THEN the node's containerd pulls the image's busybox from the cluster registry and the mirror's image by its docker.io name with the CA and the login", async () => {
    await onHost(bed.sandbox, node, `mkdir -p /etc/containerd /run/ctd && cat > ${CONFIG} << 'EOF'\n${CONTAINERD_CONFIG}EOF`);
    const events: unknown[] = [];
    await applyCluster({ session: bed.session, spec: await spec(true), onEvent: (e) => events.push(e) });
    expect(JSON.stringify(events)).not.toContain(PASSWORD);
    const hub = await onHost(bed.sandbox, node, `cat ${CERTS}/docker.io/hosts.toml`);
    expect(hub.indexOf(`[host."https://${master}:5000/v2/docker.io"]`)).toBeGreaterThan(0);
    expect(hub.indexOf(`[host."https://${mirror.host}"]`)).toBeGreaterThan(hub.indexOf(`${master}:5000`));

    await onHost(bed.sandbox, node, `setsid -f sh -c 'echo $$ > /run/ctd/pid; exec containerd --config ${CONFIG}' > /run/ctd/log 2>&1 < /dev/null`);
    await onHost(
      bed.sandbox,
      node,
      `for i in $(seq 1 100); do ctr -a ${SOCKET} version > /dev/null 2>&1 && exit 0; sleep 0.1; done; cat /run/ctd/log >&2; exit 1`,
    );
    for (const ref of ["docker.io/library/busybox:1.36", "docker.io/library/extra:1"]) {
      const pulled = await runOnHost(bed.sandbox, node, `${crictl()} pull ${ref}`);
      expect(pulled.code, `${ref}: ${pulled.stderr}`).toBe(0);
    }
    const log = await mirror.logTail(300);
    expect(log).toMatch(/"HEAD \/v2\/library\/extra\/manifests\/1\?ns=docker\.io HTTP\/1\.1" 200 .*containerd\//);
    expect(log).not.toContain("busybox");
    await onHost(bed.sandbox, node, "kill $(cat /run/ctd/pid); rm -f /run/ctd/pid");
  }, 240_000);

  it("GIVEN registries dropped from the Clusterfile WHEN applied THEN the hosts are pointed at the mirror no more; reset leaves nothing", async () => {
    const applied = await applyCluster({ session: bed.session, spec: await spec(false) });
    expect(
      applied.plan.phases
        .flatMap((p) => p.steps)
        .filter((s) => s.kind === "mirrors")
        .map((s) => s.host),
    ).toEqual([master, node]);
    expect(await onHost(bed.sandbox, node, `cat ${CERTS}/docker.io/hosts.toml`)).not.toContain(mirror.host);
    expect(await onHost(bed.sandbox, node, `ls ${CERTS}/docker.io`)).toBe("hosts.toml\nsealant-registry-ca.crt");
    expect(await onHost(bed.sandbox, node, `cat ${CONFIG}`)).not.toContain("robot");
    await applyCluster({ session: bed.session, spec: await spec(true) });
    await resetCluster({ session: bed.session, spec: await spec(true) });
    expect(await onHost(bed.sandbox, node, `ls -A ${CERTS} 2>/dev/null || true`)).toBe("");
    expect(await onHost(bed.sandbox, node, `cat ${CONFIG}`)).toBe(CONTAINERD_CONFIG.trimEnd());
  }, 240_000);
});
