import { posix } from "node:path";
import type { ImageStore } from "../../image/store";
import { shellQuote, type Connection, type UploadEntry } from "../../ssh";
import type { PlatformImage } from "./image";
import type { HostLayout } from "./layout";
import { layerEntries } from "./layer-entries";
import { applyConfig, renderTemplate, renderedName, type ConfigSpec, type Env } from "../spec";
import type { Digest } from "../../image/digest";

/** Directories whose `*.tmpl` files are rendered with the host's env (sealer's convention). */
const TEMPLATE_DIRS = ["etc/", "manifests/", "charts/"];
/** A template or config target larger than this is not read into memory. */
const MAX_FILE = 4 << 20;

/** The image files rendering needs: templates, and the files Configs change (path → text). */
export type ImageFiles = Map<string, string>;

/** What one layer holds for rendering: wanted files, and the whiteouts it applies to the layers under it. */
type LayerFiles = {
  digests: Digest[];
  files: Record<string, string>;
  whiteouts: string[];
};

/**
 * Reads the templates and Config targets out of the image's layers (in order, whiteouts
 * applied), without extracting anything: registry-only layers are skipped. Each layer's
 * templates are remembered in the store, so rendering an image again reads no layer; Config
 * targets outside the template directories are read from the layers each time.
 */
export async function readImageFiles(store: ImageStore, image: PlatformImage, configTargets: ReadonlySet<string>): Promise<ImageFiles> {
  const files: ImageFiles = new Map();
  const others = [...configTargets].filter((p) => !isTemplatePath(p));
  for (const layer of image.layers) {
    if (layer.registryOnly) continue;
    const key = `render-files:${layer.digest}`;
    let found = await store.readPin<LayerFiles>(key);
    if (!found) {
      found = await scanLayer(store, layer, isTemplatePath);
      await store.pin(key, found);
    }
    const extra = others.length > 0 ? await scanLayer(store, layer, (p) => others.includes(p)) : undefined;
    for (const w of found.whiteouts) {
      const base = posix.basename(w);
      const gone = base === ".wh..wh..opq" ? `${posix.dirname(w)}/` : posix.join(posix.dirname(w), base.slice(4));
      for (const k of [...files.keys()]) if (k === gone || k.startsWith(gone.endsWith("/") ? gone : `${gone}/`)) files.delete(k);
    }
    for (const [path, text] of [...Object.entries(found.files), ...Object.entries(extra?.files ?? {})]) files.set(path, text);
  }
  return files;
}

async function scanLayer(store: ImageStore, layer: PlatformImage["layers"][number], wanted: (path: string) => boolean): Promise<LayerFiles> {
  const out: LayerFiles = { digests: [layer.digest], files: {}, whiteouts: [] };
  for await (const { name, entry } of layerEntries(store, layer)) {
    if (posix.basename(name).startsWith(".wh.")) out.whiteouts.push(name);
    else if (entry.header.type === "file" && wanted(name) && (entry.header.size ?? 0) <= MAX_FILE) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      out.files[name] = Buffer.concat(chunks).toString("utf8");
      continue;
    }
    entry.resume();
  }
  return out;
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
export async function writeRendered(
  conn: Connection,
  layout: HostLayout,
  imageDigest: Digest,
  rendered: Map<string, string>,
  signal?: AbortSignal,
): Promise<void> {
  if (rendered.size === 0) return;
  const dir = `${layout.image(imageDigest)}/rendered`;
  const entries: UploadEntry[] = [...rendered].map(([path, content]) => ({ path, content, mode: 0o644 }));
  await conn.upload(dir, entries, { sudo: true, ...(signal ? { signal } : {}) });
  await conn.run(`cp -rf --remove-destination ${shellQuote(dir)}/. ${shellQuote(layout.rootfs(imageDigest))}/`, {
    sudo: true,
    timeoutMs: 120_000,
    ...(signal ? { signal } : {}),
  });
}
