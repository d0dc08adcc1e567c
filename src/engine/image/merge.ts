import { checkLayerStack, LayerPathError, type StackedLayer } from "./archive/layer-paths";
import type { Digest } from "./digest";
import { isIndexMediaType, MediaType } from "./media-types";
import { metadataAnnotations, readMetadata, type ClusterImageMetadata } from "./metadata";
import type { ImageStore, StoredImage } from "./store";
import { platformString, type Descriptor, type ImageConfig, type Index, type Manifest, type Platform } from "./types";

export interface MergeResult {
  ref: string;
  digest: Digest;
  platforms: string[];
}

/**
 * Combines cluster images into one (e.g. a Kubernetes base + a CNI image + an app image):
 * layers in the order given, a layer shared by several inputs kept once (the first place it
 * appears), env and labels merged with later images winning, apps and container images
 * united, launch lists concatenated. Only platforms every input has are merged. The stacked
 * layers are read once (headers only): no entry may pass through a link another layer made,
 * since a host assembling the image would follow it (archive/layer-paths.ts).
 */
export async function mergeImages(store: ImageStore, refs: string[], target: string): Promise<MergeResult> {
  const release = await store.lease();
  try {
    return await mergeLeased(store, refs, target);
  } finally {
    await release();
  }
}

async function mergeLeased(store: ImageStore, refs: string[], target: string): Promise<MergeResult> {
  if (refs.length < 2) throw new Error(`merge needs at least two images, got ${refs.length}`);
  // One at a time: with several missing, the error names the first as given, not whichever lookup lost a race.
  const images: StoredImage[] = [];
  for (const r of refs) images.push(await store.resolve(r));
  const platformSets = await Promise.all(images.map((i) => platformsOf(store, i)));
  const common = platformSets[0]!.filter((p) => platformSets.every((set) => set.some((q) => platformString(q) === platformString(p))));
  if (common.length === 0) {
    const listed = images.map((img, i) => `${img.ref} (${platformSets[i]!.map(platformString).join(", ")})`).join("; ");
    throw new Error(`cannot merge: the images share no platform: ${listed}`);
  }
  const merged: Array<{ platform: Platform; descriptor: Descriptor }> = [];
  for (const platform of common) {
    const parts = await Promise.all(
      images.map(async (img) => {
        const { manifest } = await store.manifestFor(img.descriptor, platform);
        const config = await store.readJson<ImageConfig>(manifest.config.digest);
        // The merged config pairs each layer with its diff_id by position: a count that differs would misname every layer after it.
        const diffIds = config.rootfs?.diff_ids;
        if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length) {
          throw new Error(
            `cannot merge ${img.ref} (${platformString(platform)}): its manifest lists ${manifest.layers.length} layers but its config ${Array.isArray(diffIds) ? diffIds.length : "no"} rootfs.diff_ids`,
          );
        }
        return { ref: img.ref, manifest, config, metadata: readMetadata(manifest, config) };
      }),
    );
    merged.push({ platform, descriptor: await mergePlatform(store, parts, platform) });
  }
  let descriptor: Descriptor;
  if (merged.length === 1) descriptor = merged[0]!.descriptor;
  else {
    const index: Index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: merged.map((m) => ({ ...m.descriptor, platform: m.platform })) };
    descriptor = await store.putJson(index, MediaType.ociIndex);
  }
  const ref = await store.setTag(target, descriptor);
  return { ref, digest: descriptor.digest, platforms: merged.map((m) => platformString(m.platform)) };
}

async function platformsOf(store: ImageStore, image: StoredImage): Promise<Platform[]> {
  if (isIndexMediaType(image.descriptor.mediaType)) {
    const index = await store.readIndexBlob(image.descriptor.digest);
    return index.manifests.filter((m) => m.platform).map((m) => m.platform!);
  }
  const manifest = await store.readManifest(image.descriptor.digest);
  const config = await store.readJson<ImageConfig>(manifest.config.digest);
  return [{ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) }];
}

async function mergePlatform(
  store: ImageStore,
  parts: Array<{ ref: string; manifest: Manifest; config: ImageConfig; metadata: ClusterImageMetadata }>,
  platform: Platform,
): Promise<Descriptor> {
  const layers: Descriptor[] = [];
  const stack: StackedLayer[] = [];
  const diffIds: Digest[] = [];
  const history: NonNullable<ImageConfig["history"]> = [];
  const env = new Map<string, string>();
  const labels: Record<string, string> = {};
  const meta: ClusterImageMetadata = { schemaVersion: "v1", kind: "app-installer", applications: [], launch: {}, env: {}, labels: {}, containerImages: [] };
  for (const { ref, manifest, config, metadata } of parts) {
    manifest.layers.forEach((layer, i) => {
      if (layers.some((l) => l.digest === layer.digest)) return;
      layers.push(layer);
      stack.push({ digest: layer.digest, mediaType: layer.mediaType, label: `layer ${i + 1} of ${ref}` });
      diffIds.push(config.rootfs.diff_ids[i]!);
      history.push({ created_by: `merged from layer ${i + 1} of ${manifest.config.digest.slice(7, 19)}` });
    });
    for (const kv of config.config?.Env ?? []) {
      const eq = kv.indexOf("=");
      if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
    Object.assign(labels, config.config?.Labels ?? {});
    if (metadata.kind === "kube-installer") meta.kind = "kube-installer";
    if (metadata.runtime && !meta.runtime) meta.runtime = metadata.runtime;
    for (const app of metadata.applications) {
      const i = meta.applications.findIndex((a) => a.name === app.name);
      if (i >= 0) meta.applications[i] = app;
      else meta.applications.push(app);
    }
    if (metadata.launch.apps) meta.launch.apps = unique([...(meta.launch.apps ?? []), ...metadata.launch.apps]);
    if (metadata.launch.cmds) meta.launch.cmds = [...(meta.launch.cmds ?? []), ...metadata.launch.cmds];
    Object.assign(meta.env, metadata.env);
    Object.assign(meta.labels, metadata.labels);
    for (const c of metadata.containerImages) if (!meta.containerImages.some((x) => x.image === c.image)) meta.containerImages.push(c);
  }
  // The merged order stacks one image's links under another's entries, which no build checked.
  try {
    await checkLayerStack(store, stack);
  } catch (err) {
    if (err instanceof LayerPathError) throw new Error(`cannot merge (${platformString(platform)}): ${err.message}`);
    throw err;
  }
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: [...env].map(([k, v]) => `${k}=${v}`), Labels: labels },
    rootfs: { type: "layers", diff_ids: diffIds },
    history,
  };
  const configDesc = await store.putJson(config, MediaType.ociConfig);
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDesc, layers, annotations: metadataAnnotations(meta) };
  return store.putJson(manifest, MediaType.ociManifest);
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
