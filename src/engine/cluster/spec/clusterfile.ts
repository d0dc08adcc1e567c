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
  sealerConfigDocSchema,
  sealerConfigToInput,
  sealerPluginDocSchema,
  sealerPluginPath,
  sealerPluginToInput,
  specPath,
} from "./sealer";
import { readSealerCluster, readSealerPart, sealerApplicationRejects, sealerConfigRejects, type SealerReading } from "./sealer-read";
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

type DocKind = "sealant-cluster" | "sealer-cluster" | "config" | "plugin" | "application" | "kubeadm" | "ignored";

/**
 * What a document is, by its kind, as sealer reads it: sealer never looks at apiVersion, so its
 * kinds are read under any group (sealer.io, sealer.cloud, sealer.aliyun.com, zlink.aliyun.com,
 * sealer.com ...) or none. Only `sealant.io/v1` marks sealant's own Cluster. Documents of other
 * kinds, or with none, sealer skips: they are ignored with a warning.
 */
function classify(doc: Record<string, unknown>): DocKind {
  const apiVersion = typeof doc["apiVersion"] === "string" ? doc["apiVersion"] : "";
  const kind = typeof doc["kind"] === "string" ? doc["kind"] : "";
  if ((KUBEADM_KINDS as readonly string[]).includes(kind)) return "kubeadm";
  if (kind === "Cluster") return apiVersion === SEALANT_API_VERSION ? "sealant-cluster" : "sealer-cluster";
  if (kind === "Config") return "config";
  if (kind === "Plugin") return "plugin";
  if (kind === "Application") return "application";
  return "ignored";
}

function ignoredMessage(doc: Record<string, unknown>): string {
  const kind = typeof doc["kind"] === "string" ? doc["kind"] : "";
  const known = [...SEALER_KINDS, ...KUBEADM_KINDS];
  if (kind === "") return `no kind: ignored, as sealer ignores it (a Clusterfile's kinds are ${known.join(", ")})`;
  const hint = suggest(kind, known);
  return `kind ${quote(kind)} is not one sealer or sealant reads: ignored, as sealer ignores it${hint !== undefined ? ` (did you mean "${hint}"?)` : ` (expected ${known.join(", ")})`}`;
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

/** What a Clusterfile holds, read as sealer reads it (see `readClusterfile`). */
export interface ClusterfileReading extends Omit<ParsedClusterfile, "spec"> {
  /** The spec; `undefined` when the Cluster document has problems only applying would report (`deferred`). */
  spec?: ClusterSpec;
  /** Problems sealer's decoder does not have, but applying the file would: every one stops `parseClusterfile`. */
  deferred: SpecProblem[];
}

/**
 * Reads a Clusterfile as sealer reads it: documents by kind (sealer's kinds under any apiVersion
 * group or none; sealant's `sealant.io/v1` Cluster), unknown fields and kinds ignored with a
 * warning, refused only where sealer's decoder refuses (YAML, a value of the wrong type, an
 * external registry without a domain, a bad SvcCIDR, a Config without path or data, ...; and no
 * Cluster document at all). What sealer reads but could not apply — no image, no master, a
 * plugin sealant cannot run — is returned in `deferred`. Pure: key files are not read.
 *
 * Throws `ClusterSpecError` listing every refusal, each at its field in the file's own terms.
 */
export function readClusterfile(text: string, options: ParseClusterfileOptions = {}): ClusterfileReading {
  const file = options.file ?? "Clusterfile";
  let docs: unknown[];
  try {
    docs = loadYamlDocuments(text, file);
  } catch (err) {
    if (err instanceof YamlSyntaxError) throw new ClusterSpecError([{ source: file, path: "", message: err.message.slice(file.length + 2) }], file);
    if (err instanceof ExcessiveAliasingError) throw new ClusterSpecError([{ source: file, path: "", message: err.message.slice(file.length + 2) }], file);
    throw err;
  }
  const rejects: SpecProblem[] = [];
  const deferred: SpecProblem[] = [];
  const warnings: SpecProblem[] = [];
  const clusters: ClusterDoc[] = [];
  const configs: { value: ConfigSpec; source: string }[] = [];
  const plugins: { value: PluginSpec; source: string }[] = [];
  const applications: { value: AppsSpec; source: string }[] = [];
  const kubeadm: Record<string, unknown>[] = [];
  const take = <T>(r: SealerReading<T>): T | undefined => {
    rejects.push(...r.rejects);
    deferred.push(...r.deferred);
    warnings.push(...r.warnings);
    return r.value;
  };
  docs.forEach((doc, index) => {
    if (doc === null || doc === undefined) return;
    if (!isMapping(doc)) {
      rejects.push({ source: `${file} document ${index + 1}`, path: "", message: "expected a mapping with apiVersion and kind" });
      return;
    }
    const source = sourceOf(file, index, typeof doc["kind"] === "string" ? doc["kind"] : "?", doc);
    switch (classify(doc)) {
      case "sealant-cluster": {
        const own: SpecProblem[] = [];
        clusters.push(readSealantCluster(doc, source, own));
        rejects.push(...own);
        break;
      }
      case "sealer-cluster": {
        const r = readSealerCluster(doc, source);
        const value = take(r);
        clusters.push({ format: "sealer", source, ...(value !== undefined ? { spec: value } : {}), userPath: r.userPath });
        break;
      }
      case "config": {
        const v = take(readSealerPart(sealerConfigDocSchema, sealerConfigToInput, configSchema, () => specPath, sealerConfigRejects, doc, source));
        if (v !== undefined) configs.push({ value: v, source });
        break;
      }
      case "plugin": {
        const v = take(readSealerPart(sealerPluginDocSchema, sealerPluginToInput, pluginSchema, sealerPluginPath, () => [], doc, source));
        if (v !== undefined) plugins.push({ value: v, source });
        break;
      }
      case "application": {
        const v = take(
          readSealerPart(sealerApplicationDocSchema, sealerApplicationToInput, appsSchema, () => sealerApplicationPath, sealerApplicationRejects, doc, source),
        );
        if (v !== undefined) applications.push({ value: v, source });
        break;
      }
      case "kubeadm":
        kubeadm.push(plain(doc) as Record<string, unknown>);
        break;
      case "ignored":
        warnings.push({ source, path: "kind", message: ignoredMessage(doc) });
    }
  });
  if (clusters.length === 0) {
    const ignored = warnings.filter((w) => w.path === "kind").map((w) => `${w.source}: ${w.message}`);
    rejects.push({
      source: file,
      path: "",
      message: `no Cluster document (kind: Cluster, with apiVersion sealer.io/v2 or ${SEALANT_API_VERSION})${ignored.length > 0 ? `; ${ignored.join("; ")}` : ""}`,
    });
  }
  // sealer keeps the last of several Cluster (or Application) documents; which one was meant is
  // not sealant's to guess when applying.
  if (clusters.length > 1) {
    deferred.push({
      source: clusters[1]?.source ?? file,
      path: "",
      message: `a second Cluster document: a Clusterfile describes one cluster (the first is ${clusters[0]?.source}; sealer would take the last)`,
    });
  }
  if (applications.length > 1) {
    deferred.push({
      source: applications[1]?.source ?? file,
      path: "",
      message: `a second Application document (the first is ${applications[0]?.source}; sealer would take the last)`,
    });
  }
  // A refused file is refused with everything wrong in it, applying's problems included.
  if (rejects.length > 0) throw new ClusterSpecError([...rejects, ...deferred], file);
  const cluster = clusters[0]!;
  const locate: Locate = (p) => ({ source: cluster.source, path: formatPath(cluster.userPath(p)) });
  const application = applications[0]?.value;
  const result: ClusterfileReading = {
    format: cluster.format,
    configs: configs.map((c) => c.value),
    plugins: plugins.map((p) => p.value),
    kubeadm,
    warnings,
    deferred,
    locate,
  };
  if (application !== undefined) result.application = application;
  if (cluster.spec !== undefined) {
    result.spec = {
      ...cluster.spec,
      plugins: [...cluster.spec.plugins, ...plugins.map((p) => p.value)],
      configs: [...cluster.spec.configs, ...configs.map((c) => c.value)],
      apps: mergeApps(application, cluster.spec.apps),
      runtime: kubeadm.length > 0 ? { ...cluster.spec.runtime, kubeadm } : cluster.spec.runtime,
    };
    if (result.spec.image !== "") warnings.push(...imageWarnings(result.spec, locate));
  }
  return result;
}

/**
 * Reads a Clusterfile to apply it: sealer's (Cluster, Config, Plugin, Application and kubeadm
 * documents, read unchanged, see `readClusterfile`) or sealant's own (`sealant.io/v1` Cluster;
 * sealer's Config/Plugin/Application documents may follow it). Everything sealant needs to apply
 * it must be there: every problem of `readClusterfile`'s, deferred ones included, is thrown.
 * Pure: key files named by `pk`/`privateKeyPath` are not read here (see `loadClusterfile`).
 *
 * Throws `ClusterSpecError` listing every problem, each at its field in the file's own terms.
 */
export function parseClusterfile(text: string, options: ParseClusterfileOptions = {}): ParsedClusterfile {
  const file = options.file ?? "Clusterfile";
  const { deferred, spec, ...reading } = readClusterfile(text, options);
  if (deferred.length > 0 || spec === undefined) throw new ClusterSpecError(deferred, file);
  return { ...reading, spec };
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
