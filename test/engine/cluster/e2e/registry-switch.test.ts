import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../../src/engine/build";
import { applyCluster, resetCluster } from "../../../../src/engine/cluster";
import { formatPlan, type Plan } from "../../../../src/engine/cluster/plan";
import { parseClusterSpec, type ClusterSpec } from "../../../../src/engine/cluster/spec";
import { openBed, type Bed } from "../../../support/bed";
import { onHost } from "../../../support/hosts";
import { startRegistry, type TestRegistry } from "../../../support/registry";
import { startExampleUpstream, type ExampleUpstream } from "../../../support/upstream";

/**
 * One cluster on sandbox hosts (a master serving the registry, a node) applied with a registry
 * of its own, re-applied with `registry.external` (a docker-registry behind TLS from a private
 * CA with htpasswd standing in for Harbor), then back: each switch plans the removal of the
 * old mode and leaves nothing of it on any host — no registry process, none of its files, no
 * /etc/hosts entry, no hosts.toml and no CRI login of the mode that left.
 */
const FIRST = 65;
const NAME = "reg-switch";
const DATA_ROOT = `/var/lib/sealant/${NAME}`;
const CERTS = "/etc/containerd/certs.d";
const CONFIG = "/etc/containerd/config.toml";
const PASSWORD = "Switch-S3cret-pw-240";

const KUBEFILE = `FROM scratch
LABEL io.sealant.runtime=hooks
COPY manifests manifests
COPY etc etc
`;
/** What the image's files see of the registry: sealer's variables, rendered on every host. */
const TEMPLATE = `url={{ .RegistryURL }} domain={{ .RegistryDomain }} port={{ .RegistryPort }} local={{ default "none" .LocalRegistryURL }} external={{ default "none" .ExternalRegistryURL }} host={{ .HostIP }}
`;
const MANIFEST = `apiVersion: v1
kind: Pod
metadata: { name: web }
spec:
  containers: [{ name: web, image: "docker.io/library/nginx:1.25" }]
`;
/** A containerd config with the CRI's certs.d, so both modes' CRI login blocks have a file to go into. */
const CONTAINERD_CONFIG = `version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "${CERTS}"
`;

describe("a cluster whose registry mode changes between applies", () => {
  let upstream: ExampleUpstream | undefined;
  let harbor: TestRegistry;
  let bed: Bed;
  let image: string;
  let master: string;
  let node: string;

  beforeAll(async () => {
    upstream = await startExampleUpstream();
    harbor = await startRegistry({ auth: "htpasswd", tls: true, privateCa: true, users: [{ username: "robot", password: PASSWORD }] });
    bed = await openBed(2, FIRST, { mirrors: upstream.mirrors, env: {} });
    [master, node] = bed.ips as [string, string];
    const context = await mkdtemp(join(bed.home, "ctx-"));
    await mkdir(join(context, "manifests"));
    await writeFile(join(context, "Kubefile"), KUBEFILE);
    await writeFile(join(context, "manifests/pod.yaml"), MANIFEST);
    await mkdir(join(context, "etc"));
    await writeFile(join(context, "etc/registry.conf.tmpl"), TEMPLATE);
    const r = await build(bed.session, { context, tag: "example/registry-switch:1" });
    image = `example/registry-switch:1@${r.digest}`;
    await upstream.stop();
    upstream = undefined;
    for (const ip of bed.ips) await onHost(bed.sandbox, ip, `mkdir -p /etc/containerd && cat > ${CONFIG} << 'EOF'\n${CONTAINERD_CONFIG}EOF`);
  }, 240_000);
  afterAll(async () => {
    await upstream?.stop();
    await bed?.close();
    await harbor?.stop();
  });

  const endpoint = () => harbor.host;
  const spec = (registry: Record<string, unknown>, hosts?: { ips: string[]; roles: string[] }[]): ClusterSpec =>
    parseClusterSpec({
      name: NAME,
      image,
      hosts: hosts ?? [
        { ips: [master], roles: ["master"] },
        { ips: [node], roles: ["node"] },
      ],
      ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts },
      registry,
    });
  const own = () => spec({ username: "admin", password: PASSWORD });
  const external = () =>
    spec({ external: { domain: "127.0.0.1", port: Number(endpoint().split(":")[1]), username: "robot", password: PASSWORD, ca: harbor.tlsCert! } });
  const apply = (s: ClusterSpec) => applyCluster({ session: bed.session, spec: s, onEvent: (e) => bed.events.push(e) });
  /** The registry phases in plan order (a new registry setting is a new configuration too: render and rolling restarts around them). */
  const registryPhases = (plan: Plan) =>
    plan.phases.map((p) => p.name).filter((n) => ["registry-removal", "registry", "push", "mirrors", "pull-through"].includes(n));
  const rendered = (ip: string) => onHost(bed.sandbox, ip, `cat ${DATA_ROOT}/rootfs/etc/registry.conf`);
  const registryRunning = (ip: string) => onHost(bed.sandbox, ip, `pgrep -fc '[s]erve ${DATA_ROOT}/registry/config.yml' || true`);

  it("GIVEN its own registry WHEN re-applied with registry.external THEN the plan stops it and nothing of it is left on any host", async () => {
    await apply(own());
    expect(await registryRunning(master)).toBe("1");
    for (const ip of bed.ips) {
      expect(await rendered(ip), ip).toBe(`url=sea.hub:5000 domain=sea.hub port=5000 local=sea.hub:5000 external=none host=${ip}`);
      expect(await onHost(bed.sandbox, ip, "grep -c 'sealant registry' /etc/hosts"), ip).not.toBe("0");
      expect(await onHost(bed.sandbox, ip, `ls ${CERTS}`), ip).toBe("docker.io\nsea.hub:5000");
    }

    const preview = await applyCluster({ session: bed.session, spec: external(), dryRun: true });
    expect(preview.plan.summary).toContain("stop the cluster's own registry and take it off 2 hosts (now registry.external " + endpoint() + ")");
    expect(formatPlan(preview.plan)).toContain(`stop the cluster's registry on ${master} and remove its files, hosts entry, hosts.toml and login`);

    const r = await apply(external());
    expect(registryPhases(r.plan)).toEqual(["registry-removal", "registry-removal", "push", "mirrors"]);
    expect(await registryRunning(master)).toBe("0");
    expect(await onHost(bed.sandbox, master, `ls -A ${DATA_ROOT}/registry 2>/dev/null | grep -v '^containerd-auth' || true`)).toBe("");
    const [domain, port] = endpoint().split(":") as [string, string];
    for (const ip of bed.ips) {
      expect(await rendered(ip), ip).toBe(`url=${endpoint()} domain=${domain} port=${port} local=none external=${endpoint()} host=${ip}`);
      expect(await onHost(bed.sandbox, ip, "grep -c 'sealant registry' /etc/hosts || true"), ip).toBe("0");
      expect(await onHost(bed.sandbox, ip, `ls ${CERTS}`), ip).toBe(`${endpoint()}\ndocker.io`);
      expect(await onHost(bed.sandbox, ip, `cat ${CERTS}/docker.io/hosts.toml`), ip).not.toContain("5000");
      const config = await onHost(bed.sandbox, ip, `cat ${CONFIG}`);
      expect(config, ip).toContain(`registry.configs."${endpoint()}".auth`);
      expect(config, ip).not.toMatch(/sea\.hub|:5000/);
    }
    expect((await apply(external())).plan.phases).toEqual([]);
  }, 300_000);

  it("GIVEN registry.external WHEN re-applied with its own registry THEN the external registry's configuration leaves every host", async () => {
    const r = await apply(own());
    expect(r.plan.summary).toContain("take the external registry off 2 hosts (now the cluster's own)");
    expect(registryPhases(r.plan)).toEqual(["registry-removal", "registry-removal", "registry"]);
    expect(await registryRunning(master)).toBe("1");
    for (const ip of bed.ips) {
      expect(await onHost(bed.sandbox, ip, `ls ${CERTS}`), ip).toBe("docker.io\nsea.hub:5000");
      expect(await onHost(bed.sandbox, ip, `cat ${CONFIG}`), ip).not.toContain(endpoint());
    }
    expect((await apply(own())).plan.phases).toEqual([]);
    await resetCluster({ session: bed.session, spec: own() });
    expect(await registryRunning(master)).toBe("0");
  }, 300_000);

  it("GIVEN the registry served by a node WHEN that node leaves in the same apply that switches to registry.external THEN its registry is stopped too", async () => {
    const servedByNode = spec({ username: "admin", password: PASSWORD }, [
      { ips: [master], roles: ["master"] },
      { ips: [node], roles: ["node", "registry"] },
    ]);
    await apply(servedByNode);
    expect(await registryRunning(node)).toBe("1");
    const externalOnMaster = spec(
      { external: { domain: "127.0.0.1", port: Number(endpoint().split(":")[1]), username: "robot", password: PASSWORD, ca: harbor.tlsCert! } },
      [{ ips: [master], roles: ["master"] }],
    );
    const r = await apply(externalOnMaster);
    expect(r.plan.summary[0]).toBe(`remove ${node} (node+registry)`);
    expect(await registryRunning(node)).toBe("0");
    expect(await onHost(bed.sandbox, node, `ls -A ${CERTS}; grep -c 'sealant registry' /etc/hosts || true; ls ${DATA_ROOT} 2>&1 | head -1`)).toMatch(
      /^0\nls: cannot access/,
    );
    await resetCluster({ session: bed.session, spec: externalOnMaster });
  }, 300_000);
});
