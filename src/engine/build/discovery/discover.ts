import { readdir, readFile, stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { normaliseReference } from "../../image/reference";
import { findHelm, helmTemplate, imagesFromChartValues, imagesFromRawTemplates, isChartDir, loadChartArchive, loadChartDir, type ChartFiles } from "./helm";
import { readImageList } from "./image-list";
import { findImageFields, parseYamlDocuments, shortError, type Candidate } from "./yaml";

export interface DiscoveredImage {
  /** Normalised reference, e.g. `docker.io/library/nginx:1.25`. */
  image: string;
  /** Files it was found in: rootfs-relative for files in the rootfs, as given for extra image lists. */
  sources: string[];
  /** The application whose directory it came from (the first, when several apps use it). */
  appName?: string;
}

export interface DiscoveryResult {
  /** Sorted by image, each image once. */
  images: DiscoveredImage[];
  /** Things passed over that a user may want to know about: unparseable files, templated images, a failed `helm template`. */
  warnings: string[];
}

export interface DiscoveryOptions {
  /** Extra image list files (`--image-list`), in sealer's format. */
  imageListFiles?: string[];
  /** Image list files whose references are left out of the result (`--ignored-image-list`). */
  ignoredImageListFiles?: string[];
  /** Applications by directory (relative to the rootfs, or absolute); images found under `dir` get `appName`. Directories under `application/apps/<name>/` are apps named `<name>` without being listed. */
  apps?: Array<{ name: string; dir: string }>;
  /** The `helm` binary for `helm template`; default: `helm` on PATH if there is one; null: never run helm. */
  helmBinary?: string | null;
  signal?: AbortSignal;
}

/** sealer's application root inside a rootfs. */
const APPS_DIR = join("application", "apps");
const MANIFEST_FILE = /\.(ya?ml|json|tmpl)$/i;

/**
 * Finds the container images a cluster image's rootfs needs, from what it contains:
 * - every YAML/JSON document under `manifests/` and `application/` (multi-document files,
 *   `List`s), by structure (see findImageFields);
 * - Helm charts under `charts/` and in those trees (directories with a Chart.yaml, or
 *   packaged `.tgz` charts under `charts/`), with their subcharts: rendered with
 *   `helm template` when helm is available, and in any case through the images their
 *   values name by convention (see imagesFromChartValues);
 * - sealer's `imageList` files (at the rootfs root and in `manifests/`) and the extra lists
 *   of `opts.imageListFiles`;
 * minus the references in `opts.ignoredImageListFiles` (compared after normalisation).
 *
 * Judgement on errors: a manifest file that is not valid YAML is skipped with a warning (a
 * rootfs carries all sorts of YAML: kustomize patches, templates, tool configs), as is an
 * `image` value that is templated or not a reference. What fails the call is what would
 * also break the cluster or silently drop an image the user named: an invalid line in an
 * image list (error names file:line), a missing image list file given in the options, and a
 * chart whose Chart.yaml or values.yaml does not parse.
 */
export async function discoverImages(rootfs: string, opts: DiscoveryOptions = {}): Promise<DiscoveryResult> {
  const root = resolve(rootfs);
  const warnings: string[] = [];
  const found = new Map<string, { sources: string[]; appName?: string }>();
  const helm = opts.helmBinary === null ? undefined : (opts.helmBinary ?? (await findHelm()));
  const apps = (opts.apps ?? []).map((a) => ({ name: a.name, dir: isAbsolute(a.dir) ? resolve(a.dir) : resolve(root, a.dir) }));
  const rel = (p: string): string => relative(root, p).split(sep).join("/");

  const appFor = (path: string): string | undefined => {
    let best: { name: string; len: number } | undefined;
    for (const a of apps) {
      if ((path === a.dir || path.startsWith(a.dir + sep)) && (!best || a.dir.length > best.len)) best = { name: a.name, len: a.dir.length };
    }
    if (best) return best.name;
    const r = relative(join(root, APPS_DIR), path);
    if (r && !r.startsWith("..") && !isAbsolute(r)) return r.split(sep)[0];
    return undefined;
  };

  const add = (value: string, source: string, appName: string | undefined): void => {
    const image = normaliseReference(value);
    let entry = found.get(image);
    if (!entry) {
      entry = { sources: [] };
      found.set(image, entry);
    }
    if (!entry.sources.includes(source)) entry.sources.push(source);
    if (entry.appName === undefined && appName !== undefined) entry.appName = appName;
  };

  const report = (c: Candidate, file: string, appName: string | undefined): void => {
    if (c.kind === "image") add(c.value, file, appName);
    else if (c.reason === "templated") warnings.push(`${file}: ${c.path}: templated image "${c.value}" is not cached`);
    else warnings.push(`${file}: ${c.path}: "${c.value}" is not a valid image reference; skipped`);
  };

  const scanManifestFile = async (path: string): Promise<void> => {
    const file = rel(path);
    let docs: unknown[];
    try {
      docs = parseYamlDocuments(await readFile(path, "utf8"), file);
    } catch (err) {
      warnings.push(`${file}: not valid YAML, skipped: ${shortError(err)}`);
      return;
    }
    const app = appFor(path);
    for (const doc of docs) for (const c of findImageFields(doc)) report(c, file, app);
  };

  const scanChart = async (chart: ChartFiles, appName: string | undefined): Promise<void> => {
    for (const c of imagesFromChartValues(chart)) if (c.kind === "image") add(c.value, c.file, appName);
    let rendered = false;
    if (helm !== undefined && chart.path !== undefined) {
      try {
        for (const doc of await helmTemplate(helm, chart.path, opts.signal)) {
          const file = doc.source ? `${chart.label}/${doc.source.split("/").slice(1).join("/")} (helm template)` : `${chart.label} (helm template)`;
          let docs: unknown[];
          try {
            docs = parseYamlDocuments(doc.text);
          } catch (err) {
            warnings.push(`${file}: rendered output is not valid YAML, skipped: ${shortError(err)}`);
            continue;
          }
          for (const d of docs) for (const c of findImageFields(d)) report(c, file, appName);
        }
        rendered = true;
      } catch (err) {
        opts.signal?.throwIfAborted();
        warnings.push(`${chart.label}: ${shortError(err)}; images are taken from values.yaml and literal template values only`);
      }
    }
    if (!rendered) for (const c of imagesFromRawTemplates(chart)) add(c.value, c.file, appName);
  };

  // A directory with a Chart.yaml is a chart wherever it is; other files go to `onFile`.
  const walk = async (dir: string, onFile: (path: string, name: string) => Promise<void>): Promise<void> => {
    opts.signal?.throwIfAborted();
    if (await isChartDir(dir)) {
      await scanChart(await loadChartDir(dir, rel(dir)), appFor(dir));
      return;
    }
    for (const e of await readDirSorted(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p, onFile);
      else if (e.isFile()) await onFile(p, e.name);
    }
  };
  // manifests/ and application/: YAML and JSON manifests.
  const manifestFile = async (p: string, name: string): Promise<void> => {
    if (MANIFEST_FILE.test(name)) await scanManifestFile(p);
  };
  // charts/: only charts count there, packaged ones (.tgz) too.
  const chartArchive = async (p: string, name: string): Promise<void> => {
    if (/\.tgz$/i.test(name)) await scanChart(await loadChartArchive(p, rel(p)), appFor(p));
  };

  await walk(join(root, "manifests"), manifestFile);
  await walk(join(root, "application"), manifestFile);
  await walk(join(root, "charts"), chartArchive);

  // Image lists: sealer's in the rootfs, then the extra ones.
  for (const p of [join(root, "imageList"), join(root, "manifests", "imageList")]) {
    if (!(await isFile(p))) continue;
    for (const e of await readImageList(p, rel(p))) add(e.image, rel(p), appFor(p));
  }
  for (const p of opts.imageListFiles ?? []) {
    for (const e of await readImageList(resolve(p), p)) add(e.image, p, undefined);
  }

  const ignored = new Set<string>();
  for (const p of opts.ignoredImageListFiles ?? []) for (const e of await readImageList(resolve(p), p)) ignored.add(e.image);

  const images: DiscoveredImage[] = [];
  for (const [image, entry] of found) {
    if (ignored.has(image)) continue;
    const out: DiscoveredImage = { image, sources: entry.sources };
    if (entry.appName !== undefined) out.appName = entry.appName;
    images.push(out);
  }
  images.sort((a, b) => (a.image < b.image ? -1 : a.image > b.image ? 1 : 0));
  return { images, warnings };
}

async function readDirSorted(dir: string): Promise<import("node:fs").Dirent[]> {
  try {
    // Symlinked directories are not followed (no loops, nothing outside the rootfs); symlinked files are not either.
    return (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    throw err;
  }
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}
