import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import * as tar from "tar-stream";
import { BACKUP_FORMAT, type BackupManifest } from "../../../../src/engine/cluster/backup";

export const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** An archive as `sealant backup` lays it out; `tamper` edits the entries after the manifest is made. */
export async function archive(
  path: string,
  files: Record<string, string>,
  tamper: (entries: [string, string][], manifest: BackupManifest) => void = () => undefined,
): Promise<string> {
  const manifest: BackupManifest = {
    format: BACKUP_FORMAT,
    cluster: "c",
    createdAt: "2026-12-05T07:00:00.000Z",
    image: "example/hello:1",
    source: "127.0.10.1",
    etcd: { hash: 1, revision: 7, totalKey: 3, totalSize: 20480, file: "etcd/snapshot.db" },
    files: Object.entries(files).map(([p, c]) => ({ path: p, size: Buffer.byteLength(c), sha256: sha(c) })),
  };
  const entries: [string, string][] = Object.entries(files);
  tamper(entries, manifest);
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on("end", () => r()));
  for (const [name, content] of [["manifest.json", JSON.stringify(manifest)] as [string, string], ...entries]) pack.entry({ name }, content);
  pack.finalize();
  await done;
  await writeFile(path, gzipSync(Buffer.concat(chunks)));
  return path;
}
