import { z } from "zod";
import { parseReference } from "../../image/reference";
import { ExcessiveAliasingError } from "../../util/yaml-bounds";
import { checkHosts } from "./checks";
import { coerceForSchema } from "./coerce";
import { ClusterSpecError, formatPath, issuesToProblems, type SpecProblem } from "./errors";
import {
  objectMetaSchema,
  sealerApplicationDocSchema,
  sealerApplicationPath,
  sealerApplicationToInput,
  sealerClusterDocSchema,
  sealerClusterPath,
  sealerClusterProblems,
  sealerClusterToInput,
  sealerConfigDocSchema,
  sealerConfigToInput,
  sealerPluginDocSchema,
  sealerPluginPath,
  sealerPluginToInput,
  specPath,
} from "./sealer";
import {
  appsSchema,
  clusterSpecBodyShape,
  clusterSpecSchema,
  configSchema,
  pluginSchema,
  type AppsSpec,
  type ClusterSpec,
  type ConfigSpec,
  type PluginSpec,
} from "./schema";
import { quote, suggest } from "./validators";
import { isMapping, loadYamlDocuments, plain, YamlSyntaxError } from "./yaml";

/** sealant's own Clusterfile: `apiVersion: sealant.io/v1`, `kind: Cluster`, `metadata.name`, `spec`. */
export const SEALANT_API_VERSION = "sealant.io/v1";

/** API groups sealer's Clusterfiles have used over its releases; sealer itself reads documents by kind. */
export const SEALER_API_GROUPS = ["sealer.io", "sealer.cloud", "sealer.aliyun.com", "cluster.sealer.cool"] as const;

/** kubeadm's documents, which a sealer Clusterfile may carry; they go to `spec.runtime.kubeadm` as written. */
export const KUBEADM_KINDS = ["InitConfiguration", "ClusterConfiguration", "JoinConfiguration", "KubeletConfiguration", "KubeProxyConfiguration"] as const;

const SEALER_KINDS = ["Cluster", "Config", "Plugin", "Application"] as const;

export interface ParseClusterfileOptions {
  /** The file's name in messages. @default "Clusterfile" */
  file?: string;
}

/** Where a field of the normalised spec was written: the document and the field in its own terms. */
export type Locate = (specPath: readonly PropertyKey[]) => { source: string; path: string };

export interface ParsedClusterfile {
  /** The normalised spec, with the Config, Plugin and Application documents folded in. */
  spec: ClusterSpec;
  /** Which kind of Clusterfile it was. */
  format: "sealer" | "sealant";
  /** The Config documents, in order (also in `spec.configs`). */
  configs: ConfigSpec[];
  /** The Plugin documents, in order (also in `spec.plugins`). */
  plugins: PluginSpec[];
  /** The Application document, if any (merged into `spec.apps`, the Cluster's cmd/appNames winning). */
  application?: AppsSpec;
  /** kubeadm documents as written (also in `spec.runtime.kubeadm`). */
  kubeadm: Record<string, unknown>[];
  /** Fine, but worth saying (e.g. an image not pinned by digest). */
  warnings: SpecProblem[];
  /** Where a spec field was written, for problems found later (e.g. a key file that cannot be read). */
  locate: Locate;
}

interface ParseStep<T> {
  value?: T;
  problems: SpecProblem[];
}

/** Parses `input` with `schema`, reporting problems at the user's paths. */
function parseWith<S extends z.ZodType>(
  schema: S,
  input: unknown,
  source: string,
  userPath: (path: readonly PropertyKey[]) => PropertyKey[],
): ParseStep<z.output<S>> {
  const r = schema.safeParse(input);
  if (r.success) return { value: r.data, problems: [] };
  return { problems: issuesToProblems(r.error.issues, { schema, input, source, userPath }) };
}

/** Unknown fields (and other shape problems) of a whole document, in its own terms. */
function shapeProblems(schema: z.ZodType, doc: unknown, source: string, only?: (code: string) => boolean): SpecProblem[] {
  const r = schema.safeParse(doc);
  if (r.success) return [];
  const issues = only === undefined ? r.error.issues : r.error.issues.filter((i) => only(i.code));
  return issuesToProblems(issues, { schema, input: doc, source, userPath: (p) => [...p] });
}

function hostProblems(hosts: unknown, source: string, prefix: PropertyKey[]): SpecProblem[] {
  return checkHosts(hosts, (g) => formatPath([...prefix, "hosts", g])).map((p) => ({ source, path: formatPath([...prefix, ...p.path]), message: p.message }));
}

function imageWarnings(spec: ClusterSpec, where: Locate): SpecProblem[] {
  if (parseReference(spec.image).digest !== undefined) return [];
  return [
    {
      ...where(["image"]),
      message: `${quote(spec.image)} is not pinned by digest: the cluster gets whatever the tag points to when applied (pin it as ref@sha256:...)`,
    },
  ];
}

/** `Clusterfile (Cluster "my-cluster")`, or `Clusterfile document 3 (Plugin)` without a name. */
function sourceOf(file: string, index: number, kind: string, doc: Record<string, unknown>): string {
  const meta = doc["metadata"];
  const name = isMapping(meta) ? meta["name"] : undefined;
  return typeof name === "string" && name !== "" ? `${file} (${kind} ${quote(name)})` : `${file} document ${index + 1} (${kind})`;
}

type DocKind = "sealant-cluster" | "sealer-cluster" | "config" | "plugin" | "application" | "kubeadm";

function classify(doc: Record<string, unknown>): DocKind | string {
  const apiVersion = typeof doc["apiVersion"] === "string" ? doc["apiVersion"] : "";
  const kind = typeof doc["kind"] === "string" ? doc["kind"] : "";
  if (kind === "") return `no kind: expected one of ${[...SEALER_KINDS, ...KUBEADM_KINDS].join(", ")}`;
  if ((KUBEADM_KINDS as readonly string[]).includes(kind)) return "kubeadm";
  const slash = apiVersion.lastIndexOf("/");
  const group = slash >= 0 ? apiVersion.slice(0, slash) : apiVersion;
  const version = slash >= 0 ? apiVersion.slice(slash + 1) : "";
  if (apiVersion === SEALANT_API_VERSION) {
    if (kind === "Cluster") return "sealant-cluster";
    return `kind ${quote(kind)} is not in ${SEALANT_API_VERSION} (only Cluster: plugins, configs and apps are fields of its spec; sealer's Config, Plugin and Application documents are read with a sealer apiVersion)`;
  }
  if (!(SEALER_KINDS as readonly string[]).includes(kind)) {
    const hint = suggest(kind, [...SEALER_KINDS, ...KUBEADM_KINDS]);
    return `unknown kind ${quote(kind)} (expected ${[...SEALER_KINDS, ...KUBEADM_KINDS].join(", ")})${hint !== undefined ? `; did you mean "${hint}"?` : ""}`;
  }
  if (!(SEALER_API_GROUPS as readonly string[]).includes(group)) {
    return `apiVersion ${quote(apiVersion)} is neither sealant's (${SEALANT_API_VERSION}) nor sealer's (e.g. sealer.io/v2 for Cluster, sealer.io/v1 for Config and Plugin)`;
  }
  if (kind === "Cluster") {
    return version.startsWith("v2")
      ? "sealer-cluster"
      : `a sealer ${apiVersion} Cluster (spec.masters/spec.nodes) is the old format: write it as sealer.io/v2 with spec.hosts`;
  }
  return kind === "Config" ? "config" : kind === "Plugin" ? "plugin" : "application";
}

const sealantDocSchema = z.strictObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: objectMetaSchema.optional(),
  spec: z.strictObject(clusterSpecBodyShape).optional(),
  status: z.unknown().optional(),
});

/** The document's shape (no `spec`): for the top-level and metadata fields of a sealant Cluster. */
const sealantEnvelopeSchema = sealantDocSchema.extend({ spec: z.unknown().optional() });

interface ClusterDoc {
  format: "sealer" | "sealant";
  source: string;
  spec?: ClusterSpec;
  userPath: (path: readonly PropertyKey[]) => PropertyKey[];
}

function readSealantCluster(doc: Record<string, unknown>, source: string, problems: SpecProblem[]): ClusterDoc {
  const coerced = coerceForSchema(doc, sealantDocSchema) as Record<string, unknown>;
  problems.push(...shapeProblems(sealantEnvelopeSchema, coerced, source));
  const meta = isMapping(coerced["metadata"]) ? coerced["metadata"] : {};
  const spec = isMapping(coerced["spec"]) ? coerced["spec"] : {};
  const userPath = (p: readonly PropertyKey[]): PropertyKey[] => specPath(p);
  if (Object.hasOwn(spec, "name")) problems.push({ source, path: "spec.name", message: "unknown field (the cluster's name is metadata.name)" });
  const { name: _ignored, ...body } = spec;
  const input = { name: meta["name"], ...body };
  const r = parseWith(clusterSpecSchema, input, source, userPath);
  problems.push(...r.problems, ...hostProblems(spec["hosts"], source, ["spec"]));
  return { format: "sealant", source, spec: r.value, userPath };
}

function readSealerCluster(doc: Record<string, unknown>, source: string, problems: SpecProblem[]): ClusterDoc {
  const coerced = coerceForSchema(doc, sealerClusterDocSchema);
  // The shape schema has sealer's field names: it finds the unknown ones. Values are checked below.
  problems.push(...shapeProblems(sealerClusterDocSchema, coerced, source, (code) => code === "unrecognized_keys"));
  problems.push(...sealerClusterProblems(coerced).map((p) => ({ source, path: formatPath(p.path), message: p.message })));
  const userPath = sealerClusterPath(coerced);
  const r = parseWith(clusterSpecSchema, sealerClusterToInput(coerced), source, userPath);
  problems.push(...r.problems, ...hostProblems(isMapping(coerced) && isMapping(coerced["spec"]) ? coerced["spec"]["hosts"] : undefined, source, ["spec"]));
  return { format: "sealer", source, spec: r.value, userPath };
}

function readSealerPart<S extends z.ZodType>(
  docSchema: z.ZodType,
  toInput: (doc: unknown) => unknown,
  schema: S,
  userPath: (doc: unknown) => (path: readonly PropertyKey[]) => PropertyKey[],
  doc: Record<string, unknown>,
  source: string,
  problems: SpecProblem[],
): z.output<S> | undefined {
  const coerced = coerceForSchema(doc, docSchema);
  problems.push(...shapeProblems(docSchema, coerced, source, (code) => code === "unrecognized_keys"));
  const r = parseWith(schema, toInput(coerced), source, userPath(coerced));
  problems.push(...r.problems);
  return r.value;
}

/**
 * Reads a Clusterfile: sealer's (a `sealer.io/v2` Cluster with its `Config`, `Plugin` and
 * `Application` documents and kubeadm documents, read unchanged) or sealant's own
 * (`sealant.io/v1` Cluster; sealer's Config/Plugin/Application documents may follow it). Pure:
 * key files named by `pk`/`privateKeyPath` are not read here (see `loadClusterfile`).
 *
 * Throws `ClusterSpecError` listing every problem, each at its field in the file's own terms.
 */
export function parseClusterfile(text: string, options: ParseClusterfileOptions = {}): ParsedClusterfile {
  const file = options.file ?? "Clusterfile";
  let docs: unknown[];
  try {
    docs = loadYamlDocuments(text, file);
  } catch (err) {
    if (err instanceof YamlSyntaxError) throw new ClusterSpecError([{ source: file, path: "", message: err.message.slice(file.length + 2) }], file);
    if (err instanceof ExcessiveAliasingError) throw new ClusterSpecError([{ source: file, path: "", message: err.message.slice(file.length + 2) }], file);
    throw err;
  }
  const problems: SpecProblem[] = [];
  const clusters: ClusterDoc[] = [];
  const configs: { value: ConfigSpec; source: string }[] = [];
  const plugins: { value: PluginSpec; source: string }[] = [];
  const applications: { value: AppsSpec; source: string }[] = [];
  const kubeadm: Record<string, unknown>[] = [];
  docs.forEach((doc, index) => {
    if (doc === null || doc === undefined) return;
    if (!isMapping(doc)) {
      problems.push({ source: `${file} document ${index + 1}`, path: "", message: "expected a mapping with apiVersion and kind" });
      return;
    }
    const kind = classify(doc);
    const source = sourceOf(file, index, typeof doc["kind"] === "string" ? doc["kind"] : "?", doc);
    switch (kind) {
      case "sealant-cluster":
        clusters.push(readSealantCluster(doc, source, problems));
        break;
      case "sealer-cluster":
        clusters.push(readSealerCluster(doc, source, problems));
        break;
      case "config": {
        const v = readSealerPart(sealerConfigDocSchema, sealerConfigToInput, configSchema, () => specPath, doc, source, problems);
        if (v !== undefined) configs.push({ value: v, source });
        break;
      }
      case "plugin": {
        const v = readSealerPart(sealerPluginDocSchema, sealerPluginToInput, pluginSchema, sealerPluginPath, doc, source, problems);
        if (v !== undefined) plugins.push({ value: v, source });
        break;
      }
      case "application": {
        const v = readSealerPart(sealerApplicationDocSchema, sealerApplicationToInput, appsSchema, () => sealerApplicationPath, doc, source, problems);
        if (v !== undefined) applications.push({ value: v, source });
        break;
      }
      case "kubeadm":
        kubeadm.push(plain(doc) as Record<string, unknown>);
        break;
      default:
        problems.push({ source, path: "kind", message: kind });
    }
  });
  if (clusters.length === 0 && problems.length === 0) {
    problems.push({ source: file, path: "", message: `no Cluster document (apiVersion: sealer.io/v2 or ${SEALANT_API_VERSION}, kind: Cluster)` });
  }
  if (clusters.length > 1) {
    problems.push({
      source: clusters[1]?.source ?? file,
      path: "",
      message: `a second Cluster document: a Clusterfile describes one cluster (the first is ${clusters[0]?.source})`,
    });
  }
  if (applications.length > 1) {
    problems.push({ source: applications[1]?.source ?? file, path: "", message: `a second Application document (the first is ${applications[0]?.source})` });
  }
  const cluster = clusters[0];
  if (problems.length > 0 || cluster?.spec === undefined) throw new ClusterSpecError(problems, file);

  const application = applications[0]?.value;
  const spec: ClusterSpec = {
    ...cluster.spec,
    plugins: [...cluster.spec.plugins, ...plugins.map((p) => p.value)],
    configs: [...cluster.spec.configs, ...configs.map((c) => c.value)],
    apps: mergeApps(application, cluster.spec.apps),
    runtime: kubeadm.length > 0 ? { ...cluster.spec.runtime, kubeadm } : cluster.spec.runtime,
  };
  const locate: Locate = (p) => ({ source: cluster.source, path: formatPath(cluster.userPath(p)) });
  const result: ParsedClusterfile = {
    spec,
    format: cluster.format,
    configs: configs.map((c) => c.value),
    plugins: plugins.map((p) => p.value),
    kubeadm,
    warnings: imageWarnings(spec, locate),
    locate,
  };
  if (application !== undefined) result.application = application;
  return result;
}

/** The Cluster's own `cmd`/`appNames`/app settings win over the Application document's (sealer's rule). */
function mergeApps(application: AppsSpec | undefined, fromCluster: AppsSpec): AppsSpec {
  if (application === undefined) return fromCluster;
  const out: AppsSpec = { ...application };
  for (const [k, v] of Object.entries(fromCluster) as [keyof AppsSpec, unknown][]) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  if (fromCluster.cmds !== undefined) delete out.launch;
  if (fromCluster.launch !== undefined) delete out.cmds;
  return out;
}

export interface ParseClusterSpecOptions {
  /** The inputs' name in messages. @default "Cluster inputs" */
  source?: string;
}

/** The same, without throwing: the spec, or every problem. */
export function validateClusterSpec(
  input: unknown,
  options: ParseClusterSpecOptions = {},
): { spec: ClusterSpec; problems: [] } | { spec?: undefined; problems: SpecProblem[] } {
  const source = options.source ?? "Cluster inputs";
  const coerced = coerceForSchema(input, clusterSpecSchema);
  const r = parseWith(clusterSpecSchema, coerced, source, (p) => [...p]);
  const problems = [...r.problems, ...hostProblems(isMapping(coerced) ? coerced["hosts"] : undefined, source, [])];
  return problems.length === 0 && r.value !== undefined ? { spec: r.value, problems: [] } : { problems };
}

/**
 * sealant's spec from a plain object: the `Cluster` resource's inputs (also JSON). Throws
 * `ClusterSpecError` listing every problem at its input path (`hosts[1].ips[0]`).
 */
export function parseClusterSpec(input: unknown, options: ParseClusterSpecOptions = {}): ClusterSpec {
  const r = validateClusterSpec(input, options);
  if (r.spec === undefined) throw new ClusterSpecError(r.problems, options.source ?? "Cluster inputs");
  return r.spec;
}
