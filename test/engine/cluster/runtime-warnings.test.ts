/**
 * What dockerd cannot be pointed at, said by the plan itself — `apply --dry-run` (what `sealant
 * plan` prints) against a sandbox host and the Cluster provider's `check` (`pulumi preview`,
 * no SSH) — for images built here whose runtime is Docker: sealer's `scripts/docker.sh`, the
 * Clusterfile's `containerRuntime.type`, and not for a containerd image or a `docker.sh` a later
 * layer deleted.
 */
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../src/engine/build";
import { applyCluster } from "../../../src/engine/cluster";
import { resolveClusterImage } from "../../../src/engine/cluster/host/image";
import { imageScriptNames } from "../../../src/engine/cluster/host/image-scripts";
import { formatPlan } from "../../../src/engine/cluster/plan";
import { parseClusterSpec, type ClusterSpec } from "../../../src/engine/cluster/spec";
import * as provider from "../../../src/provider/impl/cluster";
import { openBed, type Bed } from "../../support/bed";
import { startExampleUpstream, type ExampleUpstream } from "../../support/upstream";

const MANIFEST = `apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
    - {name: web, image: nginx:1.25}
    - {name: metrics, image: quay.io/prometheus/node-exporter:v1.7.0}
`;
const QUAY_WARNING =
  "dockerd mirrors docker.io only: the image's images from quay.io are pulled by Docker hosts from those registries themselves, not from the cluster registry (a host that cannot reach them fails the pull); use a containerd image, or name them sea.hub:5000/<registry>/<path>";

describe("the plan of a Docker-runtime image", () => {
  let upstream: ExampleUpstream | undefined;
  let bed: Bed;
  const images: Record<string, string> = {};
  const saved = process.env["SEALANT_HOME"];

  async function buildWith(tag: string, kubefile: string, scripts: Record<string, string>): Promise<string> {
    const context = await mkdtemp(join(bed.home, "ctx-"));
    await mkdir(join(context, "manifests"));
    await mkdir(join(context, "scripts"));
    await writeFile(join(context, "Kubefile"), kubefile);
    await writeFile(join(context, "manifests/web.yaml"), MANIFEST);
    for (const [name, text] of Object.entries(scripts)) await writeFile(join(context, "scripts", name), text);
    return `${tag}@${(await build(bed.session, { context, tag })).digest}`;
  }

  beforeAll(async () => {
    upstream = await startExampleUpstream();
    bed = await openBed(1, 67, { mirrors: upstream.mirrors, env: {} });
    process.env["SEALANT_HOME"] = bed.home;
    const base = "FROM scratch\nLABEL io.sealant.runtime=hooks\nCOPY manifests manifests\nCOPY scripts scripts\n";
    images["docker"] = await buildWith("example/rw-docker:1", base, { "docker.sh": "#!/bin/sh\n" });
    images["containerd"] = await buildWith("example/rw-containerd:1", base, { "containerd.sh": "#!/bin/sh\n", "docker.sh": "#!/bin/sh\n" });
    // docker.sh deleted by a later layer: a whiteout the plan must honour.
    images["deleted"] = await buildWith("example/rw-deleted:1", `${base}RUN rm scripts/docker.sh\n`, { "docker.sh": "#!/bin/sh\n", "other.sh": "" });
    await upstream.stop();
    upstream = undefined;
  }, 240_000);
  afterAll(async () => {
    if (saved === undefined) delete process.env["SEALANT_HOME"];
    else process.env["SEALANT_HOME"] = saved;
    await upstream?.stop();
    await bed?.close();
  });

  const spec = (image: string, extra: Record<string, unknown> = {}): ClusterSpec =>
    parseClusterSpec({
      name: "rw",
      image,
      hosts: [{ ips: [bed.ips[0]!], roles: ["master"] }],
      ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts },
      ...extra,
    });
  const dryRun = async (s: ClusterSpec) => (await applyCluster({ session: bed.session, spec: s, dryRun: true })).plan;

  it("GIVEN scripts/docker.sh WHEN planned THEN the plan warns that quay.io is not mirrored, before any host runs anything", async () => {
    const plan = await dryRun(spec(images["docker"]!));
    expect(plan.warnings).toEqual([QUAY_WARNING]);
    expect(formatPlan(plan)).toContain(`\n  warning: ${QUAY_WARNING}\n`);
  }, 60_000);

  it("GIVEN the Cluster provider's check (pulumi preview) THEN its plan property carries the same warning", async () => {
    const r = await provider.check(undefined, {
      name: "rw",
      image: images["docker"]!,
      hosts: { [bed.ips[0]!]: { roles: ["master"] } },
      ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts },
    });
    expect(r.failures).toBeUndefined();
    expect(r.inputs.plan).toContain(`\nwarning: ${QUAY_WARNING}`);
  }, 60_000);

  it("GIVEN registry.username THEN the warning says dockerd gets no mirror for docker.io either", async () => {
    const plan = await dryRun(spec(images["docker"]!, { registry: { username: "admin", password: "Rw-S3cret-pw" } }));
    expect(plan.warnings).toEqual([
      QUAY_WARNING,
      "registry.username is set and dockerd sends no credentials to a mirror: Docker hosts pull the image's docker.io images from docker.io, not from the cluster registry",
    ]);
    expect(JSON.stringify(plan)).not.toContain("Rw-S3cret-pw");
  }, 60_000);

  it("GIVEN containerd.sh beside docker.sh, or docker.sh deleted by a later layer THEN no warning; GIVEN containerRuntime.type docker THEN the warning", async () => {
    expect((await dryRun(spec(images["containerd"]!))).warnings).toBeUndefined();
    expect((await dryRun(spec(images["deleted"]!))).warnings).toBeUndefined();
    const deleted = await resolveClusterImage(bed.session, images["deleted"]!);
    expect(await imageScriptNames(bed.session.store, [...deleted.platforms.values()][0]!)).toEqual(["other.sh"]);
    expect((await dryRun(spec(images["containerd"]!, { runtime: { containerRuntime: { type: "docker" } } }))).warnings).toEqual([QUAY_WARNING]);
  }, 60_000);
});
