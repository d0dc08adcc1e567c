import { mkdir, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { DigestingStream, DigestMismatchError, digestHex, isDigest, parseDigest, sha256, type Digest } from "./digest";
import type { Reference } from "./reference";
import { exists, fileSink, fsyncFile, tempNameFor, writeFileAtomic } from "../util/fs";

/**
 * The on-disk storage layout of the CNCF distribution registry (v2, filesystem driver), as
 * `registry/storage/paths.go` maps it under `storage.filesystem.rootdirectory`:
 *
 *   <root>/docker/registry/v2/blobs/sha256/<hex[0:2]>/<hex>/data
 *   <root>/docker/registry/v2/repositories/<name>/_layers/sha256/<hex>/link
 *   <root>/docker/registry/v2/repositories/<name>/_manifests/revisions/sha256/<hex>/link
 *   <root>/docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link
 *   <root>/docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/index/sha256/<hex>/link
 *
 * A link file holds `sha256:<hex>` with no newline. A blob is served for a repository only
 * when the repository links it (`_layers` for configs and layers, `_manifests/revisions` for
 * manifests and indexes, each platform manifest of an index included), so `docker-registry
 * serve` with this root serves what is written here unchanged.
 *
 * Blobs are shared by all repositories and written once: to a temp name, verified, renamed.
 * A repository's links are written after the blobs they point at, and tags last, so a tag a
 * reader can see always resolves to complete content.
 */
export class DistributionLayout {
  readonly v2: string;

  /**
   * `durable: false` skips fsyncs: right for a tree inside a build's scratch rootfs, which a
   * crash throws away whole (the layer made from it is what gets written durably).
   */
  constructor(
    readonly root: string,
    private readonly durable = true,
  ) {
    this.v2 = join(root, "docker", "registry", "v2");
  }

  // ---- paths ----

  blobDataPath(digest: Digest): string {
    const hex = digestHex(parseDigest(digest));
    return join(this.v2, "blobs", "sha256", hex.slice(0, 2), hex, "data");
  }

  repositoryPath(repository: string): string {
    return join(this.v2, "repositories", ...checkRepositoryName(repository).split("/"));
  }

  layerLinkPath(repository: string, digest: Digest): string {
    return join(this.repositoryPath(repository), "_layers", "sha256", digestHex(parseDigest(digest)), "link");
  }

  manifestRevisionLinkPath(repository: string, digest: Digest): string {
    return join(this.repositoryPath(repository), "_manifests", "revisions", "sha256", digestHex(parseDigest(digest)), "link");
  }

  tagCurrentLinkPath(repository: string, tag: string): string {
    return join(this.repositoryPath(repository), "_manifests", "tags", checkTag(tag), "current", "link");
  }

  tagIndexLinkPath(repository: string, tag: string, digest: Digest): string {
    return join(this.repositoryPath(repository), "_manifests", "tags", checkTag(tag), "index", "sha256", digestHex(parseDigest(digest)), "link");
  }

  // ---- blobs ----

  async hasBlob(digest: Digest): Promise<boolean> {
    return exists(this.blobDataPath(digest));
  }

  /** Stores bytes under their digest (which must equal `expected` when given); a present blob is left as is. */
  async putBlob(data: Buffer, expected?: Digest): Promise<{ digest: Digest; size: number; written: boolean }> {
    const digest = sha256(data);
    if (expected !== undefined && expected !== digest) throw new DigestMismatchError("blob", expected, digest);
    if (await this.hasBlob(digest)) return { digest, size: data.length, written: false };
    await writeFileAtomic(this.blobDataPath(digest), data, undefined, this.durable);
    return { digest, size: data.length, written: true };
  }

  /**
   * Streams a blob into place: hashed while written to a temp file, renamed to its content
   * address only when digest (and size, when given) match. If the blob is already present
   * the source is destroyed unread.
   */
  async putBlobStream(
    source: Readable,
    expected: { digest: Digest; size?: number; what?: string },
  ): Promise<{ digest: Digest; size: number; written: boolean }> {
    const path = this.blobDataPath(expected.digest);
    if (await exists(path)) {
      source.destroy();
      return { digest: expected.digest, size: (await stat(path)).size, written: false };
    }
    const hasher = new DigestingStream();
    const what = expected.what ?? `blob ${expected.digest}`;
    await mkdir(dirname(path), { recursive: true });
    const tmp = tempNameFor(path);
    try {
      // pipeline, not pipe(): a source that fails (even before we got here) fails the write and
      // is destroyed with it, instead of stalling it.
      await pipeline(source, hasher, fileSink(tmp));
      const actual = hasher.digest();
      if (actual !== expected.digest) throw new DigestMismatchError(what, expected.digest, actual);
      if (expected.size !== undefined && hasher.size !== expected.size) {
        throw Object.assign(new Error(`${what}: size mismatch: expected ${expected.size} bytes, got ${hasher.size}`), { name: "SizeMismatchError" });
      }
      if (this.durable) await fsyncFile(tmp);
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return { digest: expected.digest, size: hasher.size, written: true };
  }

  async readBlob(digest: Digest): Promise<Buffer> {
    return readFile(this.blobDataPath(digest));
  }

  // ---- repository links ----

  /** Makes a config or layer blob (already stored) visible in `repository`. */
  async linkBlob(repository: string, digest: Digest): Promise<void> {
    await writeLink(this.layerLinkPath(repository, digest), digest, this.durable);
  }

  /** Makes a manifest or index blob (already stored) fetchable by digest in `repository`. */
  async linkManifest(repository: string, digest: Digest): Promise<void> {
    await writeLink(this.manifestRevisionLinkPath(repository, digest), digest, this.durable);
  }

  /** Points `repository:tag` at a manifest or index already linked with `linkManifest`. */
  async tag(repository: string, tag: string, digest: Digest): Promise<void> {
    await writeLink(this.tagIndexLinkPath(repository, tag, digest), digest, this.durable);
    await writeLink(this.tagCurrentLinkPath(repository, tag), digest, this.durable);
  }

  // ---- reading ----

  /** Repository names that have manifests, sorted (what the registry's /v2/_catalog lists). */
  async listRepositories(): Promise<string[]> {
    const base = join(this.v2, "repositories");
    const out: string[] = [];
    const walk = async (dir: string, prefix: string[]): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
        throw err;
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        if (e.name === "_manifests") {
          if (prefix.length > 0) out.push(prefix.join("/"));
          continue;
        }
        // _layers, _uploads and any other reserved directory are not repository components.
        if (e.name.startsWith("_")) continue;
        await walk(join(dir, e.name), [...prefix, e.name]);
      }
    };
    await walk(base, []);
    return out.sort();
  }

  /** Tags of a repository, sorted; [] when the repository does not exist. */
  async listTags(repository: string): Promise<string[]> {
    const dir = join(this.repositoryPath(repository), "_manifests", "tags");
    try {
      const entries = await readdir(dir, { withFileTypes: true });
      const tags: string[] = [];
      for (const e of entries) {
        if (e.isDirectory() && (await exists(join(dir, e.name, "current", "link")))) tags.push(e.name);
      }
      return tags.sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
  }

  /** The digest a tag points at, or undefined. */
  async resolveTag(repository: string, tag: string): Promise<Digest | undefined> {
    return readLink(this.tagCurrentLinkPath(repository, tag));
  }

  async hasManifest(repository: string, digest: Digest): Promise<boolean> {
    return (await readLink(this.manifestRevisionLinkPath(repository, digest))) === digest && (await this.hasBlob(digest));
  }

  /** Whether the image a reference names (by digest, else by tag) is here, its manifest linked in its repository. */
  async hasImage(ref: Reference): Promise<boolean> {
    const repository = repositoryFor(ref);
    const digest = ref.digest ?? (ref.tag ? await this.resolveTag(repository, ref.tag) : undefined);
    return digest !== undefined && (await this.hasManifest(repository, digest));
  }

  async hasLinkedBlob(repository: string, digest: Digest): Promise<boolean> {
    return (await readLink(this.layerLinkPath(repository, digest))) === digest && (await this.hasBlob(digest));
  }
}

/** Repositories in the distribution layout under `root`, sorted. */
export function listRepositories(root: string): Promise<string[]> {
  return new DistributionLayout(root).listRepositories();
}

/** Tags of `repository` in the distribution layout under `root`, sorted. */
export function listTags(root: string, repository: string): Promise<string[]> {
  return new DistributionLayout(root).listTags(repository);
}

// ---- repository naming ----

/**
 * The path component that stands for a source registry inside the cluster registry.
 *
 * Encoding: the host is lowercased (DNS names are case-insensitive, repository names are
 * not allowed upper case) and a port separator `:` becomes `_`, which distribution's name
 * grammar allows inside a component and which cannot occur in a host name:
 *   `docker.io` -> `docker.io`, `Quay.IO` -> `quay.io`, `127.0.0.1:5001` -> `127.0.0.1_5001`,
 *   `localhost:5000` -> `localhost_5000`.
 * Distinct registries therefore never share a prefix. IPv6 literals (`[::1]:5000`) have no
 * such encoding and are refused.
 *
 * The cluster's containerd `hosts.toml` for a source registry `R` points at
 * `http://<cluster-registry>/v2/<registryComponent(R)>` with `override_path = true`, so a
 * pod's `R/path:tag` is fetched as `<registryComponent(R)>/path:tag` from the cluster
 * registry while the pod keeps its original image name.
 */
export function registryComponent(registry: string): string {
  if (registry.startsWith("[")) {
    throw new Error(`registry "${registry}": IPv6 literal registries cannot be stored in a cluster image; use a host name`);
  }
  const m = /^([A-Za-z0-9.-]+)(?::([0-9]+))?$/.exec(registry);
  if (!m || !m[1]) throw new Error(`registry "${registry}" is not a host[:port]`);
  const host = m[1].toLowerCase();
  const component = m[2] !== undefined ? `${host}_${m[2]}` : host;
  if (!PATH_COMPONENT.test(component)) {
    throw new Error(`registry "${registry}" cannot be encoded as a repository path component (got "${component}")`);
  }
  return component;
}

/**
 * The repository an image is stored under in a cluster image's registry: its source registry
 * (encoded by `registryComponent`) followed by its path, e.g. `docker.io/library/nginx`,
 * `quay.io/library/nginx`, `127.0.0.1_5001/team/app`. Images with the same path from different
 * registries land in different repositories.
 */
export function repositoryFor(ref: Reference): string {
  return checkRepositoryName(`${registryComponent(ref.registry)}/${ref.repository}`);
}

// From distribution's reference grammar: path components and the whole name.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const MAX_NAME = 255;

function checkRepositoryName(name: string): string {
  if (name.length === 0 || name.length > MAX_NAME || !name.split("/").every((c) => PATH_COMPONENT.test(c))) {
    throw new Error(`invalid repository name "${name}": components must match [a-z0-9]+((.|_|__|-+)[a-z0-9]+)*, at most ${MAX_NAME} characters in all`);
  }
  return name;
}

function checkTag(tag: string): string {
  if (!TAG.test(tag)) throw new Error(`invalid tag "${tag}": must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  return tag;
}

async function writeLink(path: string, digest: Digest, durable: boolean): Promise<void> {
  if ((await readLink(path)) === digest) return;
  await writeFileAtomic(path, digest, undefined, durable);
}

async function readLink(path: string): Promise<Digest | undefined> {
  try {
    const text = (await readFile(path, "utf8")).trim();
    return isDigest(text) ? text : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw err;
  }
}
