import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Digest } from "../../image/digest";
import type { Application } from "../../image/metadata";
import type { Descriptor } from "../../image/types";
import { DistributionLayout } from "../../image/distribution-layout";
import { parseReference } from "../../image/reference";
import { discoverImages } from "../discovery";
import { cacheImages } from "../image-cache";
import { writeLayer } from "../layer-writer";
import type { BuildOptions } from "../options";
import type { PlatformBuild } from "../platform-build";
import { diffSnapshots, takeSnapshot } from "../snapshot";

export const IMAGES_STEP = "cache container images";

/**
 * The last layer: every container image the rootfs refers to, cached into its registry/.
 * Its cache key is the parent chain plus the image-list files, since discovery reads only
 * files the parent layers determine.
 */
export async function cacheContainerImages(
  build: PlatformBuild,
  opts: BuildOptions,
  pf: string,
  apps: Application[],
): Promise<{ images: string[]; cached: boolean | null }> {
  const lists = [];
  for (const f of [...(opts.imageListFiles ?? []), ...(opts.ignoredImageListFiles ?? [])]) lists.push(`${f}\n${await readFile(f, "utf8")}`);
  const key = build.nextKey(`${IMAGES_STEP}\n${JSON.stringify(lists)}`);
  const hit = opts.noCache ? undefined : await opts.store.readPin<ImagesRecord>(`build:${key}`);
  if (hit && (!hit.layer || (await opts.store.hasBlob(hit.layer.digest)))) {
    if (hit.layer && hit.diffId) build.addLayer(key, hit.layer, hit.diffId, IMAGES_STEP, true, false);
    else build.addEmpty(IMAGES_STEP, IMAGES_STEP);
    opts.onEvent?.({ type: "images", platform: pf, images: hit.containerImages, cached: true });
    return { images: hit.containerImages, cached: hit.layer ? true : null };
  }
  const rootfs = await build.rootfsReady();
  const found = await discoverImages(rootfs, {
    apps: apps.map((a) => ({ name: a.name, dir: `application/apps/${a.name}` })),
    ...(opts.imageListFiles ? { imageListFiles: opts.imageListFiles } : {}),
    ...(opts.ignoredImageListFiles ? { ignoredImageListFiles: opts.ignoredImageListFiles } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  for (const w of found.warnings) opts.onEvent?.({ type: "warning", platform: pf, text: w });
  const images = found.images.map((i) => i.image).sort();
  opts.onEvent?.({ type: "images", platform: pf, images, cached: false });
  if (images.length === 0) {
    // Nothing to cache: no layer, but remember that so a rebuild need not look again.
    await opts.store.pin(`build:${key}`, { digests: [], containerImages: [] });
    build.addEmpty(IMAGES_STEP, IMAGES_STEP);
    return { images: [], cached: null };
  }
  // Images a base image already holds (its registry/ is in the rootfs) are not fetched again:
  // an image built FROM a cluster image needs no access to the registries the base came from.
  const held = new DistributionLayout(join(rootfs, "registry"), false);
  const missing: string[] = [];
  for (const image of images) if (!(await held.hasImage(parseReference(image)))) missing.push(image);
  if (missing.length === 0) {
    await opts.store.pin(`build:${key}`, { digests: [], containerImages: images });
    build.addEmpty(IMAGES_STEP, IMAGES_STEP);
    return { images, cached: null };
  }
  const before = await takeSnapshot(rootfs);
  await cacheImages(missing, join(rootfs, "registry"), {
    sourceFor: opts.sourceFor,
    platform: build.platform,
    // The scratch rootfs is thrown away on a crash; the layer made from it is written durably.
    durable: false,
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    onProgress: (e) => {
      if (e.type === "bytes") opts.onEvent?.({ type: "image-progress", platform: pf, image: e.image, bytes: e.imageBytes, done: false });
      else if (e.type === "done") opts.onEvent?.({ type: "image-progress", platform: pf, image: e.image, bytes: e.downloadedBytes, done: true });
      else if (e.type === "retry")
        opts.onEvent?.({ type: "image-retry", platform: pf, image: e.image, text: `${e.what}: ${e.error} (retry ${e.attempt} in ${e.delayMs} ms)` });
      else if (e.type === "warning") opts.onEvent?.({ type: "warning", platform: pf, text: `${e.image}: ${e.message}` });
    },
  });
  const entries = diffSnapshots(rootfs, before, await takeSnapshot(rootfs));
  const written = await writeLayer(opts.store, entries);
  await opts.store.pin(`build:${key}`, { digests: [written.descriptor.digest], layer: written.descriptor, diffId: written.diffId, containerImages: images });
  build.addLayer(key, written.descriptor, written.diffId, IMAGES_STEP, false, true);
  return { images, cached: false };
}

interface ImagesRecord {
  digests: Digest[];
  layer?: Descriptor;
  diffId?: Digest;
  containerImages: string[];
}
