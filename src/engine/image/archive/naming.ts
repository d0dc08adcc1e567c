/**
 * Naming. `saveArchive` names every image in index.json by its fully qualified reference in
 * `org.opencontainers.image.ref.name` (e.g. `docker.io/library/app:1.0`; also in
 * `io.containerd.image.name`, which `ctr import` reads). skopeo selects an image of an OCI
 * archive by exact match of that annotation, so:
 *
 *     skopeo copy oci-archive:x.tar:docker.io/library/app:1.0 docker://registry.local/app:1.0
 *     skopeo inspect oci-archive:x.tar:docker.io/library/app:1.0
 *
 * (skopeo splits `oci-archive:PATH:NAME` at the first colon after the path, so the name may
 * itself contain colons; it must be written in full — `app:1.0` does not match). With a
 * single image in the archive `oci-archive:x.tar` alone selects it; with several, skopeo
 * refuses to guess and the name is required. `tar -xOf x.tar index.json` lists the names.
 *
 * `loadArchive` names what it loads by these rules, first match wins:
 *   1. `names[archiveName]` or `names[digest]` — an explicit mapping;
 *   2. `tag` — the archive must hold exactly one image, which is stored under this reference
 *      whatever the archive calls it (`sealant load --tag`);
 *   3. an archive name that is a reference (has a `/`, `:` or `@`: `docker.io/library/app:1.0`,
 *      `quay.io/x/y:2`, `app:1.0`) is normalised and kept (`app:1.0` → docker.io/library/app:1.0);
 *   4. a bare tag (`1.0`, what `skopeo copy ... oci-archive:x.tar:1.0` writes) has no
 *      repository: `io.containerd.image.name` is used when present (docker save writes it),
 *      else `repository` + `:` + tag, else the load fails asking for `--repository`/`--tag`;
 *   5. no name at all (`oci-archive:x.tar` without a name) likewise needs `tag` or `names`.
 * sealant never invents a repository: a guessed name would silently collide or mislead.
 */
import type { Digest } from "../digest";
import { formatReference, parseReference } from "../reference";
import { REF_NAME_ANNOTATION } from "../store";
import type { Descriptor, Index } from "../types";
import { ArchiveError } from "./errors";
import type { LoadArchiveOptions } from "./options";

/** Read by containerd (`ctr import`) and written by `docker save`: the full image name. */
export const CONTAINERD_IMAGE_NAME_ANNOTATION = "io.containerd.image.name";

export interface PlannedName {
  ref: string;
  descriptor: Descriptor;
  archiveName?: string;
}

/** Applies the naming rules (above) to every image in index.json; throws if any has no usable name. */
export function nameImages(index: Index, label: string, opts: LoadArchiveOptions): PlannedName[] {
  const fail = (why: string): never => {
    throw new ArchiveError(label, "index.json", why);
  };
  if (opts.tag !== undefined && index.manifests.length !== 1) {
    fail(
      `holds ${index.manifests.length} images (${index.manifests.map(describeEntry).join(", ")}); a single tag cannot name them all — map each archive name to a reference instead`,
    );
  }
  const planned: PlannedName[] = [];
  const byRef = new Map<string, Digest>();
  for (const desc of index.manifests) {
    const archiveName = desc.annotations?.[REF_NAME_ANNOTATION];
    const containerdName = desc.annotations?.[CONTAINERD_IMAGE_NAME_ANNOTATION];
    const mapped = lookupName(opts.names, archiveName, desc.digest);
    let ref: string;
    if (mapped !== undefined) {
      ref = normaliseGiven(mapped, "name mapping", fail);
    } else if (opts.tag !== undefined) {
      ref = normaliseGiven(opts.tag, "tag", fail);
    } else if (archiveName !== undefined && archiveName !== "" && /[/:@]/.test(archiveName)) {
      ref = normaliseArchived(archiveName, desc.digest, fail);
    } else if (containerdName !== undefined && containerdName !== "") {
      ref = normaliseArchived(containerdName, desc.digest, fail);
    } else if (archiveName !== undefined && archiveName !== "") {
      if (opts.repository === undefined) {
        return fail(
          `image ${desc.digest} is named only by the bare tag "${archiveName}", which has no repository; give a repository (--repository app → docker.io/library/app:${archiveName}) or a full name (--tag app:${archiveName})`,
        );
      }
      ref = normaliseGiven(`${opts.repository}:${archiveName}`, "repository + archive tag", fail);
    } else {
      return fail(`image ${desc.digest} has no name (no ${REF_NAME_ANNOTATION} annotation); give one with --tag`);
    }
    const other = byRef.get(ref);
    if (other !== undefined && other !== desc.digest) fail(`two different images (${other}, ${desc.digest}) would both be named ${ref}`);
    if (other !== undefined) continue;
    byRef.set(ref, desc.digest);
    const p: PlannedName = { ref, descriptor: desc };
    if (archiveName !== undefined) p.archiveName = archiveName;
    planned.push(p);
  }
  return planned;
}

/** `names` by exact archive name, by digest, or by another spelling of the same reference (`app:1`). */
function lookupName(names: Record<string, string> | undefined, archiveName: string | undefined, digest: Digest): string | undefined {
  if (!names) return undefined;
  if (archiveName !== undefined && Object.hasOwn(names, archiveName)) return names[archiveName];
  if (Object.hasOwn(names, digest)) return names[digest];
  if (archiveName === undefined || !/[/:@]/.test(archiveName)) return undefined;
  const wanted = tryNormalise(archiveName);
  if (wanted === undefined) return undefined;
  for (const [key, value] of Object.entries(names)) if (/[/:@]/.test(key) && tryNormalise(key) === wanted) return value;
  return undefined;
}

function tryNormalise(ref: string): string | undefined {
  try {
    return formatReference(parseReference(ref));
  } catch {
    return undefined;
  }
}

function describeEntry(d: Descriptor): string {
  return d.annotations?.[REF_NAME_ANNOTATION] ?? d.digest;
}

/** A reference the user gave; a digest in it is not allowed (the archive decides the digest). */
function normaliseGiven(value: string, what: string, fail: (why: string) => never): string {
  try {
    const ref = parseReference(value);
    if (ref.digest !== undefined) fail(`${what} "${value}" must not contain a digest`);
    return formatReference(ref);
  } catch (err) {
    if (err instanceof ArchiveError) throw err;
    return fail(`${what} "${value}" is not a valid image reference: ${(err as Error).message}`);
  }
}

/** A name from the archive; `name@digest` must match the image and is stored as `name:tag` (latest if none). */
function normaliseArchived(value: string, digest: Digest, fail: (why: string) => never): string {
  let ref;
  try {
    ref = parseReference(value);
  } catch (err) {
    return fail(`image ${digest} has the name "${value}", which is not a valid image reference: ${(err as Error).message}`);
  }
  if (ref.digest !== undefined && ref.digest !== digest) fail(`image ${digest} is named "${value}", whose digest differs`);
  return formatReference({ registry: ref.registry, repository: ref.repository, tag: ref.tag ?? "latest" });
}

export function checkRepositoryOption(repository: string): void {
  const last = repository.slice(repository.lastIndexOf("/") + 1);
  if (repository.includes("@") || last.includes(":")) {
    throw new Error(`invalid repository "${repository}": give a repository without tag or digest, e.g. registry.local/team/app`);
  }
  parseReference(repository);
}

export function stripNameAnnotations(d: Descriptor): Descriptor {
  const copy: Descriptor = { ...d };
  if (copy.annotations) {
    const { [REF_NAME_ANNOTATION]: _a, [CONTAINERD_IMAGE_NAME_ANNOTATION]: _b, ...rest } = copy.annotations;
    if (Object.keys(rest).length > 0) copy.annotations = rest;
    else delete copy.annotations;
  }
  return copy;
}
