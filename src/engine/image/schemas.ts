import { z } from "zod";
import { INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MediaType, isIndexMediaType, isManifestMediaType } from "./media-types";
import type { ImageConfig, Index, Manifest } from "./types";

/**
 * Every manifest, index and image config sealant reads (from a registry, an archive or its own
 * store) is checked here before any field is used: a document that is not JSON, lacks a field,
 * or carries a malformed digest, size or media type fails with one error naming the document
 * and the field, instead of a JavaScript error deep inside whatever used it first.
 */

/** The most a manifest, index or config may weigh before it is read into memory (containerd's limit too). */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

const digest = z.string().refine((v) => /^sha256:[a-f0-9]{64}$/.test(v), {
  error: (iss) => `${JSON.stringify(iss.input)} is not a digest (expected sha256: followed by 64 lowercase hex digits)`,
});
const size = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const annotations = z.record(z.string(), z.string());
/** Docker writes `null` for empty lists and maps; read it as absent. */
const nullable = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === null ? undefined : v), schema.optional());

const platform = z.looseObject({
  architecture: z.string().min(1),
  os: z.string().min(1),
  variant: z.string().optional(),
  "os.version": z.string().optional(),
  "os.features": z.array(z.string()).optional(),
});

const descriptor = z.looseObject({
  mediaType: z.string().min(1),
  digest,
  size,
  annotations: annotations.optional(),
  platform: platform.optional(),
  urls: z.array(z.string()).optional(),
});

const manifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.enum(MANIFEST_MEDIA_TYPES as [string, ...string[]]).optional(),
  artifactType: z.string().optional(),
  config: descriptor,
  layers: z.array(descriptor),
  annotations: annotations.optional(),
});

const indexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.enum(INDEX_MEDIA_TYPES as [string, ...string[]]).optional(),
  manifests: z.array(descriptor),
  annotations: annotations.optional(),
});

const configSchema = z.looseObject({
  created: z.string().optional(),
  author: z.string().optional(),
  architecture: z.string(),
  os: z.string(),
  variant: z.string().optional(),
  config: nullable(
    z.looseObject({
      Env: nullable(z.array(z.string())),
      Cmd: nullable(z.array(z.string())),
      Entrypoint: nullable(z.array(z.string())),
      WorkingDir: nullable(z.string()),
      Labels: nullable(z.record(z.string(), z.string())),
    }),
  ),
  rootfs: z.looseObject({ type: z.literal("layers"), diff_ids: z.array(digest) }),
  history: nullable(z.array(z.looseObject({}))),
});

export type ManifestDocument = { kind: "manifest"; mediaType: string; manifest: Manifest } | { kind: "index"; mediaType: string; index: Index };

/**
 * Parses a manifest or an index. `declared` is what the registry's Content-Type or the
 * descriptor that pointed at it says; the document's own mediaType must agree with it.
 * `what` names the document in errors (e.g. `manifest 127.0.0.1:5000/app:1`).
 */
export function parseManifestDocument(bytes: Buffer, what: string, declared?: string): ManifestDocument {
  const json = parseJson(bytes, what);
  const own = typeof json === "object" && json !== null && "mediaType" in json ? (json as { mediaType: unknown }).mediaType : undefined;
  if (own !== undefined && typeof own !== "string") throw new Error(`${what}: mediaType: expected a string, got ${JSON.stringify(own)}`);
  const known = (t: string | undefined) => isManifestMediaType(t) || isIndexMediaType(t);
  if (own !== undefined && !known(own)) throw new Error(`${what}: mediaType: ${JSON.stringify(own)} is not an image manifest or index (${allowedTypes()})`);
  if (own !== undefined && known(declared) && own !== declared) {
    throw new Error(`${what}: mediaType: the document says ${JSON.stringify(own)} but it was served or described as ${JSON.stringify(declared)}`);
  }
  const mediaType = own ?? (known(declared) ? declared! : shapeOf(json));
  if (isIndexMediaType(mediaType)) return { kind: "index", mediaType, index: check(indexSchema, json, what) as Index };
  return { kind: "manifest", mediaType, manifest: check(manifestSchema, json, what) as Manifest };
}

/** A document that must be an image manifest (an index entry, a platform's manifest). */
export function parseManifest(bytes: Buffer, what: string, declared?: string): Manifest {
  const doc = parseManifestDocument(bytes, what, declared);
  if (doc.kind !== "manifest") throw new Error(`${what}: mediaType: expected an image manifest, got an index (${doc.mediaType})`);
  return doc.manifest;
}

/** A document that must be an index. */
export function parseIndex(bytes: Buffer, what: string, declared?: string): Index {
  const doc = parseManifestDocument(bytes, what, declared);
  if (doc.kind !== "index") throw new Error(`${what}: mediaType: expected an index, got an image manifest (${doc.mediaType})`);
  return doc.index;
}

/** An image configuration. */
export function parseImageConfig(bytes: Buffer, what: string): ImageConfig {
  return check(configSchema, parseJson(bytes, what), what) as ImageConfig;
}

/** Refuses a descriptor too large to read into memory as a document, before anything is fetched. */
export function checkDocumentSize(size: number, what: string): void {
  if (size > MAX_DOCUMENT_BYTES)
    throw new Error(`${what}: its descriptor says ${size} bytes, more than the limit of ${MAX_DOCUMENT_BYTES} for a manifest, index or config`);
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString("utf8")) as unknown;
  } catch {
    const excerpt = bytes.subarray(0, 40).toString("utf8").replace(/\s+/g, " ");
    throw new Error(`${what}: not JSON (it starts with ${JSON.stringify(excerpt)})`);
  }
}

function shapeOf(json: unknown): string {
  return typeof json === "object" && json !== null && Array.isArray((json as { manifests?: unknown }).manifests) ? MediaType.ociIndex : MediaType.ociManifest;
}

function allowedTypes(): string {
  return `expected one of ${[...MANIFEST_MEDIA_TYPES, ...INDEX_MEDIA_TYPES].join(", ")}`;
}

function check(schema: z.ZodType, json: unknown, what: string): unknown {
  const result = schema.safeParse(json);
  if (result.success) return result.data;
  const issues = result.error.issues.slice(0, 3).map((i) => `${fieldPath(i.path) || "(the document)"}: ${i.message}`);
  const more = result.error.issues.length > 3 ? ` (and ${result.error.issues.length - 3} more)` : "";
  return fail(`${what}: ${issues.join("; ")}${more}`);
}

function fail(message: string): never {
  throw new Error(message);
}

/** `layers[0].digest` */
function fieldPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i > 0 ? "." : ""}${String(p)}`)).join("");
}
