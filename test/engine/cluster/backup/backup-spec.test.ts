import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { restoreOutline, specOfBackup } from "../../../../src/engine/cluster/backup";
import { parseClusterSpec } from "../../../../src/engine/cluster/spec";
import { archive } from "./archive";

const KEY_AT_BACKUP = "-----BEGIN OPENSSH PRIVATE KEY-----\nthe copy the backup took\n-----END OPENSSH PRIVATE KEY-----\n";
const KEY_NOW = "-----BEGIN OPENSSH PRIVATE KEY-----\nthe key file as it is now\n-----END OPENSSH PRIVATE KEY-----\n";

/** The spec a restore without a Clusterfile takes from the archive (cluster.json), and the plan it shows without connecting. */
describe("the cluster spec a backup carries", () => {
  let dir: string;
  /** cluster.json as `sealant backup` writes it: the spec as loaded, a key named by path also read in. */
  const backupOf = async (file: string, ssh: Record<string, unknown>) => {
    const spec = parseClusterSpec({
      name: "prod",
      image: `example/hello:1@sha256:${"0".repeat(64)}`,
      hosts: [
        { ips: ["127.0.10.1"], roles: ["master"] },
        { ips: ["127.0.10.2"], roles: ["node"] },
      ],
    });
    return archive(join(dir, file), { "cluster.json": JSON.stringify({ ...spec, ssh: { ...spec.ssh, ...ssh } }), "etcd/snapshot.db": "snap" });
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sealant-backup-spec-"));
    await writeFile(join(dir, "id_ed25519"), KEY_NOW, { mode: 0o600 });
    await writeFile(join(dir, "known_hosts"), "");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads the hosts and SSH settings; a key named by path is read from that file now, not from the archive's copy", async () => {
    const path = await backupOf("by-path.tar.gz", { privateKeyPath: join(dir, "id_ed25519"), privateKey: KEY_AT_BACKUP, knownHosts: join(dir, "known_hosts") });
    const { spec, manifest, sha256 } = await specOfBackup(path);
    expect(spec.name).toBe("prod");
    expect(spec.hosts.map((g) => [g.ips, g.roles])).toEqual([
      [["127.0.10.1"], ["master"]],
      [["127.0.10.2"], ["node"]],
    ]);
    expect(spec.ssh.privateKey).toBe(KEY_NOW);
    expect(spec.ssh.knownHosts).toBe(join(dir, "known_hosts"));
    expect(manifest.etcd.revision).toBe(7);
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("uses a key given inline (a Pulumi program's secret) as the archive holds it", async () => {
    const { spec } = await specOfBackup(await backupOf("inline.tar.gz", { privateKey: KEY_AT_BACKUP }));
    expect(spec.ssh.privateKey).toBe(KEY_AT_BACKUP);
  });

  it("a key file or known_hosts file gone since is one error naming each field and file, and what to do; no key in it", async () => {
    const path = await backupOf("gone.tar.gz", { privateKeyPath: join(dir, "moved-away"), privateKey: KEY_AT_BACKUP, knownHosts: join(dir, "no-known-hosts") });
    const err = (await specOfBackup(path).catch((e: unknown) => e)) as Error;
    expect(err.message.split("\n")).toEqual([
      `the cluster spec in backup ${path} (cluster.json) is invalid (2 problems):`,
      `  the cluster spec in backup ${path} (cluster.json): ssh.knownHosts: cannot read the known_hosts file "${join(dir, "no-known-hosts")}": put the file back, or restore with -f Clusterfile naming the hosts and their SSH settings`,
      `  the cluster spec in backup ${path} (cluster.json): ssh.privateKeyPath: cannot read private key file "${join(dir, "moved-away")}": no such file: put the file back, or restore with -f Clusterfile naming the hosts and their SSH settings`,
    ]);
    expect(err.message).not.toContain("the copy the backup took");
  });

  it("plans in place on the backup's own hosts, onto new hosts otherwise, without connecting", () => {
    const manifest = { cluster: "prod", createdAt: "2026-12-05T07:00:00.000Z", source: "127.0.10.1", etcd: { revision: 7, totalKey: 3 } };
    const spec = (ips: string[]) => ({ name: "prod", hosts: ips.map((ip) => ({ ips: [ip] })) });
    const backup = { manifest: manifest as never, hosts: ["127.0.10.1", "127.0.10.2"] };
    expect(restoreOutline(spec(["127.0.10.2", "127.0.10.1"]), backup)).toBe(
      "restore cluster prod in place on 127.0.10.2, 127.0.10.1 from the backup of cluster prod taken 2026-12-05T07:00:00.000Z on 127.0.10.1 " +
        "(etcd revision 7, 3 keys): etcd replaced by the snapshot on every master, every kubelet restarted",
    );
    expect(restoreOutline(spec(["127.0.10.3", "127.0.10.4"]), backup)).toMatch(
      /^restore cluster prod onto new hosts 127\.0\.10\.3, 127\.0\.10\.4 from the backup of cluster prod .*: the backup's CAs put on the first master, the cluster created there/,
    );
  });
});
