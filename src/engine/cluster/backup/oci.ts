/**
 * A backup archive as an OCI artifact: pushed to any registry that keeps OCI manifests (the
 * cluster's images already live in one), pulled back for a restore. The archive is the
 * artifact's one layer, byte for byte, so its digest is the archive's sha256 — what `backup`
 * prints and `ClusterBackup` outputs — and a pulled archive is provably the one taken.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseDigest, sha256, type Digest } from "../../image/digest";
import { MediaType } from "../../image/media-types";
import { parseReference, referenceSelector } from "../../image/reference";
import type { Session } from "../../session";
import { BackupArchiveError, readBackup } from "./format";

/** The artifact's type (the manifest's `artifactType`), its config's and its one layer's media types. */
export const BACKUP_ARTIFACT_TYPE = "application/vnd.sealant.cluster-backup.v1";
export const BACKUP_CONFIG_TYPE = "application/vnd.sealant.cluster-backup.config.v1+json";
export const BACKUP_LAYER_TYPE = "application/vnd.sealant.cluster-backup.v1.tar+gzip";

/** `oci://REF` names a backup in a registry (a bare REF could be a file name). */
export const OCI_SCHEME = "oci://";

export interface PushedBackup {
  /** `registry/repository@sha256:...`: the manifest, pinned. */
  reference: string;
  /** The archive's digest (its sha256), the artifact's layer. */
  archiveDigest: Digest;
  size: number;
}

/**
 * Pushes a verified archive to `target` (`registry/repository:tag`). The archive is read and
 * checked first (readBackup): a damaged file never becomes an artifact.
 */
export async function pushBackup(session: Session, archive: string, target: string, signal?: AbortSignal): Promise<PushedBackup> {
  const ref = parseReference(target.startsWith(OCI_SCHEME) ? target.slice(OCI_SCHEME.length) : target);
  if (ref.digest) throw new BackupArchiveError(`${target}: a backup is pushed to a tag (e.g. ${ref.registry}/${ref.repository}:latest), not to a digest`);
  const { manifest, sha256: hex } = await readBackup(archive);
  const { size } = await stat(archive);
  const archiveDigest = parseDigest(`sha256:${hex}`);
  const client = session.clientFor(ref.registry);
  const sig = signal ? { signal } : {};
  await client.pushBlob(ref.repository, { digest: archiveDigest, size }, () => createReadStream(archive), sig);
  // The config says what the archive holds without pulling it (no secret: names, times, etcd's counts).
  const config = Buffer.from(
    JSON.stringify({ format: manifest.format, cluster: manifest.cluster, createdAt: manifest.createdAt, image: manifest.image, etcd: manifest.etcd }),
  );
  const configDesc = { mediaType: BACKUP_CONFIG_TYPE, digest: sha256(config), size: config.length };
  await client.pushBlob(ref.repository, configDesc, () => Readable.from([config]), sig);
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: BACKUP_ARTIFACT_TYPE,
      config: configDesc,
      layers: [{ mediaType: BACKUP_LAYER_TYPE, digest: archiveDigest, size, annotations: { "org.opencontainers.image.title": basename(archive) } }],
      annotations: { "org.opencontainers.image.created": manifest.createdAt, "io.sealant.cluster": manifest.cluster },
    }),
  );
  const digest = await client.putManifest(ref.repository, ref.tag ?? "latest", body, MediaType.ociManifest, signal);
  return { reference: `${ref.registry}/${ref.repository}@${digest}`, archiveDigest, size };
}

/**
 * Pulls the backup `source` names (`oci://registry/repository:tag` or `@sha256:...`) into `dir`,
 * its digest checked while it streams, written under a temp name and renamed (mode 0600: it
 * holds the cluster's keys). Returns the archive's path; restore reads and verifies it as any.
 */
export async function pullBackup(session: Session, source: string, dir: string, signal?: AbortSignal): Promise<string> {
  const ref = parseReference(source.startsWith(OCI_SCHEME) ? source.slice(OCI_SCHEME.length) : source);
  const client = session.clientFor(ref.registry);
  const got = await client.getManifest(ref.repository, referenceSelector(ref), MediaType.ociManifest, signal);
  let doc: { artifactType?: string; layers?: { mediaType?: string; digest?: string; size?: number; annotations?: Record<string, string> }[] };
  try {
    doc = JSON.parse(got.bytes.toString("utf8")) as typeof doc;
  } catch {
    throw new BackupArchiveError(`${source}: its manifest is not JSON`);
  }
  const layer = doc.layers?.length === 1 ? doc.layers[0] : undefined;
  if (!layer || layer.mediaType !== BACKUP_LAYER_TYPE || typeof layer.digest !== "string" || typeof layer.size !== "number")
    throw new BackupArchiveError(
      `${source} is not a sealant backup: its layers are ${JSON.stringify((doc.layers ?? []).map((l) => l.mediaType))}, a backup has one ${BACKUP_LAYER_TYPE}`,
    );
  const digest = parseDigest(layer.digest, `${source}'s layer digest`);
  // The name it was pushed with, if it is a plain file name; else one made from the digest.
  const title = layer.annotations?.["org.opencontainers.image.title"] ?? "";
  const name = /^[\w][\w.-]*\.sealant-backup\.tar\.gz$/.test(title) ? title : `${digest.slice(7, 19)}.sealant-backup.tar.gz`;
  const final = join(dir, name);
  const temp = join(dir, `.${name}.${process.pid}.tmp`);
  try {
    const blob = await client.openBlob(ref.repository, digest, { size: layer.size, ...(signal ? { signal } : {}) });
    await pipeline(blob, createWriteStream(temp, { mode: 0o600 }), ...(signal ? [{ signal }] : []));
    await rename(temp, final);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  return final;
}

/** A pushed backup pulled into $SEALANT_HOME/backups (0700), kept there: a restore run again reads it. */
export async function pullBackupToHome(session: Session, source: string, signal?: AbortSignal): Promise<string> {
  const dir = join(session.home, "backups");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return pullBackup(session, source, dir, signal);
}
