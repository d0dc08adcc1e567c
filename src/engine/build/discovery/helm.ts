import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { access, readdir, readFile, stat } from "node:fs/promises";
import { delimiter, join, posix } from "node:path";
import { gunzipSync } from "node:zlib";
import { extract } from "tar-stream";
import { classify, composeImage, findImageFields, isPlainObject, parseYamlDocuments, shortError, type Candidate } from "./yaml";

/** A Helm chart as far as image discovery needs it: metadata, values, templates, subcharts. */
export interface ChartFiles {
  /** `name` from Chart.yaml. */
  name: string;
  appVersion?: string;
  /** Where it came from, for messages and sources (rootfs-relative dir, or `x.tgz`, or `x.tgz:sub`). */
  label: string;
  /** The chart directory or archive on disk, for `helm template`; undefined inside an archive. */
  path?: string;
  values: Record<string, unknown>;
  /** Subchart name -> the key its values live under in this chart's values (an alias, else its name). */
  aliases: Map<string, string>;
  templates: Array<{ path: string; text: string }>;
  subcharts: ChartFiles[];
}

const MAX_CHART_ARCHIVE = 64 * 1024 * 1024;

export async function isChartDir(dir: string): Promise<boolean> {
  try {
    return (await stat(join(dir, "Chart.yaml"))).isFile();
  } catch {
    return false;
  }
}

/** Loads a chart directory (with its subcharts, directories or .tgz archives, under `charts/`). */
export async function loadChartDir(dir: string, label: string): Promise<ChartFiles> {
  const read = async (rel: string): Promise<string | undefined> => {
    try {
      return await readFile(join(dir, rel), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  };
  const chartYaml = await read("Chart.yaml");
  if (chartYaml === undefined) throw new Error(`${label}: Chart.yaml is missing`);
  const templates: Array<{ path: string; text: string }> = [];
  for (const rel of await listFiles(join(dir, "templates"), "templates")) {
    if (/\.(ya?ml)$/i.test(rel)) templates.push({ path: rel, text: (await read(rel)) ?? "" });
  }
  const subcharts: ChartFiles[] = [];
  let entries: Array<{ name: string; isDir: boolean }> = [];
  try {
    entries = (await readdir(join(dir, "charts"), { withFileTypes: true })).map((e) => ({ name: e.name, isDir: e.isDirectory() }));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, "charts", e.name);
    if (e.isDir && (await isChartDir(p))) subcharts.push(await loadChartDir(p, `${label}/charts/${e.name}`));
    else if (!e.isDir && /\.tgz$/i.test(e.name)) subcharts.push(await loadChartArchive(p, `${label}/charts/${e.name}`));
  }
  const chart = buildChart(label, chartYaml, await read("values.yaml"), templates, subcharts);
  chart.path = dir;
  return chart;
}

/** Loads a packaged chart (`helm package` output: a gzipped tar with one top directory). */
export async function loadChartArchive(file: string, label: string): Promise<ChartFiles> {
  const chart = await chartFromArchive(await readFile(file), label);
  chart.path = file;
  return chart;
}

async function chartFromArchive(data: Buffer, label: string): Promise<ChartFiles> {
  let tar: Buffer;
  try {
    tar = gunzipSync(data, { maxOutputLength: MAX_CHART_ARCHIVE });
  } catch (err) {
    throw new Error(`${label}: not a gzipped chart archive: ${shortError(err)}`);
  }
  const files = new Map<string, Buffer>();
  const ex = extract();
  ex.end(tar);
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(Buffer.from(chunk as Uint8Array));
    const name = posix.normalize(entry.header.name).replace(/^\/+/, "");
    if (entry.header.type === "file" && !name.startsWith("..")) files.set(name, Buffer.concat(chunks));
  }
  return chartFromFiles(files, label);
}

/** Builds a chart from archive entries `<top>/Chart.yaml`, `<top>/values.yaml`, `<top>/templates/...`, `<top>/charts/...`. */
async function chartFromFiles(files: Map<string, Buffer>, label: string, prefix?: string): Promise<ChartFiles> {
  let top = prefix;
  if (top === undefined) {
    const chartYamls = [...files.keys()].filter((k) => /^[^/]+\/Chart\.yaml$/.test(k));
    if (chartYamls.length !== 1) throw new Error(`${label}: expected one <chart>/Chart.yaml in the archive, found ${chartYamls.length}`);
    top = chartYamls[0]!.slice(0, -"/Chart.yaml".length);
  }
  const get = (rel: string): string | undefined => files.get(`${top}/${rel}`)?.toString("utf8");
  const chartYaml = get("Chart.yaml");
  if (chartYaml === undefined) throw new Error(`${label}: Chart.yaml is missing`);
  const templates: Array<{ path: string; text: string }> = [];
  const subDirs = new Set<string>();
  const subArchives: string[] = [];
  for (const [name, data] of files) {
    if (!name.startsWith(`${top}/`)) continue;
    const rel = name.slice(top.length + 1);
    if (rel.startsWith("templates/") && /\.(ya?ml)$/i.test(rel)) templates.push({ path: rel, text: data.toString("utf8") });
    const sub = /^charts\/([^/]+)\/Chart\.yaml$/.exec(rel);
    if (sub) subDirs.add(sub[1]!);
    if (/^charts\/[^/]+\.tgz$/i.test(rel)) subArchives.push(rel);
  }
  const subcharts: ChartFiles[] = [];
  for (const d of [...subDirs].sort()) subcharts.push(await chartFromFiles(files, `${label}:charts/${d}`, `${top}/charts/${d}`));
  for (const a of subArchives.sort()) subcharts.push(await chartFromArchive(files.get(`${top}/${a}`)!, `${label}:${a}`));
  templates.sort((a, b) => a.path.localeCompare(b.path));
  return buildChart(label, chartYaml, get("values.yaml"), templates, subcharts);
}

function buildChart(
  label: string,
  chartYaml: string,
  valuesYaml: string | undefined,
  templates: Array<{ path: string; text: string }>,
  subcharts: ChartFiles[],
): ChartFiles {
  // A chart whose Chart.yaml or values.yaml does not parse cannot be installed either: fail the build.
  let meta: unknown;
  try {
    meta = parseYamlDocuments(chartYaml)[0];
  } catch (err) {
    throw new Error(`${label}/Chart.yaml: invalid YAML: ${shortError(err)}`);
  }
  if (!isPlainObject(meta) || typeof meta.name !== "string" || meta.name === "") {
    throw new Error(`${label}/Chart.yaml: not a chart description (no name)`);
  }
  let values: Record<string, unknown> = {};
  if (valuesYaml !== undefined) {
    let parsed: unknown;
    try {
      parsed = parseYamlDocuments(valuesYaml)[0];
    } catch (err) {
      throw new Error(`${label}/values.yaml: invalid YAML: ${shortError(err)}`);
    }
    if (parsed !== undefined && !isPlainObject(parsed)) throw new Error(`${label}/values.yaml: not a map of values`);
    values = parsed ?? {};
  }
  const aliases = new Map<string, string>();
  if (Array.isArray(meta.dependencies)) {
    for (const dep of meta.dependencies) {
      if (isPlainObject(dep) && typeof dep.name === "string" && !aliases.has(dep.name)) {
        aliases.set(dep.name, typeof dep.alias === "string" && dep.alias !== "" ? dep.alias : dep.name);
      }
    }
  }
  const chart: ChartFiles = { name: meta.name, label, values, aliases, templates, subcharts };
  if (typeof meta.appVersion === "string" && meta.appVersion.trim() !== "") chart.appVersion = meta.appVersion.trim();
  return chart;
}

// ---- values.yaml conventions ----

/** A candidate and the values file it came from (`<chart label>/values.yaml`). */
export type ValuesImage = Candidate & { file: string };

/**
 * Images a chart's values name by the common conventions, this chart and its subcharts
 * (with the parent's values for a subchart, and the parent's `global`, merged over the
 * subchart's own, as Helm does):
 * - a map with `repository` under any key (`image:`, `controller.image:`, `images.foo:`),
 *   with optional `registry`, `tag` and `digest` (bitnami's `image: {registry, repository,
 *   tag, digest}` included; `global.imageRegistry` overrides the registry as bitnami's
 *   helpers do);
 * - a map with an `image` string and `registry`/`tag`/`imageTag`/`digest` beside it
 *   (ingress-nginx's `{registry, image, tag, digest}`, elastic's `image` + `imageTag`);
 * - an `image: "repo:tag"` string.
 * A missing tag defaults to the chart's `appVersion`, as chart templates conventionally do
 * (`.Values.image.tag | default .Chart.AppVersion`). Values are taken as written: a
 * component disabled by a flag still has its image collected.
 */
export function imagesFromChartValues(chart: ChartFiles, values: Record<string, unknown> = chart.values): ValuesImage[] {
  const out: ValuesImage[] = [];
  const file = `${chart.label}/values.yaml`;
  const global = isPlainObject(values.global) ? values.global : {};
  const globalRegistry = typeof global.imageRegistry === "string" && global.imageRegistry.trim() !== "" ? global.imageRegistry.trim() : undefined;
  const defaults: { tag?: string; registry?: string } = {};
  if (chart.appVersion !== undefined) defaults.tag = chart.appVersion;
  const push = (c: Candidate | undefined): void => {
    if (c) out.push({ ...c, file });
  };

  const walk = (node: unknown, path: string, depth: number): void => {
    if (depth > 100) return;
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, `${path}[${i}]`, depth + 1));
      return;
    }
    if (!isPlainObject(node)) return;
    if (typeof node.repository === "string") {
      const d = { ...defaults };
      if (globalRegistry !== undefined && "registry" in node) d.registry = globalRegistry;
      push(composeImage(node, path, d, "repository"));
      return;
    }
    let composedImageKey = false;
    if (typeof node.image === "string" && ["registry", "tag", "imageTag", "digest"].some((k) => typeof node[k] === "string")) {
      const d = { ...defaults };
      if (globalRegistry !== undefined && "registry" in node) d.registry = globalRegistry;
      push(composeImage(node, path, d, "image"));
      composedImageKey = true;
    }
    for (const [key, value] of Object.entries(node)) {
      const here = path === "" ? key : `${path}.${key}`;
      if (key === "image" && typeof value === "string") {
        if (!composedImageKey) push(classify(value, here));
        continue;
      }
      walk(value, here, depth + 1);
    }
  };
  walk(values, "", 0);

  for (const sub of chart.subcharts) {
    const key = chart.aliases.get(sub.name) ?? sub.name;
    const fromParent = isPlainObject(values[key]) ? values[key] : {};
    const merged = deepMerge(sub.values, fromParent);
    merged.global = deepMerge(isPlainObject(sub.values.global) ? sub.values.global : {}, global);
    out.push(...imagesFromChartValues(sub, merged));
  }
  return out;
}

/** `over` merged into `base` (maps recursively, everything else replaced); neither is modified. */
function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

/**
 * Images in a chart's templates read as plain YAML: only what is literally written in a
 * template that happens to parse (e.g. `image: busybox:1.36`); templates that do not parse
 * and templated values are passed over silently. Used when `helm template` is unavailable.
 */
export function imagesFromRawTemplates(chart: ChartFiles): Array<Candidate & { file: string }> {
  const out: Array<Candidate & { file: string }> = [];
  for (const t of chart.templates) {
    let docs: unknown[];
    try {
      docs = parseYamlDocuments(t.text);
    } catch {
      continue;
    }
    for (const doc of docs) for (const c of findImageFields(doc)) if (c.kind === "image") out.push({ ...c, file: `${chart.label}/${t.path}` });
  }
  for (const sub of chart.subcharts) out.push(...imagesFromRawTemplates(sub));
  return out;
}

// ---- helm template ----

/** `helm` on PATH, or undefined. */
export async function findHelm(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, "helm");
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface RenderedDocument {
  /** The template the document came from (helm's `# Source:` line), relative to the chart's parent. */
  source?: string;
  text: string;
}

/**
 * Runs `helm template sealant <chart>` (default values, no cluster access) and splits the
 * output into documents with their `# Source:` template paths.
 */
export function helmTemplate(helm: string, chartPath: string, signal?: AbortSignal): Promise<RenderedDocument[]> {
  return new Promise((resolve, reject) => {
    execFile(
      helm,
      ["template", "sealant", chartPath],
      { maxBuffer: 256 * 1024 * 1024, timeout: 300_000, ...(signal ? { signal } : {}) },
      (err, stdout, stderr) => {
        if (err) {
          const tail = String(stderr).trim().split("\n").slice(-5).join("\n");
          reject(new Error(`helm template ${chartPath} failed: ${tail || err.message}`));
          return;
        }
        resolve(splitRendered(String(stdout)));
      },
    );
  });
}

export function splitRendered(output: string): RenderedDocument[] {
  const docs: RenderedDocument[] = [];
  for (const part of output.split(/^---[ \t]*$/m)) {
    if (part.trim() === "") continue;
    const m = /^#\s*Source:\s*(.+?)\s*$/m.exec(part);
    docs.push(m ? { source: m[1]!, text: part } : { text: part });
  }
  return docs;
}

async function listFiles(dir: string, rel: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return [];
    throw err;
  }
  const out: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isDirectory()) out.push(...(await listFiles(join(dir, e.name), `${rel}/${e.name}`)));
    else if (e.isFile()) out.push(`${rel}/${e.name}`);
  }
  return out;
}
