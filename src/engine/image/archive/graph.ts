/** Checking index.json and the graph of indexes, manifests, configs and layers it reaches. */
import { isDigest, type Digest } from "../digest";
import { isIndexMediaType, isManifestMediaType, MediaType } from "../media-types";
import type { ImageStore } from "../store";
import type { Descriptor, Index, Manifest } from "../types";
import type { LoadState } from "./state";
import { ArchiveError } from "./errors";

const MAX_NESTING = 8;

export function parseIndexJson(data: Buffer, label: string): Index {
  const fail = (why: string): never => {
    throw new ArchiveError(label, "index.json", why);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString("utf8"));
  } catch (err) {
    return fail(`is not valid JSON: ${(err as Error).message}`);
  }
  const index = parsed as Partial<Index> | null;
  if (typeof index !== "object" || index === null || Array.isArray(index)) return fail("is not a JSON object");
  if (index.schemaVersion !== 2) fail(`has schemaVersion ${JSON.stringify(index.schemaVersion)}, expected 2`);
  if (!Array.isArray(index.manifests)) return fail('has no "manifests" array');
  if (index.manifests.length === 0) fail("lists no images");
  index.manifests.forEach((d, i) => checkDescriptor(d, `manifests[${i}]`, fail));
  return index as Index;
}

function checkDescriptor(d: unknown, where: string, fail: (why: string) => never): asserts d is Descriptor {
  const desc = d as Partial<Descriptor> | null;
  if (typeof desc !== "object" || desc === null) fail(`${where} is not a descriptor object`);
  if (typeof desc!.mediaType !== "string" || desc!.mediaType === "") fail(`${where} has no mediaType`);
  if (typeof desc!.digest !== "string" || !isDigest(desc!.digest)) {
    fail(`${where} has digest ${JSON.stringify(desc!.digest)}; expected sha256: followed by 64 lowercase hex digits`);
  }
  if (typeof desc!.size !== "number" || !Number.isSafeInteger(desc!.size) || desc!.size < 0) {
    fail(`${where} has an invalid size ${JSON.stringify(desc!.size)}`);
  }
  if (desc!.annotations !== undefined && (typeof desc!.annotations !== "object" || desc!.annotations === null)) {
    fail(`${where} has invalid annotations`);
  }
}

/**
 * Every descriptor must be an archive blob of the described size; manifests and indexes are
 * read (from the store, where they are now verified) and followed to their children.
 */
export async function checkGraph(
  store: ImageStore,
  desc: Descriptor,
  state: LoadState,
  from: string,
  visited: Set<Digest>,
  depth: number,
  maxIndexBytes: number,
): Promise<void> {
  const size = state.blobs.get(desc.digest);
  if (size === undefined) {
    throw new ArchiveError(state.label, undefined, `${from} references blob ${desc.digest} (${desc.mediaType}), which is not in the archive`);
  }
  if (size !== desc.size) {
    throw new ArchiveError(state.label, `blobs/sha256/${desc.digest.slice(7)}`, `${from} says it is ${desc.size} bytes, the archive has ${size}`);
  }
  if (visited.has(desc.digest)) return;
  visited.add(desc.digest);
  const isIndex = isIndexMediaType(desc.mediaType);
  if (!isIndex && !isManifestMediaType(desc.mediaType)) {
    if (depth === 0) throw new ArchiveError(state.label, "index.json", `entry ${desc.digest} has media type ${desc.mediaType}, not an image manifest or index`);
    return; // a config, a layer or some other leaf
  }
  if (depth >= MAX_NESTING) throw new ArchiveError(state.label, undefined, `indexes nested more than ${MAX_NESTING} deep at ${desc.digest}`);
  const entryName = `blobs/sha256/${desc.digest.slice(7)}`;
  const fail = (why: string): never => {
    throw new ArchiveError(state.label, entryName, why);
  };
  if (desc.size > maxIndexBytes) fail(`${isIndex ? "index" : "manifest"} of ${desc.size} bytes is larger than the ${maxIndexBytes} bytes allowed`);
  let doc: Partial<Index & Manifest> | null;
  try {
    doc = JSON.parse((await store.readBlob(desc.digest)).toString("utf8")) as Partial<Index & Manifest> | null;
  } catch (err) {
    return fail(`${desc.mediaType} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null) return fail(`${desc.mediaType} is not a JSON object`);
  const children: Array<[Descriptor, string]> = [];
  if (isIndex) {
    if (!Array.isArray(doc.manifests)) return fail('index has no "manifests" array');
    doc.manifests.forEach((d, i) => {
      checkDescriptor(d, `manifests[${i}]`, fail);
      children.push([d, `index ${desc.digest}`]);
    });
  } else {
    if (doc.config === undefined) return fail('manifest has no "config"');
    if (!Array.isArray(doc.layers)) return fail('manifest has no "layers" array');
    checkDescriptor(doc.config, "config", fail);
    children.push([doc.config, `manifest ${desc.digest} (config)`]);
    doc.layers.forEach((d, i) => {
      checkDescriptor(d, `layers[${i}]`, fail);
      children.push([d, `manifest ${desc.digest} (layer ${i})`]);
    });
  }
  for (const [child, where] of children) await checkGraph(store, child, state, where, visited, depth + 1, maxIndexBytes);
  if (!isIndex && (doc.config!.mediaType === MediaType.ociConfig || doc.config!.mediaType === MediaType.dockerConfig)) {
    await checkImageConfig(store, doc.config!, doc.layers!.length, maxIndexBytes, fail);
  }
}

/** An image config pairs each layer with a diff_id by position: a build FROM the image relies on it. */
async function checkImageConfig(store: ImageStore, config: Descriptor, layers: number, maxBytes: number, fail: (why: string) => never): Promise<void> {
  if (config.size > maxBytes) fail(`config of ${config.size} bytes is larger than the ${maxBytes} bytes allowed`);
  let parsed: { rootfs?: { diff_ids?: unknown } } | null;
  try {
    parsed = JSON.parse((await store.readBlob(config.digest)).toString("utf8")) as typeof parsed;
  } catch (err) {
    return fail(`config ${config.digest} is not valid JSON: ${(err as Error).message}`);
  }
  const diffIds = parsed?.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === "string" && isDigest(d))) {
    fail(`config ${config.digest} has no rootfs.diff_ids list of sha256 digests`);
  }
  if ((diffIds as unknown[]).length !== layers) fail(`lists ${layers} layers but its config ${config.digest} ${(diffIds as unknown[]).length} rootfs.diff_ids`);
}
