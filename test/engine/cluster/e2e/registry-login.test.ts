import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../../src/engine/build";
import { applyCluster, resetCluster } from "../../../../src/engine/cluster";
import { parseClusterSpec, type ClusterSpec } from "../../../../src/engine/cluster/spec";
import { openBed, type Bed } from "../../../support/bed";
import { onHost, runOnHost } from "../../../support/hosts";
import { startExampleUpstream, type ExampleUpstream } from "../../../support/upstream";
import { CRI_SOCKET as SOCKET, CONTAINERD_CONFIG_FILE as CONFIG, CRI_CONTAINERD_CONFIG as CONTAINERD_CONFIG, crictl } from "../../../support/cri";

/**
 * The cluster's own registry with a login (`registry.username`/`password`: htpasswd on the
 * registry, TLS with sealant's CA) on sandbox hosts 127.0.10.63-64: a real containerd with its
 * CRI on the node, configured as the Kubernetes image's containerd.sh configures it, pulls
 * `docker.io/library/busybox:1.36` through crictl — it gets the login as CRI registry auth for
 * the registry's servers, since hosts.toml cannot carry one.
 */
const FIRST = 63;
const NAME = "reg-login";
const DATA_ROOT = `/var/lib/sealant/${NAME}`;
const PASSWORD = "Local-Reg-pw-63";

describe("the cluster's own registry with a login, pulled from by containerd's CRI", () => {
  let upstream: ExampleUpstream | undefined;
  let bed: Bed;
  let image: string;
  let master: string;
  let node: string;

  beforeAll(async () => {
    upstream = await startExampleUpstream();
    bed = await openBed(2, FIRST, { mirrors: upstream.mirrors, env: {} });
    [master, node] = bed.ips as [string, string];
    const context = await mkdtemp(join(bed.home, "ctx-"));
    await mkdir(join(context, "manifests"));
    await writeFile(join(context, "Kubefile"), "FROM scratch\nLABEL io.sealant.runtime=hooks\nCOPY manifests manifests\n");
    await writeFile(
      join(context, "manifests/pod.yaml"),
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: "busybox:1.36"}]}\n',
    );
    const r = await build(bed.session, { context, tag: "example/reg-login:1" });
    image = `example/reg-login:1@${r.digest}`;
    await upstream.stop();
    upstream = undefined;
  }, 240_000);
  afterAll(async () => {
    await upstream?.stop();
    await runOnHost(bed.sandbox, node, "[ -f /run/ctd/pid ] && kill $(cat /run/ctd/pid) || true").catch(() => undefined);
    await bed?.close();
  });

  const spec = (registry: Record<string, unknown>): ClusterSpec =>
    parseClusterSpec({
      name: NAME,
      image,
      hosts: [
        { ips: [master], roles: ["master"] },
        { ips: [node], roles: ["node"] },
      ],
      ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts },
      registry,
    });

  it("GIVEN registry.username/password WHEN applied THEN the node's containerd has the login for the registry's servers and pulls busybox by its upstream name", async () => {
    await onHost(bed.sandbox, node, `mkdir -p /etc/containerd /run/ctd && cat > ${CONFIG} << 'EOF'\n${CONTAINERD_CONFIG}EOF`);
    const events: unknown[] = [];
    await applyCluster({ session: bed.session, spec: spec({ username: "puller", password: PASSWORD }), onEvent: (e) => events.push(e) });
    expect(await onHost(bed.sandbox, node, `stat -c %a ${CONFIG}`)).toBe("600");
    const config = await onHost(bed.sandbox, node, `cat ${CONFIG}`);
    for (const endpoint of [`${master}:5000`, "sea.hub:5000"])
      expect(config).toContain(`[plugins."io.containerd.grpc.v1.cri".registry.configs."${endpoint}".auth]\n  username = "puller"\n  password = "${PASSWORD}"`);
    expect(JSON.stringify(events)).not.toContain(PASSWORD);

    // Without the login the registry refuses: it is the login that lets the pull through.
    expect(
      await onHost(
        bed.sandbox,
        node,
        `curl -s -o /dev/null -w '%{http_code}' --cacert /etc/containerd/certs.d/docker.io/sealant-registry-ca.crt https://${master}:5000/v2/`,
      ),
    ).toBe("401");
    await onHost(bed.sandbox, node, `setsid -f sh -c 'echo $$ > /run/ctd/pid; exec containerd --config ${CONFIG}' > /run/ctd/log 2>&1 < /dev/null`);
    await onHost(
      bed.sandbox,
      node,
      `for i in $(seq 1 100); do ctr -a ${SOCKET} version > /dev/null 2>&1 && exit 0; sleep 0.1; done; cat /run/ctd/log >&2; exit 1`,
    );
    const pulled = await runOnHost(bed.sandbox, node, `${crictl()} pull docker.io/library/busybox:1.36`);
    expect(pulled.code, `${pulled.stdout}\n${pulled.stderr}\n${await onHost(bed.sandbox, node, "tail -n 20 /run/ctd/log")}`).toBe(0);
    const log = await onHost(bed.sandbox, master, `cat ${DATA_ROOT}/run/registry.log`);
    expect(log).toMatch(/"GET \/v2\/docker\.io\/library\/busybox\/blobs\/sha256:[0-9a-f]{64}\?ns=docker\.io HTTP\/1\.1" 200 .*containerd\//);
  }, 240_000);

  it("GIVEN the login dropped from the spec WHEN applied THEN the cluster's block leaves containerd's config; reset leaves nothing", async () => {
    await applyCluster({ session: bed.session, spec: spec({}) });
    expect(await onHost(bed.sandbox, node, `cat ${CONFIG}`)).not.toMatch(/sealant registry auth|puller/);
    await resetCluster({ session: bed.session, spec: spec({}) });
    expect(await onHost(bed.sandbox, node, `cat ${CONFIG}`)).toBe(CONTAINERD_CONFIG.trimEnd());
  }, 240_000);
});
