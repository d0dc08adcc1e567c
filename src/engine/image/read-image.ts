import type { Readable } from "node:stream";
import type { Digest } from "./digest";
import { isIndexMediaType } from "./media-types";
import { readMetadata, type ClusterImageMetadata } from "./metadata";
import type { ImageSource } from "./source";
import type { ImageStore } from "./store";
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from "./types";

/**
 * Where an image's manifests and configs are read from: the local store or a registry (any
 * ImageSource). Only JSON documents are read here, never layers.
 */
export interface ImageReader {
  /** A manifest or index, and its media type (as the source says, else as the descriptor does). */
  manifest(desc: Descriptor): Promise<{ mediaType: string | undefined; json: unknown }>;
  config(desc: Descriptor): Promise<ImageConfig>;
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
  const got = await reader.manifest(top);
  const mediaType = got.mediaType ?? top.mediaType;
  const entries: Array<{ desc: Descriptor; manifest?: Manifest }> = isIndexMediaType(mediaType)
    ? (got.json as Index).manifests.map((desc) => ({ desc }))
    : [{ desc: top, manifest: got.json as Manifest }];
  const parts: ImagePart[] = [];
  for (const e of entries) {
    const manifest = e.manifest ?? ((await reader.manifest(e.desc)).json as Manifest);
    const config = await reader.config(manifest.config);
    const platform: Platform = e.desc.platform ?? {
      os: config.os ?? "linux",
      architecture: config.architecture ?? "amd64",
      ...(config.variant ? { variant: config.variant } : {}),
    };
    parts.push({ descriptor: e.desc, platform, manifest, config, metadata: readMetadata(manifest, config) });
  }
  return { descriptor: top, mediaType, parts };
}

/** Reads from the local store (every blob must be there). */
export function storeReader(store: ImageStore): ImageReader {
  return {
    manifest: async (desc) => ({ mediaType: desc.mediaType, json: await store.readJson<unknown>(desc.digest) }),
    config: (desc) => store.readJson<ImageConfig>(desc.digest),
  };
}

/** Reads one repository of a registry (or anything shaped like one); blobs are verified by the source. */
export function sourceReader(source: ImageSource, repository: string): ImageReader {
  return {
    manifest: async (desc) => {
      const got = await source.getManifest(repository, desc.digest);
      return { mediaType: got.mediaType, json: JSON.parse(got.bytes.toString("utf8")) as unknown };
    },
    config: async (desc) =>
      JSON.parse((await readAll(await source.openBlob(repository, desc.digest as Digest, { size: desc.size }))).toString("utf8")) as ImageConfig,
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The labels an image shows: its config's, then those its metadata carries. */
export function imageLabels(part: ImagePart | undefined): Record<string, string> {
  return { ...(part?.config.config?.Labels ?? {}), ...(part?.metadata.labels ?? {}) };
}
