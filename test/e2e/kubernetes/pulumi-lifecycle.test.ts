import { createHash } from "node:crypto";
import { readFile, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, execP, kubectlWith, NEW, openRealBed, ROOT, type RealBed, writeKubeconfig } from "./support";
import { kubernetesPlugin, openProgram, type PulumiRun } from "../pulumi-kubernetes/program";
import { configureCluster, WORKLOAD, workloadRunning, workloadUids } from "./pulumi-workload";

const CLI = process.env["SEALANT_TEST_CLI"] ?? join(ROOT, "dist/cli/main.js");

/**
 * Issue 15's day two as one Pulumi program, with the real Pulumi CLI, the real Kubernetes
 * provider plugin and a real kubeadm cluster (1 master + 1 worker) on sandbox hosts: the
 * KubernetesCluster, a workload through `cluster.provider` and a ClusterBackup in one `pulumi up`;
 * the workload broken with the real kubectl; a ClusterRestore switched on by config brings it
 * back (the same objects: the same uids) and a refreshing preview then finds nothing to do.
 * Then the CLI path a Pulumi user has, with no Clusterfile: `sealant restore --from ARCHIVE`.
 */
const PROGRAM = `import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { KubernetesCluster } from "sealant";

const config = new pulumi.Config();
const image = config.require("image");
const master = config.require("master");
const workers = config.requireObject<string[]>("workers");
const ssh = { user: "root", privateKey: config.requireSecret("sshPrivateKey"), knownHosts: config.require("knownHosts") };
const cluster = new KubernetesCluster("k8s", { clusterName: "k8slife", image, masters: [master], workers, ssh });
const provider = cluster.provider;
${WORKLOAD}
// A ClusterBackup and a ClusterRestore with the cluster's own arguments (children of the construct).
const backup = cluster.backup("nightly", { to: config.require("backupDir") }, { dependsOn: [web] });
const restore = config.getBoolean("restore") ? cluster.restore("restore", { from: backup.archive }) : undefined;

export const kubeconfig = cluster.kubernetes.kubeconfig;
export const archive = backup.archive;
export const backupSha256 = backup.sha256;
export const snapshotRevision = backup.snapshotRevision;
export const restoreMode = restore?.mode;
export const restoredSha256 = restore?.archiveSha256;
export const restoredRevision = restore?.etcdRevision;
export const restoredHosts = restore?.restoredHosts;
`;

describe("a Pulumi program: cluster, workload, backup, broken, restored", () => {
  let bed: RealBed;
  let base: string;
  let pulumi: PulumiRun;
  let kubectl: ReturnType<typeof kubectlWith>;
  let m: string, w: string;
  let first: Awaited<ReturnType<typeof workloadUids>>;
  let archive: string;
  const output = async (name: string) => (await pulumi(["stack", "output", "--show-secrets", name])).trim();
  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const r = await fn();
    console.log(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return r;
  };
  /** What a `pulumi preview --diff` would do to the workload's resources (and their provider), refreshes aside: nothing when it is as the program says. */
  const workloadSteps = (preview: string) =>
    [...preview.matchAll(/^\s*[-+~]+\s*(kubernetes:[\w/.]+:\w+|pulumi:providers:kubernetes): \((\w[\w-]*)\)/gm)]
      .filter((s) => /^(create|update|replace|delete|create-replacement|delete-replaced)$/.test(s[2]!))
      .map((s) => `${s[1]} ${s[2]}`);

  beforeAll(async () => {
    bed = await openRealBed("k8slife", 2, [NEW]);
    [m, w] = bed.ips as [string, string];
    base = await mkdtemp(join(tmpdir(), "sealant-k8s-lifecycle-"));
    process.env["SEALANT_HOME"] = bed.home; // the providers find the image in this store
    pulumi = await openProgram(base, kubernetesPlugin(), PROGRAM);
    await configureCluster(pulumi, bed, { image: bed.app[NEW]!, master: m, workers: [w] });
    await pulumi(["config", "set", "backupDir", join(base, "backups")]);
  }, 900_000);

  afterAll(async () => {
    await bed?.close();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it("one `pulumi up`: the cluster, the workload through cluster.provider, and a verified backup with its digests as outputs", async () => {
    await timed("pulumi up (cluster, workload, backup)", () => pulumi(["up", "--yes", "--skip-preview"]));
    kubectl = kubectlWith(await writeKubeconfig(join(base, "admin.conf"), await output("kubeconfig")));
    await eventually("the workload's pod running", () => workloadRunning(kubectl));
    first = await workloadUids(kubectl);
    archive = await output("archive");
    expect(archive.startsWith(join(base, "backups", "k8slife-"))).toBe(true);
    expect((await stat(archive)).mode & 0o777).toBe(0o600);
    expect(await output("backupSha256")).toBe(
      `sha256:${createHash("sha256")
        .update(await readFile(archive))
        .digest("hex")}`,
    );
    expect(Number(await output("snapshotRevision"))).toBeGreaterThan(0);
    // The SSH key is secret in the state (the Cluster's, the backup's).
    const key = (await readFile(bed.sb.ssh.pk, "utf8")).split("\n")[1]!;
    expect(await pulumi(["stack", "export"])).not.toContain(key);
  }, 900_000);

  it("broken with kubectl: the Deployment, the ConfigMap and their namespace deleted; a refreshing preview sees them gone", async () => {
    await kubectl("delete", "deployment", "web", "-n", "web", "--wait=true");
    await kubectl("delete", "configmap", "greeting", "-n", "web");
    await kubectl("delete", "namespace", "web", "--wait=true", "--timeout=180s");
    expect(await kubectl("get", "namespace", "web", "--ignore-not-found")).toBe("");
    const preview = await pulumi(["preview", "--refresh", "--diff"]);
    expect(workloadSteps(preview).sort()).toEqual([
      "kubernetes:apps/v1:Deployment create",
      "kubernetes:core/v1:ConfigMap create",
      "kubernetes:core/v1:Namespace create",
    ]);
  }, 900_000);

  it("a ClusterRestore switched on: previewed without SSH as a restore in place; `pulumi up` brings back the same objects; nothing left to do", async () => {
    await pulumi(["config", "set", "restore", "true"]);
    const preview = await pulumi(["preview", "--diff"]);
    expect(preview).toMatch(/\+ pulumi-nodejs:dynamic\/sealant:ClusterRestore: \(create\)/);
    expect(preview).toContain(`restore cluster k8slife in place on ${m}, ${w} from the backup of cluster k8slife taken `);
    expect(workloadSteps(preview)).toEqual([]);

    await timed("pulumi up (ClusterRestore in place)", () => pulumi(["up", "--yes", "--skip-preview"]));
    expect(await output("restoreMode")).toBe("in-place");
    expect(await output("restoredSha256")).toBe(await output("backupSha256"));
    expect(await output("restoredRevision")).toBe(await output("snapshotRevision"));
    expect(JSON.parse(await pulumi(["stack", "output", "--json", "restoredHosts"]))).toEqual([m, w]);
    await eventually("the restored workload's pod running", () => workloadRunning(kubectl), 300_000);
    expect(await workloadUids(kubectl)).toEqual(first);
    expect(JSON.parse(await kubectl("get", "configmap", "greeting", "-n", "web", "-o", "jsonpath={.data}"))).toEqual({ message: "hello" });

    const after = await timed("pulumi preview --refresh after the restore", () => pulumi(["preview", "--refresh", "--diff"]));
    expect(workloadSteps(after)).toEqual([]);
    expect(after).not.toMatch(/to create|to replace|to delete/);
  }, 900_000);

  it("the ClusterRestore removed from the program: deleted from the state, nothing on the cluster changes", async () => {
    await pulumi(["config", "set", "restore", "false"]);
    const up = await pulumi(["up", "--yes", "--skip-preview"]);
    expect(up).toMatch(/1 deleted/);
    expect(await workloadUids(kubectl)).toEqual(first);
    expect(await workloadRunning(kubectl)).toBe(true);
  }, 900_000);

  it("the CLI with no Clusterfile: `sealant restore --from ARCHIVE` plans and restores onto the archive's own hosts", async () => {
    const sealant = async (...args: string[]) =>
      (await execP(process.execPath, [CLI, ...args], { cwd: base, env: { ...process.env, SEALANT_HOME: bed.home }, maxBuffer: 16 << 20 })).stdout;
    await kubectl("delete", "configmap", "greeting", "-n", "web");
    const planned = await sealant("restore", "--from", archive, "--dry-run");
    expect(planned.split("\n")[0]).toBe("restore of cluster k8slife (in-place) onto the hosts of the backup's own spec:");
    expect(planned).toContain(`restore in place on ${m}, ${w} from the backup of cluster k8slife`);
    expect(planned).not.toContain((await readFile(bed.sb.ssh.pk, "utf8")).split("\n")[1]!);
    const done = await timed("sealant restore --from ARCHIVE -y", () => sealant("restore", "--from", archive, "-y"));
    expect(done).toMatch(new RegExp(`^restored cluster k8slife \\(in-place\\) on ${m.replaceAll(".", "\\.")}, ${w.replaceAll(".", "\\.")} in `));
    await eventually("the ConfigMap back", async () => (await workloadUids(kubectl)).configMap === first.configMap, 120_000);
    expect(await workloadUids(kubectl)).toEqual(first);
  }, 900_000);
});
