import type { Readable } from "node:stream";
import type { Digest } from "./digest";
import { readMetadata, type ClusterImageMetadata } from "./metadata";
import { MAX_DOCUMENT_BYTES, checkDocumentSize, parseImageConfig, parseManifest, parseManifestDocument, type ManifestDocument } from "./schemas";
import type { ImageSource } from "./source";
import type { ImageStore } from "./store";
import type { Descriptor, ImageConfig, Manifest, Platform } from "./types";

/**
 * Where an image's manifests and configs are read from: the local store or a registry (any
 * ImageSource). Only JSON documents are read here, never layers; each is size-capped and
 * checked against its schema before use.
 */
export interface ImageReader {
  /** The bytes of a manifest or index, and its media type (as the source says, else as the descriptor does). */
  manifest(desc: Descriptor): Promise<{ mediaType: string | undefined; bytes: Buffer }>;
  /** The bytes of a config. */
  config(desc: Descriptor): Promise<Buffer>;
}

/** One platform's manifest of an image, with its config and what it says about itself. */
export interface ImagePart {
  /** The manifest's descriptor (an index entry, or the image's own for a single manifest). */
  descriptor: Descriptor;
  /** The index entry's platform, else the config's (os linux, architecture amd64 when it names none). */
  platform: Platform;
  manifest: Manifest;
  config: ImageConfig;
  metadata: ClusterImageMetadata;
}

export interface ImageParts {
  /** What the reference resolved to: an index for a multi-platform image, else the manifest. */
  descriptor: Descriptor;
  mediaType: string | undefined;
  /** In the index's order (the first is the one a single answer is read from). */
  parts: ImagePart[];
}

/**
 * Walks an image from its top descriptor: index (when it is one) → each manifest → its config.
 * The one walk the store's inspection, the cluster image and a registry lookup share.
 */
export async function readImage(reader: ImageReader, top: Descriptor): Promise<ImageParts> {
  const topDoc = await readDocument(reader, top);
  const mediaType = topDoc.mediaType;
  const entries: Array<{ desc: Descriptor; manifest?: Manifest }> =
    topDoc.kind === "index" ? topDoc.index.manifests.map((desc) => ({ desc })) : [{ desc: top, manifest: topDoc.manifest }];
  const parts: ImagePart[] = [];
  for (const e of entries) {
    const manifest = e.manifest ?? (await readManifest(reader, e.desc));
    const what = `config ${manifest.config.digest}`;
    checkDocumentSize(manifest.config.size, what);
    const config = parseImageConfig(await reader.config(manifest.config), what);
    const platform: Platform = e.desc.platform ?? {
      os: config.os ?? "linux",
      architecture: config.architecture ?? "amd64",
      ...(config.variant ? { variant: config.variant } : {}),
    };
    parts.push({ descriptor: e.desc, platform, manifest, config, metadata: readMetadata(manifest, config) });
  }
  return { descriptor: top, mediaType, parts };
}

async function readDocument(reader: ImageReader, desc: Descriptor): Promise<ManifestDocument> {
  const what = `manifest ${desc.digest}`;
  checkDocumentSize(desc.size, what);
  const got = await reader.manifest(desc);
  return parseManifestDocument(got.bytes, what, got.mediaType ?? desc.mediaType);
}

async function readManifest(reader: ImageReader, desc: Descriptor): Promise<Manifest> {
  const what = `manifest ${desc.digest}`;
  checkDocumentSize(desc.size, what);
  const got = await reader.manifest(desc);
  return parseManifest(got.bytes, what, got.mediaType ?? desc.mediaType);
}

/** Reads from the local store (every blob must be there). */
export function storeReader(store: ImageStore): ImageReader {
  return {
    manifest: async (desc) => ({ mediaType: desc.mediaType, bytes: await store.readBlob(desc.digest) }),
    config: (desc) => store.readBlob(desc.digest),
  };
}

/** Reads one repository of a registry (or anything shaped like one); blobs are verified by the source. */
export function sourceReader(source: ImageSource, repository: string): ImageReader {
  return {
    manifest: async (desc) => {
      const got = await source.getManifest(repository, desc.digest);
      return { mediaType: got.mediaType, bytes: got.bytes };
    },
    config: async (desc) => readAll(await source.openBlob(repository, desc.digest as Digest, { size: desc.size }), `config ${desc.digest}`),
  };
}

async function readAll(stream: Readable, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_DOCUMENT_BYTES) {
      stream.destroy();
      throw new Error(`${what}: more than ${MAX_DOCUMENT_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The labels an image shows: its config's, then those its metadata carries. */
export function imageLabels(part: ImagePart | undefined): Record<string, string> {
  return { ...(part?.config.config?.Labels ?? {}), ...(part?.metadata.labels ?? {}) };
}
