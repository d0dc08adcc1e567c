import { addAbortSignal } from "node:stream";
import type { Digest } from "../../image/digest";
import { DistributionLayout, repositoryFor } from "../../image/distribution-layout";
import { platformMatches } from "../../image/platform";
import { formatReference, parseReference, type Reference } from "../../image/reference";
import { platformString, type Descriptor } from "../../image/types";
import { limiter } from "../../util/concurrency";
import { countBytes } from "../../util/streams";
import { configPlatform, isExternalLayer, resolvePlan, type Plan } from "./plan";
import { isAbort, stoppedError, withRetry } from "./retry";
import { asError, DEFAULT_CONCURRENCY, ImageCacheError, type CacheImagesOptions, type CachedImage, type CacheProgressEvent } from "./types";

export { isTransient } from "./retry";
export { ImageCacheError, type CacheImagesOptions, type CachedImage, type CacheProgressEvent } from "./types";

/**
 * Copies container images into a cluster image's `registry/` directory, in the on-disk layout
 * of the CNCF distribution registry (see DistributionLayout), so that a stock registry started
 * on that directory serves them to the cluster's nodes.
 *
 * Multi-platform images: the index is stored byte for byte, under its upstream digest, with
 * only the target platform's manifest (and its config and layers) present. Tags and
 * `image@sha256:<index digest>` pins keep resolving to the same digest as upstream, and a
 * client pulling for the target platform (containerd, `skopeo copy` with a matching
 * platform) picks the manifest that is there. Asking for another platform or for all of them
 * (`skopeo copy --all`) fails on the missing manifests, by design: a cluster image is built
 * per platform.
 *
 * Work happens in two phases. First every image's manifests are resolved (cheap), so that all
 * missing or broken images are reported together before any layer is downloaded. Then the
 * blobs are fetched with bounded parallelism, each blob at most once per call even when
 * several images share it (an in-flight map), verified against its digest while it is
 * written, and renamed into place; manifests, links and finally tags follow, so a tag never
 * points at incomplete content. The first failure in this phase stops the call.
 */
export async function cacheImages(images: string[], registryDir: string, opts: CacheImagesOptions): Promise<CachedImage[]> {
  const concurrency = Math.max(1, opts.concurrency ?? DEFAULT_CONCURRENCY);
  const layout = new DistributionLayout(registryDir, opts.durable ?? true);
  const emit = (e: CacheProgressEvent): void => opts.onProgress?.(e);

  // Normalise and de-duplicate, keeping the first spelling's position.
  const failures: Array<{ image: string; registry?: string; error: Error }> = [];
  const refs: Array<{ image: string; ref: Reference }> = [];
  const seen = new Set<string>();
  for (const input of images) {
    try {
      const ref = parseReference(input);
      const image = formatReference(ref);
      repositoryFor(ref); // fails early for registries that cannot be stored
      if (!seen.has(image)) {
        seen.add(image);
        refs.push({ image, ref });
      }
    } catch (err) {
      failures.push({ image: input, error: asError(err) });
    }
  }
  if (failures.length > 0) throw new ImageCacheError(failures);

  // Phase 1: resolve every image's manifests; report every failure at once.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort(opts.signal?.reason);
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    opts.signal?.throwIfAborted();
    const manifestLimit = limiter(concurrency);
    const plans: Array<Plan | undefined> = await Promise.all(
      refs.map(({ image, ref }) =>
        manifestLimit(async () => {
          try {
            return await resolvePlan(image, ref, opts, stop.signal, emit);
          } catch (err) {
            if (stop.signal.aborted) throw err;
            failures.push({ image, registry: ref.registry, error: asError(err) });
            return undefined;
          }
        }),
      ),
    );
    if (failures.length > 0) throw new ImageCacheError(failures);

    // Phase 2: blobs (shared, once each), then manifests, links and tags per image.
    const blobLimit = limiter(concurrency);
    const inFlight = new Map<Digest, Promise<void>>();
    const ensureBlob = (plan: Plan, desc: Descriptor, counter: { bytes: number }): Promise<void> => {
      let p = inFlight.get(desc.digest);
      if (!p) {
        p = (async () => {
          if (await layout.hasBlob(desc.digest)) return;
          await blobLimit(() =>
            withRetry(
              async () => {
                stop.signal.throwIfAborted();
                // The layout hashes while writing and keeps only a match: no second hash here.
                const body = await plan.source.openBlob(plan.sourceRepository, desc.digest, { size: desc.size, verify: false });
                const counted = countBytes(body, (n) => {
                  counter.bytes += n;
                  emit({ type: "bytes", image: plan.image, digest: desc.digest, bytes: n, imageBytes: counter.bytes });
                });
                await layout.putBlobStream(addAbortSignal(stop.signal, counted), {
                  digest: desc.digest,
                  size: desc.size,
                  what: `blob ${desc.digest}`,
                });
              },
              { what: `blob ${desc.digest}`, image: plan.image, opts, signal: stop.signal, emit },
            ),
          );
        })();
        inFlight.set(desc.digest, p);
        // A failure is reported through whoever awaits it; keep it from being "unhandled" meanwhile.
        p.catch(() => undefined);
      }
      return p;
    };

    const imageLimit = limiter(concurrency);
    const results: CachedImage[] = [];
    const tasks = plans.map((maybePlan, i) =>
      imageLimit(async () => {
        const plan = maybePlan!;
        try {
          stop.signal.throwIfAborted();
          emit({ type: "started", image: plan.image });
          const counter = { bytes: 0 };
          const platforms: string[] = [];
          for (const pm of plan.manifests) {
            const blobs = [pm.manifest.config, ...pm.manifest.layers.filter((l) => !isExternalLayer(l))];
            await Promise.all(blobs.map((d) => ensureBlob(plan, d, counter)));
            const platform = pm.platform ?? (await configPlatform(layout, pm.manifest.config));
            if (platform) {
              platforms.push(platformString(platform));
              if (!pm.platform && !platformMatches(platform, opts.platform)) {
                emit({
                  type: "warning",
                  image: plan.image,
                  message: `${plan.image} is a single-platform image for ${platformString(platform)}, not ${platformString(opts.platform)}`,
                });
              }
            }
            for (const d of blobs) await layout.linkBlob(plan.repository, d.digest);
            await layout.putBlob(pm.bytes, pm.digest);
            await layout.linkManifest(plan.repository, pm.digest);
          }
          if (plan.manifests.length !== 1 || plan.manifests[0]!.digest !== plan.top.digest) {
            await layout.putBlob(plan.top.bytes, plan.top.digest);
            await layout.linkManifest(plan.repository, plan.top.digest);
          }
          if (plan.ref.tag !== undefined) await layout.tag(plan.repository, plan.ref.tag, plan.top.digest);
          results[i] = {
            image: plan.image,
            repository: plan.repository,
            digest: plan.top.digest,
            mediaType: plan.top.mediaType,
            platforms,
          };
          emit({ type: "done", image: plan.image, repository: plan.repository, digest: plan.top.digest, downloadedBytes: counter.bytes });
        } catch (err) {
          failures.push({ image: plan.image, registry: plan.ref.registry, error: asError(err) });
          // Stop the other images: their errors will be AbortErrors, filtered out below.
          if (!stop.signal.aborted) stop.abort(stoppedError(`stopped because ${plan.image} failed`));
          throw err;
        }
      }),
    );
    const settled = await Promise.allSettled(tasks);
    opts.signal?.throwIfAborted();
    if (failures.length > 0) {
      // Failures after the first are mostly "aborted" echoes of it; keep the real ones.
      const real = failures.filter((f) => !isAbort(f.error));
      throw new ImageCacheError(real.length > 0 ? real : failures.slice(0, 1));
    }
    const rejected = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (rejected) throw asError(rejected.reason);
    return results;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
}
