import { describe, expect, it } from "vitest";
import { check, diff, type ClusterBackupInputs } from "../../../../src/provider/impl/cluster-backup";

/** The ClusterBackup resource's check and diff (no hosts: its create is run on real nodes in test/e2e/kubernetes/backup.test.ts). */
describe("ClusterBackup (Pulumi)", () => {
  const inputs = (extra: Partial<ClusterBackupInputs> = {}): ClusterBackupInputs => ({
    name: "prod",
    image: "example/hello:1",
    hosts: { "127.0.10.1": { roles: ["master"] } },
    to: "/backups",
    ...extra,
  });

  it("needs the directory the archive goes to, and a valid cluster spec, each named", async () => {
    expect((await check(undefined, inputs())).failures).toBeUndefined();
    expect((await check(undefined, inputs({ to: "" }))).failures).toEqual([
      { property: "to", reason: "ClusterBackup inputs: to: the directory the archive is written into is missing" },
    ]);
    const bad = await check(undefined, inputs({ hosts: { "127.0.10.1": { roles: ["master"] }, "not-an-ip": { roles: ["node"] } } }));
    expect(bad.failures?.[0]?.reason).toMatch(/^ClusterBackup inputs.*not-an-ip/);
  });

  it("takes a new backup (replaces) when trigger or to changes; other changes only follow", async () => {
    expect(await diff("id", inputs(), inputs({ trigger: "2026-12-06" }))).toEqual({ changes: true, replaces: ["trigger"], deleteBeforeReplace: false });
    expect(await diff("id", inputs(), inputs({ to: "/elsewhere" }))).toMatchObject({ replaces: ["to"] });
    expect(await diff("id", inputs(), inputs({ hosts: { "127.0.10.1": { roles: ["master"] }, "127.0.10.2": { roles: ["node"] } } }))).toMatchObject({
      changes: false,
      replaces: [],
    });
  });
});
