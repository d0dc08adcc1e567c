import { addAbortSignal } from "node:stream";
import { DigestMismatchError, sha256, type Digest } from "../image/digest";
import { DistributionLayout, repositoryFor } from "../image/distribution-layout";
import { isIndexMediaType, isManifestMediaType, MediaType } from "../image/media-types";
import { formatReference, parseReference, referenceSelector, type Reference } from "../image/reference";
import type { ImageSource, ImageSourceFactory } from "../image/source";
import { platformString, type Descriptor, type ImageConfig, type Index, type Manifest, type Platform } from "../image/types";
import { countBytes } from "../util/streams";

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
export interface CacheImagesOptions {
  /**
   * fsync what is written. The builder caches into its scratch rootfs, which a crash discards
   * whole, and turns this off. @default true
   */
  durable?: boolean;
  /** Where to fetch from, per source registry. */
  sourceFor: ImageSourceFactory;
  /** The platform of the cluster; picked from multi-platform indexes. */
  platform: Platform;
  /** Parallel manifest resolutions and parallel blob downloads. @default 6 */
  concurrency?: number;
  /**
   * Retries of a transient failure: a blob stream that breaks or fails verification, and 5xx,
   * 429 or network errors of sources that do not retry themselves (RegistryClient does). @default 3
   */
  retries?: number;
  /** First backoff delay; doubled per retry, with jitter, at most 10 s. @default 250 */
  retryDelayMs?: number;
  signal?: AbortSignal;
  onProgress?(event: CacheProgressEvent): void;
}

export type CacheProgressEvent =
  | { type: "started"; image: string }
  /** `bytes` were just downloaded for `image` (blob `digest`); `imageBytes` is the running total for the image. */
  | { type: "bytes"; image: string; digest: Digest; bytes: number; imageBytes: number }
  | { type: "retry"; image: string; what: string; attempt: number; delayMs: number; error: string }
  | { type: "warning"; image: string; message: string }
  | { type: "done"; image: string; repository: string; digest: Digest; downloadedBytes: number };

export interface CachedImage {
  /** The image as normalised, e.g. `docker.io/library/nginx:1.25`. */
  image: string;
  /** Repository inside the cluster registry, e.g. `docker.io/library/nginx` (see repositoryFor). */
  repository: string;
  /** Digest the image's tag points at: the upstream manifest or index digest, unchanged. */
  digest: Digest;
  mediaType: string;
  /** Platforms whose manifests are stored, e.g. `["linux/amd64"]`. */
  platforms: string[];
}

/** An image that could not be cached: names the image, its registry and the cause. */
export class ImageCacheError extends Error {
  constructor(
    readonly failures: Array<{ image: string; registry?: string; error: Error }>,
  ) {
    super(formatFailures(failures), failures.length === 1 ? { cause: failures[0]!.error } : undefined);
    this.name = "ImageCacheError";
  }
}

const DEFAULT_CONCURRENCY = 6;
const DEFAULT_RETRIES = 3;
const DEFAULT_RETRY_DELAY_MS = 250;
const MAX_RETRY_DELAY_MS = 10_000;

interface PlatformManifest {
  digest: Digest;
  bytes: Buffer;
  manifest: Manifest;
  platform?: Platform;
}

interface Plan {
  image: string;
  ref: Reference;
  repository: string;
  source: ImageSource;
  sourceRepository: string;
  top: { digest: Digest; bytes: Buffer; mediaType: string };
  manifests: PlatformManifest[];
}

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
          if (!stop.signal.aborted) stop.abort(abortError(`stopped because ${plan.image} failed`));
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

// ---- phase 1 ----

async function resolvePlan(
  image: string,
  ref: Reference,
  opts: CacheImagesOptions,
  signal: AbortSignal,
  emit: (e: CacheProgressEvent) => void,
): Promise<Plan> {
  const source = opts.sourceFor(ref.registry);
  const sourceRepository = ref.repository;
  const fetchManifest = (reference: string, expected?: Digest) =>
    withRetry(
      async () => {
        signal.throwIfAborted();
        const fetched = await source.getManifest(sourceRepository, reference);
        const digest = sha256(fetched.bytes);
        if (expected !== undefined && digest !== expected) throw new DigestMismatchError(`manifest ${reference}`, expected, digest);
        return { digest, bytes: fetched.bytes, mediaType: manifestMediaType(fetched.bytes, fetched.mediaType) };
      },
      { what: `manifest ${reference}`, image, opts, signal, emit },
    );

  const top = await fetchManifest(referenceSelector(ref), ref.digest);
  const plan: Plan = { image, ref, repository: repositoryFor(ref), source, sourceRepository, top, manifests: [] };
  if (isIndexMediaType(top.mediaType)) {
    const index = parseJson<Index>(top.bytes, "index");
    if (!Array.isArray(index.manifests)) throw new Error(`index ${top.digest} has no manifests list`);
    const chosen = choosePlatform(index.manifests, opts.platform);
    if (!chosen) {
      const available = index.manifests.filter((m) => m.platform && !isAttestation(m)).map((m) => platformString(m.platform!));
      throw new Error(`no manifest for platform ${platformString(opts.platform)} in index ${top.digest} (available: ${available.join(", ") || "none"})`);
    }
    const child = await fetchManifest(chosen.digest, chosen.digest);
    if (!isManifestMediaType(child.mediaType)) {
      throw new Error(`index ${top.digest} entry ${chosen.digest} is ${child.mediaType}, not an image manifest`);
    }
    plan.manifests.push({ digest: child.digest, bytes: child.bytes, manifest: checkManifest(child.bytes, child.digest), platform: chosen.platform! });
  } else if (isManifestMediaType(top.mediaType)) {
    plan.manifests.push({ digest: top.digest, bytes: top.bytes, manifest: checkManifest(top.bytes, top.digest) });
  } else {
    throw new Error(`unsupported manifest media type "${top.mediaType}" (${top.digest}); only OCI and Docker schema 2 images are supported`);
  }
  return plan;
}

/** The media type of a manifest: its own `mediaType` field, else the response's, else its shape. */
function manifestMediaType(bytes: Buffer, declared: string): string {
  const doc = parseJson<{ mediaType?: unknown; manifests?: unknown; config?: unknown; schemaVersion?: unknown }>(bytes, "manifest");
  if (typeof doc.mediaType === "string" && doc.mediaType !== "") return doc.mediaType;
  if (isIndexMediaType(declared) || isManifestMediaType(declared)) return declared;
  if (doc.schemaVersion === 1) return "application/vnd.docker.distribution.manifest.v1+json";
  if (Array.isArray(doc.manifests)) return MediaType.ociIndex;
  if (doc.config !== undefined) return MediaType.ociManifest;
  return declared;
}

function checkManifest(bytes: Buffer, digest: Digest): Manifest {
  const m = parseJson<Manifest>(bytes, `manifest ${digest}`);
  if (!m.config || typeof m.config.digest !== "string" || !Array.isArray(m.layers)) {
    throw new Error(`manifest ${digest} has no config or layers`);
  }
  return m;
}

/**
 * The index entry for `want`: same os and architecture; variants compared with their
 * defaults filled in (arm64 = v8, arm = v7), an exact variant preferred. Attestation
 * manifests (platform unknown/unknown) never match.
 */
export function choosePlatform(manifests: Descriptor[], want: Platform): Descriptor | undefined {
  const candidates = manifests.filter((m) => m.platform && !isAttestation(m) && m.platform.os === want.os && m.platform.architecture === want.architecture);
  if (want.variant) {
    return (
      candidates.find((m) => m.platform!.variant === want.variant) ??
      candidates.find((m) => normVariant(m.platform!) === normVariant(want))
    );
  }
  return (
    candidates.find((m) => !m.platform!.variant) ??
    candidates.find((m) => normVariant(m.platform!) === normVariant(want)) ??
    candidates[0]
  );
}

function platformMatches(have: Platform, want: Platform): boolean {
  return have.os === want.os && have.architecture === want.architecture && (!want.variant || normVariant(have) === normVariant(want));
}

function normVariant(p: Platform): string {
  if (p.variant) return p.variant;
  if (p.architecture === "arm64") return "v8";
  if (p.architecture === "arm") return "v7";
  return "";
}

function isAttestation(d: Descriptor): boolean {
  return d.annotations?.["vnd.docker.reference.type"] === "attestation-manifest" || (d.platform?.os === "unknown" && d.platform.architecture === "unknown");
}

/** Foreign / non-distributable layers (Windows base layers) are fetched from their URLs by the runtime, never stored. */
function isExternalLayer(d: Descriptor): boolean {
  return (d.urls?.length ?? 0) > 0 && (d.mediaType === MediaType.dockerForeignLayerGzip || d.mediaType.includes("nondistributable"));
}

async function configPlatform(layout: DistributionLayout, config: Descriptor): Promise<Platform | undefined> {
  if (config.mediaType !== MediaType.ociConfig && config.mediaType !== MediaType.dockerConfig) return undefined;
  try {
    const c = JSON.parse((await layout.readBlob(config.digest)).toString("utf8")) as Partial<ImageConfig>;
    if (typeof c.os !== "string" || typeof c.architecture !== "string") return undefined;
    return c.variant ? { os: c.os, architecture: c.architecture, variant: c.variant } : { os: c.os, architecture: c.architecture };
  } catch {
    return undefined;
  }
}

// ---- retries ----

interface RetryContext {
  what: string;
  image: string;
  opts: CacheImagesOptions;
  signal: AbortSignal;
  emit: (e: CacheProgressEvent) => void;
}

async function withRetry<T>(fn: () => Promise<T>, ctx: RetryContext): Promise<T> {
  const retries = Math.max(0, ctx.opts.retries ?? DEFAULT_RETRIES);
  const base = ctx.opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (ctx.signal.aborted || attempt > retries || !isTransient(err)) throw err;
      const retryAfter = (err as { retryAfterMs?: unknown }).retryAfterMs;
      const backoff = Math.min(base * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS) * (0.5 + Math.random() / 2);
      const delayMs = Math.round(typeof retryAfter === "number" ? Math.min(Math.max(retryAfter, backoff), MAX_RETRY_DELAY_MS) : backoff);
      ctx.emit({ type: "retry", image: ctx.image, what: ctx.what, attempt, delayMs, error: asError(err).message });
      await sleep(delayMs, ctx.signal);
    }
  }
}

const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
]);

/**
 * Worth another try: a body that broke or did not match its digest on the way (no source can
 * retry that: it already handed the stream over), and, from sources that do not retry
 * themselves, server errors, throttling and network errors. Not: 4xx answers (unknown
 * manifest, denied), bad input, aborts, and RegistryErrors: the RegistryClient already
 * retried those requests as configured, and retrying again would multiply its attempts.
 */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (isAbort(err)) return false;
  if (err instanceof DigestMismatchError || err.name === "DigestMismatchError" || err.name === "SizeMismatchError") return true;
  if (err.name === "RegistryError") return false;
  const e = err as { status?: unknown; code?: unknown };
  if (typeof e.status === "number") return e.status === 408 || e.status === 429 || e.status >= 500;
  if (typeof e.code === "string") return TRANSIENT_CODES.has(e.code);
  return /premature close|socket hang up|aborted/i.test(err.message);
}

function abortError(message: string): Error {
  const err = new Error(message);
  err.name = "AbortError";
  return err;
}

function isAbort(err: Error): boolean {
  return err.name === "AbortError" || (err as { code?: unknown }).code === "ABORT_ERR";
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(asError(signal.reason));
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(asError(signal.reason));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

// ---- small helpers ----

/** A concurrency limiter: at most `n` of the functions it is given run at once. */
function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: Array<() => void> = [];
  const next = (): void => {
    if (active >= n) return;
    const run = queue.shift();
    if (run) {
      active++;
      run();
    }
  };
  return <T>(fn: () => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      queue.push(() => {
        fn()
          .then(resolve, reject)
          .finally(() => {
            active--;
            next();
          });
      });
      next();
    });
}

/** Passes a stream through, reporting chunk sizes; an error of the source fails the result, and destroying the result destroys the source. */
function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    const v = JSON.parse(bytes.toString("utf8")) as unknown;
    if (!v || typeof v !== "object") throw new Error("not a JSON object");
    return v as T;
  } catch (err) {
    throw new Error(`${what} is not valid JSON: ${asError(err).message}`);
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function formatFailures(failures: Array<{ image: string; registry?: string; error: Error }>): string {
  const line = (f: { image: string; registry?: string; error: Error }): string =>
    `${f.image}${f.registry ? ` (from ${f.registry})` : ""}: ${f.error.message}`;
  if (failures.length === 1) return `caching image ${line(failures[0]!)}`;
  return `caching ${failures.length} images failed:\n` + failures.map((f) => `  ${line(f)}`).join("\n");
}
