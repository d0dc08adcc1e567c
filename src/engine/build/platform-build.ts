import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import type { Digest } from "../image/digest";
import { platformString, type Descriptor, type ImageConfig, type Platform } from "../image/types";
import { extractLayer } from "./layer-extract";
import { parentDirectories, writeLayer, type LayerEntry } from "./layer-writer";
import { entriesDigest } from "./context";
import type { BuildOptions } from "./options";

/** A build step's cached outcome: the layer it produced. */
export interface CacheRecord {
  digests: Digest[];
  layer: Descriptor;
  diffId: Digest;
}

/**
 * The state of one platform's build: its layers and history so far, the cache chain key, and
 * the working rootfs, which is only brought up to date when a step must really run.
 */
export class PlatformBuild {
  readonly layers: Array<{ descriptor: Descriptor; diffId: Digest; createdBy: string; cached: boolean }> = [];
  readonly history: NonNullable<ImageConfig["history"]> = [];
  /** Layers already in the image but not yet extracted into the working rootfs. */
  private pending: Digest[] = [];
  private materialised = false;
  /** File hashes of this build's COPY sources (see entriesDigest). */
  readonly fileDigests = new Map<string, string>();
  cacheKey: string;

  constructor(
    readonly opts: BuildOptions,
    readonly rootfs: string,
    readonly platform: Platform,
    baseKey: string,
  ) {
    this.cacheKey = baseKey;
  }

  /** Brings the working rootfs up to date with every layer so far. */
  async rootfsReady(): Promise<string> {
    if (!this.materialised) {
      await mkdir(this.rootfs, { recursive: true });
      this.materialised = true;
    }
    for (const digest of this.pending) await extractLayer(this.opts.store, digest, this.rootfs);
    this.pending = [];
    return this.rootfs;
  }

  nextKey(step: string): string {
    return createHash("sha256")
      .update(`${this.cacheKey}\n${platformString(this.platform)}\n${step}`)
      .digest("hex");
  }

  async cached(key: string): Promise<CacheRecord | undefined> {
    if (this.opts.noCache) return undefined;
    const record = await this.opts.store.readPin<CacheRecord & { digests: Digest[] }>(`build:${key}`);
    if (!record || !(await this.opts.store.hasBlob(record.layer.digest))) return undefined;
    return record;
  }

  addLayer(key: string, layer: Descriptor, diffId: Digest, createdBy: string, cached: boolean, extracted: boolean): void {
    this.layers.push({ descriptor: layer, diffId, createdBy, cached });
    this.history.push({ created_by: createdBy });
    if (!extracted) this.pending.push(layer.digest);
    this.cacheKey = key;
  }

  /** A step that changes no file: it still moves the cache chain so later steps see it. */
  addEmpty(step: string, createdBy: string): void {
    this.cacheKey = this.nextKey(step);
    this.history.push({ created_by: createdBy, empty_layer: true });
  }
}

/** A step whose layer is fully described by `entries`: reused when they hash the same. */
export async function layerStep(build: PlatformBuild, step: string, entries: LayerEntry[]): Promise<boolean> {
  const key = build.nextKey(`${step}\n${await entriesDigest(entries, build.fileDigests, build.opts.signal)}`);
  const hit = await build.cached(key);
  if (hit) {
    build.addLayer(key, hit.layer, hit.diffId, step, true, false);
    return true;
  }
  const written = await writeLayer(build.opts.store, entries);
  await build.opts.store.pin(`build:${key}`, { digests: [written.descriptor.digest], layer: written.descriptor, diffId: written.diffId });
  build.addLayer(key, written.descriptor, written.diffId, step, false, false);
  return false;
}

/** Adds the ancestor directories an entry list lacks, so extraction never invents modes. */
export function withParents(entries: LayerEntry[]): LayerEntry[] {
  const have = new Set(entries.map((e) => e.path));
  const parents: LayerEntry[] = parentDirectories(have)
    .filter((d) => !have.has(d))
    .map((d) => ({ type: "directory", path: d, mode: 0o755 }));
  return [...parents, ...entries];
}
