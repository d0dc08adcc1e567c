import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKUP_LAYER_TYPE, pullBackup, pushBackup } from "../../../../src/engine/cluster/backup/oci";
import { BackupArchiveError, readBackup } from "../../../../src/engine/cluster/backup";
import { Session } from "../../../../src/engine/session";
import { startRegistry, type TestRegistry } from "../../../support/registry";
import { archive, sha } from "./archive";

/** A backup archive as an OCI artifact, through the real registry (docker-registry) on loopback. */
describe("a backup in an OCI registry", () => {
  let dir: string;
  let reg: TestRegistry;
  let session: Session;
  const files = { "cluster.json": "{}", "etcd/snapshot.db": "snapshot bytes", "pki/ca.crt": "CERT", "pki/ca.key": "KEY" };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sealant-backup-oci-"));
    reg = await startRegistry();
    session = await Session.open({ home: join(dir, "home") });
  }, 60_000);
  afterAll(async () => {
    session?.close();
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("is pushed as one layer whose digest is the archive's sha256, and pulled back byte for byte (0600, no temp file left)", async () => {
    const path = await archive(join(dir, "prod-20261205T070000Z.sealant-backup.tar.gz"), files);
    const pushed = await pushBackup(session, path, `oci://${reg.host}/backups/prod:latest`);
    const bytes = await readFile(path);
    expect(pushed.archiveDigest).toBe(`sha256:${sha(bytes)}`);
    expect(pushed.reference).toMatch(new RegExp(`^${reg.host}/backups/prod@sha256:[0-9a-f]{64}$`));

    const manifest = JSON.parse((await session.clientFor(reg.host).getManifest("backups/prod", "latest")).bytes.toString()) as {
      artifactType: string;
      layers: { mediaType: string; digest: string }[];
    };
    expect(manifest.artifactType).toBe("application/vnd.sealant.cluster-backup.v1");
    expect(manifest.layers).toEqual([expect.objectContaining({ mediaType: BACKUP_LAYER_TYPE, digest: pushed.archiveDigest })]);

    const into = await mkdtemp(join(dir, "pulled-"));
    for (const source of [`oci://${reg.host}/backups/prod:latest`, `oci://${pushed.reference}`]) {
      const got = await pullBackup(session, source, into);
      expect(got).toBe(join(into, "prod-20261205T070000Z.sealant-backup.tar.gz"));
      expect((await readFile(got)).equals(bytes)).toBe(true);
      expect((await stat(got)).mode & 0o777).toBe(0o600);
      expect((await readBackup(got)).manifest.etcd.revision).toBe(7);
    }
    expect(await readdir(into)).toEqual(["prod-20261205T070000Z.sealant-backup.tar.gz"]);
  });

  it("refuses a damaged archive before pushing, a digest as the target, and an artifact that is not a backup", async () => {
    const bad = await archive(join(dir, "bad.sealant-backup.tar.gz"), files, (entries) => {
      entries[1]![1] = "other bytes";
    });
    await expect(pushBackup(session, bad, `${reg.host}/backups/bad:1`)).rejects.toBeInstanceOf(BackupArchiveError);
    await expect(session.clientFor(reg.host).headManifest("backups/bad", "1")).resolves.toBeUndefined();

    const good = await archive(join(dir, "good.sealant-backup.tar.gz"), files);
    await expect(pushBackup(session, good, `${reg.host}/backups/x@sha256:${"a".repeat(64)}`)).rejects.toThrow(/pushed to a tag/);

    // An ordinary image is no backup: one error naming what it holds.
    const { reference } = await pushBackup(session, good, `${reg.host}/backups/good:1`);
    const client = session.clientFor(reg.host);
    const m = JSON.parse((await client.getManifest("backups/good", "1")).bytes.toString()) as Record<string, unknown> & { layers: { mediaType: string }[] };
    m.layers[0]!.mediaType = "application/vnd.oci.image.layer.v1.tar+gzip";
    await client.putManifest("backups/good", "image", Buffer.from(JSON.stringify(m)), "application/vnd.oci.image.manifest.v1+json");
    await expect(pullBackup(session, `oci://${reg.host}/backups/good:image`, dir)).rejects.toThrow(
      `oci://${reg.host}/backups/good:image is not a sealant backup: its layers are ["application/vnd.oci.image.layer.v1.tar+gzip"], a backup has one ${BACKUP_LAYER_TYPE}`,
    );
    expect(reference).toContain("@sha256:");
  });
});
