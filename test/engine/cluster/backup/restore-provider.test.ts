import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { check, diff, update, type ClusterRestoreInputs } from "../../../../src/provider/impl/cluster-restore";
import { UNKNOWN } from "../../../../src/provider/impl/unknown";
import { archive } from "./archive";

/**
 * The ClusterRestore resource's check (its preview plan, made without SSH), diff and update (no
 * hosts: its create runs on real nodes in test/e2e/kubernetes/pulumi-lifecycle.test.ts).
 */
describe("ClusterRestore (Pulumi)", () => {
  let dir: string;
  let backup: string;
  const inputs = (extra: Partial<ClusterRestoreInputs> = {}): ClusterRestoreInputs => ({
    name: "prod",
    image: "example/hello:1",
    hosts: { "127.0.10.2": { roles: ["node"] }, "127.0.10.1": { roles: ["master"] } },
    from: backup,
    ...extra,
  });
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sealant-restore-provider-"));
    const spec = {
      name: "prod",
      hosts: [
        { ips: ["127.0.10.1"], roles: ["master"] },
        { ips: ["127.0.10.2"], roles: ["node"] },
      ],
    };
    backup = await archive(join(dir, "prod.tar.gz"), { "cluster.json": JSON.stringify(spec), "etcd/snapshot.db": "snap" });
    await writeFile(join(dir, "broken.tar.gz"), "not a backup");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("previews in place on the backup's own hosts, reading the archive on this machine", async () => {
    const r = await check(undefined, inputs());
    expect(r.failures).toBeUndefined();
    expect(r.inputs.plan).toBe(
      "restore cluster prod in place on 127.0.10.1, 127.0.10.2 from the backup of cluster c taken 2026-12-05T07:00:00.000Z on 127.0.10.1 " +
        "(etcd revision 7, 3 keys): etcd replaced by the snapshot on every master, every kubelet restarted",
    );
  });

  it("previews onto new hosts when the hosts are not the backup's", async () => {
    const r = await check(undefined, inputs({ hosts: { "127.0.10.3": { roles: ["master"] } } }));
    expect(r.inputs.plan).toMatch(/^restore cluster prod onto new hosts 127\.0\.10\.3 from the backup of cluster c .*the cluster created there/);
  });

  it("previews an archive not known yet, or not written yet, without failing", async () => {
    expect((await check(undefined, inputs({ from: UNKNOWN }))).inputs.plan).toBe(
      "restore cluster prod onto 127.0.10.1, 127.0.10.2 from an archive known after apply: in place when these hosts run the backup's cluster, created there first otherwise",
    );
    const later = join(dir, "tonight.tar.gz");
    expect((await check(undefined, inputs({ from: later }))).inputs.plan).toBe(
      `restore cluster prod onto 127.0.10.1, 127.0.10.2 from ${later} (not there yet: read and verified when the restore runs)`,
    );
    expect((await check(undefined, inputs({ image: UNKNOWN }))).inputs.plan).toBe("(known after apply: some inputs are not known yet)");
    // A pushed backup: pulled when the restore runs (preview opens no connection).
    expect((await check(undefined, inputs({ from: "oci://127.0.0.1:5000/backups/prod:latest" }))).inputs.plan).toBe(
      "restore cluster prod onto 127.0.10.1, 127.0.10.2 from oci://127.0.0.1:5000/backups/prod:latest (pulled, its digest checked, and read when the restore runs: in place when these hosts run the backup's cluster, created there first otherwise)",
    );
  });

  it("refuses a missing from, an archive that is no backup, and a bad spec, each named", async () => {
    expect((await check(undefined, inputs({ from: "" }))).failures).toEqual([
      { property: "from", reason: "ClusterRestore inputs: from: the archive to restore from is missing" },
    ]);
    const broken = await check(undefined, inputs({ from: join(dir, "broken.tar.gz") }));
    expect(broken.failures).toEqual([
      { property: "from", reason: expect.stringMatching(/^ClusterRestore inputs: from: backup .*broken\.tar\.gz: not a readable gzip'd tar/) },
    ]);
    const bad = await check(undefined, inputs({ hosts: { "127.0.10.1": { roles: ["master"] }, "not-an-ip": { roles: ["node"] } } }));
    expect(bad.failures?.[0]?.reason).toMatch(/^ClusterRestore inputs.*not-an-ip/);
  });

  it("restores again (replaces) when from or trigger changes; other changes only follow in the state", async () => {
    expect(await diff("id", inputs(), inputs({ trigger: "again" }))).toEqual({ changes: true, replaces: ["trigger"], deleteBeforeReplace: false });
    expect(await diff("id", inputs(), inputs({ from: "/other.tar.gz" }))).toMatchObject({ replaces: ["from"] });
    expect(await diff("id", inputs(), inputs({ hosts: { "127.0.10.1": { roles: ["master"] } }, plan: "another plan" }))).toMatchObject({ changes: false });
    const outs = { mode: "in-place", archiveSha256: "sha256:ab", etcdRevision: 7, backupCreatedAt: "t", restoredHosts: ["127.0.10.1"], restorePlan: ["p"] };
    const { outs: kept } = await update("id", { ...inputs(), ...outs }, inputs({ parallelism: 3 }));
    expect(kept).toMatchObject({ ...outs, parallelism: 3 });
  });
});
