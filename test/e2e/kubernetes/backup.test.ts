import { createHash } from "node:crypto";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { dump } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCluster, resetCluster } from "../../../src/engine/cluster";
import { readBackup } from "../../../src/engine/cluster/backup";
import { create as createBackupResource } from "../../../src/provider/impl/cluster-backup";
import { parseClusterSpec } from "../../../src/engine/cluster/spec";
import type { Sandbox } from "../../../src/engine/sandbox";
import type { Session } from "../../../src/engine/session";
import { inHost } from "../../support/hosts";
import { startRegistry, type TestRegistry } from "../../support/registry";
import { etcdMembers, eventually, execP, kubectlWith, NEW, nodesOf, openRealBed, podsOf, ROOT, type RealBed, writeKubeconfig } from "./support";

const CLI = process.env["SEALANT_TEST_CLI"] ?? join(ROOT, "dist/cli/main.js");

/**
 * Backup and restore on real nodes (real kubeadm, etcd, kubelets; no test doubles), through the
 * `sealant` CLI: a cluster's objects deleted and found back after a restore in place, then the
 * same backup restored onto two fresh hosts, which become the cluster with those objects.
 */
describe("real Kubernetes: backup and restore", () => {
  let bed: RealBed;
  let session: Session;
  let sb: Sandbox;
  let image: string;
  let m1: string, w1: string, m2: string, w2: string;
  let archive: string;
  /** A real registry on loopback the backup is also pushed to, as an OCI artifact. */
  let reg: TestRegistry;

  const clusterfile = async (file: string, master: string | string[], worker: string): Promise<string> => {
    const path = join(bed.home, file);
    const doc = {
      apiVersion: "sealant.io/v1",
      kind: "Cluster",
      metadata: { name: "backup" },
      spec: {
        image,
        hosts: [
          { ips: [master].flat(), roles: ["master"] },
          { ips: [worker], roles: ["node"] },
        ],
        ssh: { privateKeyPath: sb.ssh.pk, knownHosts: sb.ssh.knownHosts },
      },
    };
    await writeFile(path, dump(doc));
    return path;
  };
  const sealant = async (...args: string[]) =>
    (await execP(process.execPath, [CLI, ...args], { env: { ...process.env, SEALANT_HOME: bed.home }, maxBuffer: 16 << 20 })).stdout;
  const objects = async (kubectl: ReturnType<typeof kubectlWith>) => ({
    answer: JSON.parse(await kubectl("get", "configmap", "keep-me", "-o", "json").catch(() => "{}")) as { data?: { answer?: string } },
    hello: (await kubectl("-n", "hello", "get", "deployment", "hello", "-o", "name").catch(() => "")).trim(),
  });
  const helloReady = (kubectl: ReturnType<typeof kubectlWith>) => async () =>
    (await podsOf(kubectl, "hello")).filter((p) => p.name.startsWith("hello-") && p.ready).length === 2;

  beforeAll(async () => {
    bed = await openRealBed("k8sbackup", 4, [NEW]);
    ({ session, sb } = bed);
    image = bed.app[NEW]!;
    [m1, w1, m2, w2] = bed.ips as [string, string, string, string];
    reg = await startRegistry();
  }, 600_000);
  afterAll(async () => {
    await reg?.stop();
    await bed?.close();
  });

  it("backs up (a verified 0600 archive), and a restore in place brings back the objects deleted since", async () => {
    const fileA = await clusterfile("Clusterfile.a", m1, w1);
    const created = await applyCluster({
      session,
      spec: parseClusterSpec({
        name: "backup",
        image,
        hosts: [
          { ips: [m1], roles: ["master"] },
          { ips: [w1], roles: ["node"] },
        ],
        ssh: { privateKeyPath: sb.ssh.pk, knownHosts: sb.ssh.knownHosts },
      }),
    });
    const kubectl = kubectlWith(await writeKubeconfig(join(bed.home, "a.conf"), created.outputs.kubeconfig));
    await kubectl("create", "configmap", "keep-me", "--from-literal=answer=42");
    await eventually("the app's two replicas ready", helloReady(kubectl));

    const dir = join(bed.home, "taken");
    const pushTo = `${reg.host}/backups/backup:latest`;
    const planned = await sealant("backup", "-f", fileA, "--to", dir, "--push", pushTo, "--dry-run");
    expect(planned).toContain(`take an etcd snapshot on a healthy master (${m1})`);
    expect(planned).toContain(`push the archive to ${pushTo} (an OCI artifact)`);
    expect(await readdir(dir).catch(() => [])).toEqual([]);

    const r = JSON.parse(await sealant("backup", "-f", fileA, "--to", dir, "--push", pushTo, "--json")) as {
      archive: string;
      sha256: string;
      source: string;
      snapshot: { revision: number; totalKey: number };
      pushed: { reference: string; archiveDigest: string };
    };
    // The artifact's layer is the archive itself.
    expect(r.pushed.archiveDigest).toBe(`sha256:${r.sha256}`);
    archive = r.archive;
    expect(await readdir(dir)).toEqual([archive.slice(dir.length + 1)]); // no temp file left
    expect(archive).toMatch(/backup-\d{8}T\d{6}Z\.sealant-backup\.tar\.gz$/);
    expect((await stat(archive)).mode & 0o777).toBe(0o600);
    expect(
      createHash("sha256")
        .update(await readFile(archive))
        .digest("hex"),
    ).toBe(r.sha256);
    expect(r.source).toBe(m1);
    expect(r.snapshot.revision).toBeGreaterThan(0);
    const read = await readBackup(archive);
    expect(read.manifest.files.map((f) => f.path)).toEqual(
      expect.arrayContaining(["cluster.json", "etcd/snapshot.db", "pki/ca.key", "pki/etcd/ca.key", "pki/sa.key", "kubeadm/cluster-configuration.yaml"]),
    );

    // The Pulumi form (the ClusterBackup resource's create, as the provider runs it): the digests are its outputs.
    const home = process.env["SEALANT_HOME"];
    process.env["SEALANT_HOME"] = bed.home;
    try {
      const made = await createBackupResource({
        name: "backup",
        image,
        hosts: { [m1]: { roles: ["master"] }, [w1]: { roles: ["node"] } },
        ssh: { privateKeyPath: sb.ssh.pk, knownHosts: sb.ssh.knownHosts },
        to: join(bed.home, "pulumi-backups"),
        push: `${reg.host}/backups/pulumi:1`,
      });
      expect(made.outs.artifact).toMatch(new RegExp(`^${reg.host}/backups/pulumi@sha256:[0-9a-f]{64}$`));
      expect(made.id).toBe(made.outs.sha256);
      expect(made.outs.sha256).toBe(
        `sha256:${createHash("sha256")
          .update(await readFile(made.outs.archive))
          .digest("hex")}`,
      );
      expect(made.outs.snapshotSha256).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(made.outs.snapshotRevision).toBeGreaterThanOrEqual(r.snapshot.revision);
      expect((await readBackup(made.outs.archive)).manifest.source).toBe(m1);
    } finally {
      if (home === undefined) delete process.env["SEALANT_HOME"];
      else process.env["SEALANT_HOME"] = home;
    }

    await kubectl("delete", "configmap", "keep-me");
    await kubectl("-n", "hello", "delete", "deployment", "hello");
    expect(await objects(kubectl)).toEqual({ answer: {}, hello: "" });

    // Restored from the registry: pulled into $SEALANT_HOME/backups (its digest checked), the same bytes.
    expect(await sealant("restore", "-f", fileA, "--from", archive, "--dry-run")).toContain("restore of cluster backup (in-place)");
    expect(await sealant("restore", "-f", fileA, "--from", `oci://${r.pushed.reference}`, "-y")).toMatch(/restored cluster backup \(in-place\)/);
    expect((await readFile(join(bed.home, "backups", archive.slice(dir.length + 1)))).equals(await readFile(archive))).toBe(true);
    await eventually("the restored objects", async () => {
      const o = await objects(kubectl);
      return o.answer.data?.answer === "42" && o.hello === "deployment.apps/hello";
    });
    await eventually("both nodes Ready", async () => (await nodesOf(kubectl)).every((n) => n.ready));
    expect((await nodesOf(kubectl)).map((n) => n.ip)).toEqual([m1, w1]);
    await eventually("the app's two replicas ready again", helloReady(kubectl), 240_000);
    // The data the restore replaced is kept beside the new.
    expect(await inHost(sb, m1, "ls -d /var/lib/etcd/.sealant-previous-member /var/lib/etcd/member")).toBe(
      "/var/lib/etcd/.sealant-previous-member\n/var/lib/etcd/member",
    );
  }, 1_200_000);

  it("restores onto fresh hosts: the backup's objects there, its old nodes gone, the app running on the new worker", async () => {
    const fileB = await clusterfile("Clusterfile.b", m2, w2);
    const preview = await sealant("restore", "-f", fileB, "--from", archive, "--dry-run");
    expect(preview).toContain("restore of cluster backup (new-hosts)");
    expect(preview).toContain(`put the backup's CAs and service-account keys on ${m2}`);
    expect(await inHost(sb, m2, "ls /etc/kubernetes 2> /dev/null || true")).toBe(""); // the dry run changed nothing

    expect(await sealant("restore", "-f", fileB, "--from", archive, "-y")).toMatch(/restored cluster backup \(new-hosts\)/);
    // The record fits the cluster: applying the same spec again has nothing to do.
    const again = await applyCluster({
      session,
      spec: parseClusterSpec({
        name: "backup",
        image,
        hosts: [
          { ips: [m2], roles: ["master"] },
          { ips: [w2], roles: ["node"] },
        ],
        ssh: { privateKeyPath: sb.ssh.pk, knownHosts: sb.ssh.knownHosts },
      }),
    });
    expect(again.plan.phases).toEqual([]);
    const kubectl = kubectlWith(await writeKubeconfig(join(bed.home, "b.conf"), again.outputs.kubeconfig));
    const o = await objects(kubectl);
    expect(o.answer.data?.answer).toBe("42");
    expect(o.hello).toBe("deployment.apps/hello");
    // The same CA as the backed-up cluster's.
    expect(await inHost(sb, m2, "cat /etc/kubernetes/pki/ca.crt")).toBe(await inHost(sb, m1, "cat /etc/kubernetes/pki/ca.crt"));
    await eventually("the new nodes Ready, the old ones gone", async () => {
      const nodes = await nodesOf(kubectl);
      return nodes.length === 2 && nodes[0]!.ip === m2 && nodes[1]!.ip === w2 && nodes.every((n) => n.ready);
    });
    await eventually("the app's two replicas ready on the new worker", helloReady(kubectl), 240_000);
  }, 1_200_000);
  it("restores in place across three masters (stacked etcd): every member from the one snapshot, all three started again", async () => {
    const ssh = { privateKeyPath: sb.ssh.pk, knownHosts: sb.ssh.knownHosts };
    // The first cluster's hosts become two more masters of the second.
    await resetCluster({
      session,
      spec: parseClusterSpec({
        name: "backup",
        image,
        hosts: [
          { ips: [m1], roles: ["master"] },
          { ips: [w1], roles: ["node"] },
        ],
        ssh,
      }),
    });
    const masters = [m2, m1, w1];
    const grown = await applyCluster({
      session,
      spec: parseClusterSpec({
        name: "backup",
        image,
        hosts: [
          { ips: masters, roles: ["master"] },
          { ips: [w2], roles: ["node"] },
        ],
        ssh,
      }),
    });
    const kubectl = kubectlWith(await writeKubeconfig(join(bed.home, "ha.conf"), grown.outputs.kubeconfig));
    const file = await clusterfile("Clusterfile.ha", masters, w2);
    const members = async () => {
      const etcdPod = (await kubectl("-n", "kube-system", "get", "pods", "-l", "component=etcd", "-o", "name")).trim().split("\n")[0]!;
      return (await etcdMembers(kubectl, etcdPod.replace("pod/", ""))).map((f) => `${f[1]} ${f[2]} ${f[3]}`).sort();
    };
    const before = await members();
    expect(before).toHaveLength(3);

    const r = JSON.parse(await sealant("backup", "-f", file, "--to", join(bed.home, "ha-backups"), "--json")) as { archive: string };
    await kubectl("delete", "configmap", "keep-me");
    expect((await objects(kubectl)).answer).toEqual({});
    const preview = await sealant("restore", "-f", file, "--from", r.archive, "--dry-run");
    expect(preview).toContain(`stop the control plane on ${masters.join(", ")}`);
    expect(await sealant("restore", "-f", file, "--from", r.archive, "-y")).toMatch(/restored cluster backup \(in-place\)/);
    await eventually("the restored ConfigMap", async () => (await objects(kubectl)).answer.data?.answer === "42");
    // The same three members (names and peer URLs), every one started: quorum is back.
    await eventually(
      "three started etcd members",
      async () => JSON.stringify(await members()) === JSON.stringify(before) && before.every((m) => m.startsWith("started ")),
    );
    await eventually("every node Ready", async () => {
      const nodes = await nodesOf(kubectl);
      return nodes.length === 4 && nodes.every((n) => n.ready);
    });
  }, 1_500_000);
});
