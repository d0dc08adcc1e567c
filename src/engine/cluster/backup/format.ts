/**
 * The backup archive: one gzip'd tar, written by `sealant backup`, read by `sealant restore`.
 *
 *   manifest.json                      this format's name, the cluster, the etcd snapshot's status,
 *                                      and the size and sha256 of every other file (first entry)
 *   cluster.json                       the cluster spec as given to the backup
 *   etcd/snapshot.db                   `etcdctl snapshot save` from one healthy master
 *   pki/...                            that master's /etc/kubernetes/pki (CAs, keys, leaf certificates)
 *   kubeadm/cluster-configuration.yaml kube-system/kubeadm-config's ClusterConfiguration
 *   kubeadm/init.yaml                  sealant's kubeadm init configuration (when the master has it)
 *
 * It holds the cluster's private keys: written with mode 0600, never printed, and secret wherever it is kept.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { Writable, type Readable } from "node:stream";
import * as tar from "tar-stream";

export const BACKUP_FORMAT = "sealant.io/cluster-backup/v1";
export const MANIFEST = "manifest.json";
export const SPEC_FILE = "cluster.json";
export const SNAPSHOT = "etcd/snapshot.db";

/** What `etcdctl snapshot status -w json` says of a snapshot. */
export interface SnapshotStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

export interface BackupFile {
  path: string;
  size: number;
  sha256: string;
}

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  cluster: string;
  createdAt: string;
  /** The cluster image the record named when the backup was taken. */
  image: string;
  /** The master the snapshot was taken on. */
  source: string;
  etcd: SnapshotStatus & { file: typeof SNAPSHOT };
  files: BackupFile[];
}

/** The files a cluster on new hosts needs before kubeadm init: the CAs and the service-account keys (kubeadm makes every leaf). */
export const CA_FILES = ["ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key", "etcd/ca.crt", "etcd/ca.key"] as const;

/** `<cluster>-<UTC time>.sealant-backup.tar.gz`: sorts by time, says what it is. */
export function archiveName(cluster: string, at: Date): string {
  return `${cluster}-${at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}.sealant-backup.tar.gz`;
}

export class BackupArchiveError extends Error {}

export interface ReadBackup {
  manifest: BackupManifest;
  /** The archive's own sha256. */
  sha256: string;
  /** Files asked for by `keep`, by path. */
  kept: Map<string, Buffer>;
}

/**
 * Reads and verifies an archive: its manifest first, then every file's size and sha256 against
 * it, nothing missing and nothing more. `keep` names the files wanted in memory; the snapshot is
 * written to `snapshotTo` when given.
 */
export async function readBackup(path: string, opts: { keep?: (p: string) => boolean; snapshotTo?: string } = {}): Promise<ReadBackup> {
  const whole = createHash("sha256");
  const extract = tar.extract();
  let manifest: BackupManifest | undefined;
  const seen = new Map<string, BackupFile>();
  const kept = new Map<string, Buffer>();
  const bad = (what: string) => new BackupArchiveError(`backup ${path}: ${what}`);
  extract.on("entry", (header, stream, next) => {
    void (async () => {
      const name = header.name.replace(/^\.\//, "").replace(/\/$/, "");
      if (header.type === "directory" || name === "" || name === ".") {
        stream.resume();
        return;
      }
      if (header.type !== "file" || name.startsWith("/") || name.split("/").includes(".."))
        throw bad(`entry ${JSON.stringify(header.name)} is not a plain file inside the archive`);
      if (!manifest && name !== MANIFEST) throw bad(`the first entry is ${name}, not ${MANIFEST}: not a sealant backup (${BACKUP_FORMAT})`);
      const hash = createHash("sha256");
      const chunks: Buffer[] = [];
      const wanted = name === MANIFEST || opts.keep?.(name) === true;
      const sink = name === SNAPSHOT && opts.snapshotTo ? createWriteStream(opts.snapshotTo, { mode: 0o600 }) : undefined;
      let size = 0;
      await pipeline(
        stream,
        new Writable({
          write(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            size += chunk.length;
            if (wanted) chunks.push(chunk);
            if (sink) sink.write(chunk, cb);
            else cb();
          },
          final(cb) {
            if (sink) sink.end(cb);
            else cb();
          },
        }),
      );
      if (name === MANIFEST) manifest = parseManifest(Buffer.concat(chunks).toString("utf8"), bad);
      else {
        seen.set(name, { path: name, size, sha256: hash.digest("hex") });
        if (wanted) kept.set(name, Buffer.concat(chunks));
      }
    })().then(() => next(), next);
  });
  const source: Readable = createReadStream(path);
  source.on("data", (c) => whole.update(c as Buffer));
  try {
    await pipeline(source, createGunzip(), extract);
  } catch (err) {
    if (err instanceof BackupArchiveError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw bad("no such file");
    throw bad(`not a readable gzip'd tar (${(err as Error).message})`);
  }
  if (!manifest) throw bad(`no ${MANIFEST}: not a sealant backup`);
  for (const f of manifest.files) {
    const got = seen.get(f.path);
    if (!got) throw bad(`${f.path} is in the manifest but not in the archive`);
    if (got.size !== f.size || got.sha256 !== f.sha256)
      throw bad(`${f.path} does not match the manifest (sha256 ${got.sha256}, ${got.size} bytes; manifest ${f.sha256}, ${f.size} bytes)`);
  }
  for (const p of seen.keys()) if (!manifest.files.some((f) => f.path === p)) throw bad(`${p} is in the archive but not in its manifest`);
  if (!seen.has(SNAPSHOT)) throw bad(`no ${SNAPSHOT}`);
  return { manifest, sha256: whole.digest("hex"), kept };
}

function parseManifest(text: string, bad: (w: string) => Error): BackupManifest {
  let m: Partial<BackupManifest>;
  try {
    m = JSON.parse(text) as Partial<BackupManifest>;
  } catch {
    throw bad(`${MANIFEST} is not JSON`);
  }
  if (m.format !== BACKUP_FORMAT) throw bad(`${MANIFEST} says format ${JSON.stringify(m.format)}; this sealant reads ${BACKUP_FORMAT}`);
  if (typeof m.cluster !== "string" || !Array.isArray(m.files) || typeof m.etcd?.revision !== "number")
    throw bad(`${MANIFEST} lacks its cluster, files or etcd status`);
  return m as BackupManifest;
}
