import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import * as tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { archiveName, BackupArchiveError, readBackup, type BackupManifest } from "../../../../src/engine/cluster/backup";
import { archive, sha } from "./archive";

describe("the backup archive", () => {
  let dir: string;
  const files = { "cluster.json": "{}", "etcd/snapshot.db": "snapshot bytes", "pki/ca.crt": "CERT", "pki/ca.key": "KEY" };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sealant-backup-format-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("is named by cluster and UTC time", () => {
    expect(archiveName("prod", new Date("2026-12-05T07:31:02.123Z"))).toBe("prod-20261205T073102Z.sealant-backup.tar.gz");
  });

  it("reads back verified: the manifest, the archive's sha256, the files asked for, the snapshot written out", async () => {
    const path = await archive(join(dir, "good.tar.gz"), files);
    const snap = join(dir, "snap.db");
    const r = await readBackup(path, { keep: (p) => p.startsWith("pki/"), snapshotTo: snap });
    expect(r.manifest.etcd.revision).toBe(7);
    expect(r.sha256).toBe(sha(await readFile(path)));
    expect([...r.kept.keys()].sort()).toEqual(["pki/ca.crt", "pki/ca.key"]);
    expect(await readFile(snap, "utf8")).toBe("snapshot bytes");
  });

  it.each([
    [
      "a file changed after the manifest was made",
      (e: [string, string][]) => (e[2]![1] = "CERX"),
      /pki\/ca\.crt does not match the manifest \(sha256 [0-9a-f]{64}, 4 bytes; manifest [0-9a-f]{64}, 4 bytes\)/,
    ],
    ["a file missing", (e: [string, string][]) => void e.splice(3, 1), /pki\/ca\.key is in the manifest but not in the archive/],
    [
      "a file the manifest does not list",
      (e: [string, string][]) => void e.push(["pki/extra.key", "x"]),
      /pki\/extra\.key is in the archive but not in its manifest/,
    ],
    [
      "a path leaving the archive",
      (e: [string, string][]) => void e.push(["../etc/passwd", "x"]),
      /entry "\.\.\/etc\/passwd" is not a plain file inside the archive/,
    ],
    [
      "another format",
      (_e: [string, string][], m: BackupManifest) => void ((m as { format: string }).format = "other/v9"),
      /says format "other\/v9"; this sealant reads sealant\.io\/cluster-backup\/v1/,
    ],
  ])("is refused with %s, naming it", async (_what, tamper, message) => {
    const path = await archive(join(dir, "bad.tar.gz"), files, tamper);
    const err = await readBackup(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupArchiveError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain(`backup ${path}: `);
  });

  it("is refused when it is no gzip'd tar or has no manifest first", async () => {
    await writeFile(join(dir, "plain.txt"), "hello");
    await expect(readBackup(join(dir, "plain.txt"))).rejects.toThrow(/not a readable gzip'd tar/);
    await expect(readBackup(join(dir, "missing.tar.gz"))).rejects.toThrow(/missing\.tar\.gz: no such file/);
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    pack.on("data", (c) => chunks.push(c as Buffer));
    const done = new Promise<void>((r) => pack.on("end", () => r()));
    pack.entry({ name: "etcd/snapshot.db" }, "x");
    pack.finalize();
    await done;
    await writeFile(join(dir, "nomanifest.tar.gz"), gzipSync(Buffer.concat(chunks)));
    await expect(readBackup(join(dir, "nomanifest.tar.gz"))).rejects.toThrow(/the first entry is etcd\/snapshot\.db, not manifest\.json: not a sealant backup/);
  });
});
