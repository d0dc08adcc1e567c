import { posix } from "node:path";
import { createGunzip } from "node:zlib";
import type { Readable } from "node:stream";
import * as tar from "tar-stream";
import type { ImageStore } from "../../image/store";
import { shellQuote, type Connection, type UploadEntry } from "../../ssh";
import type { PlatformImage } from "../image";
import type { HostLayout } from "../layout";
import { applyConfig, renderTemplate, renderedName, type ConfigSpec, type Env } from "../spec";
import type { Digest } from "../../image/digest";

/** Directories whose `*.tmpl` files are rendered with the host's env (sealer's convention). */
const TEMPLATE_DIRS = ["etc/", "manifests/", "charts/"];
/** A template or config target larger than this is not read into memory. */
const MAX_FILE = 4 << 20;

/** The image files rendering needs: templates, and the files Configs change (path → text). */
export type ImageFiles = Map<string, string>;

/**
 * Reads the templates and Config targets out of the image's layers (in order, whiteouts
 * applied), without extracting anything: registry-only layers are skipped.
 */
export async function readImageFiles(store: ImageStore, image: PlatformImage, wanted: (path: string) => boolean): Promise<ImageFiles> {
  const files: ImageFiles = new Map();
  for (const layer of image.layers) {
    if (layer.registryOnly) continue;
    const raw = store.openBlob(layer.digest);
    const input: Readable = /gzip/.test(layer.mediaType) ? raw.pipe(createGunzip()) : raw;
    raw.on("error", (err) => input.destroy(err));
    const extract = tar.extract();
    input.pipe(extract);
    for await (const entry of extract) {
      const name = posix.normalize(entry.header.name).replace(/^\.\//, "").replace(/\/$/, "");
      const base = posix.basename(name);
      if (base === ".wh..wh..opq") {
        const dir = `${posix.dirname(name)}/`;
        for (const k of [...files.keys()]) if (k.startsWith(dir)) files.delete(k);
      } else if (base.startsWith(".wh.")) {
        const gone = posix.join(posix.dirname(name), base.slice(4));
        for (const k of [...files.keys()]) if (k === gone || k.startsWith(`${gone}/`)) files.delete(k);
      } else if (entry.header.type === "file" && wanted(name) && (entry.header.size ?? 0) <= MAX_FILE) {
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        files.set(name, Buffer.concat(chunks).toString("utf8"));
        continue;
      }
      entry.resume();
    }
  }
  return files;
}

export function isTemplatePath(path: string): boolean {
  return renderedName(path) !== undefined && TEMPLATE_DIRS.some((d) => path.startsWith(d));
}

/** Where a Config's file is in the rootfs. */
export function configPath(c: ConfigSpec): string {
  return c.appName ? posix.join("application/apps", c.appName, c.path) : posix.normalize(c.path);
}

/**
 * What rendering writes for one host: Configs applied to the image's files (merge or
 * overwrite), then every template rendered with the host's env. Pure.
 */
export function renderFiles(files: ImageFiles, configs: readonly ConfigSpec[], env: Env): Map<string, string> {
  const current = new Map(files);
  const out = new Map<string, string>();
  for (const c of configs) {
    const path = configPath(c);
    const text = applyConfig(current.get(path), { name: c.name, data: c.data, strategy: c.strategy, ...(c.process ? { process: c.process } : {}) });
    current.set(path, text);
    out.set(path, text);
  }
  for (const [path, text] of current) {
    const target = isTemplatePath(path) ? renderedName(path) : undefined;
    if (target !== undefined) out.set(target, renderTemplate(text, env, { file: path }));
  }
  return out;
}

/**
 * Puts the rendered files into the host's rootfs for the image: uploaded into a directory
 * beside it, then copied over with `--remove-destination`, which replaces the hard-linked
 * files instead of writing through them into the shared layers.
 */
export async function writeRendered(conn: Connection, layout: HostLayout, imageDigest: Digest, rendered: Map<string, string>, signal?: AbortSignal): Promise<void> {
  if (rendered.size === 0) return;
  const dir = `${layout.image(imageDigest)}/rendered`;
  const entries: UploadEntry[] = [...rendered].map(([path, content]) => ({ path, content, mode: 0o644 }));
  await conn.upload(dir, entries, { sudo: true, ...(signal ? { signal } : {}) });
  await conn.run(`cp -rf --remove-destination ${shellQuote(dir)}/. ${shellQuote(layout.rootfs(imageDigest))}/`, { sudo: true, timeoutMs: 120_000, ...(signal ? { signal } : {}) });
}
