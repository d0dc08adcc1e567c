import { binaryTag, FAILSAFE_SCHEMA, loadAll, mergeTag, nullCoreTag } from "js-yaml";
import { parseReference } from "../../image/reference";
import { checkExpandedSize } from "../../util/yaml-bounds";

/**
 * The schema used for every YAML sealant reads to find images: scalars stay the strings they
 * were written as (`tag: 1.10` is "1.10", not 1.1), `~`/`null`/empty are null, and anchors,
 * merge keys (`<<: *x`) and `!!binary` work as Kubernetes' YAML 1.1 reader has them.
 */
const SCHEMA = FAILSAFE_SCHEMA.withTags(mergeTag, nullCoreTag, binaryTag);

/** Every document of a YAML (or JSON) stream; empty documents are dropped. Throws on invalid YAML. */
export function parseYamlDocuments(text: string, filename?: string): unknown[] {
  const docs = loadAll(text, filename === undefined ? { schema: SCHEMA } : { schema: SCHEMA, filename });
  checkExpandedSize(docs, filename ?? "YAML document");
  return docs.filter((d) => d !== null && d !== undefined);
}

/** The first line of a parser error, for a warning. */
export function shortError(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split("\n")[0] ?? msg;
}

export type Candidate = { kind: "image"; value: string; path: string } | { kind: "skipped"; value: string; path: string; reason: "templated" | "invalid" };

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Uint8Array);
}

/** `{{ .Values.x }}`, `${VAR}`, `$(VAR)`: filled in later, so not an image yet. */
export function isTemplated(value: string): boolean {
  return value.includes("{{") || /\$\{[^}]*\}|\$\([^)]*\)/.test(value);
}

/** Classifies a string found where an image is expected. Empty strings are ignored (undefined). */
export function classify(value: string, path: string): Candidate | undefined {
  const v = value.trim();
  if (v === "") return undefined;
  if (isTemplated(v)) return { kind: "skipped", value: v, path, reason: "templated" };
  try {
    parseReference(v);
    return { kind: "image", value: v, path };
  } catch {
    return { kind: "skipped", value: v, path, reason: "invalid" };
  }
}

/**
 * Images in one parsed Kubernetes document, by structure rather than by text: a string
 * under a key named exactly `image`, at any depth. That covers `containers`,
 * `initContainers` and `ephemeralContainers` of every workload kind (Pod, Deployment,
 * StatefulSet, DaemonSet, Job, CronJob's jobTemplate, ReplicaSet, and any custom resource
 * that embeds a pod template), `List` items, and custom resources with their own `image`
 * field (`spec.image: quay.io/prometheus/prometheus:v2.45.0`). A map under `image` with a
 * `repository` (`image: {registry, repository, tag, digest}`) is an image too.
 *
 * Not images: any other key (`imagePullPolicy`, `description: "the image of the app"`),
 * text inside a string (a ConfigMap's multi-line data that contains `image: foo` is one
 * string), Secret data, and templated values.
 */
export function findImageFields(doc: unknown): Candidate[] {
  const out: Candidate[] = [];
  const walk = (node: unknown, path: string, depth: number): void => {
    if (depth > 200) return;
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, `${path}[${i}]`, depth + 1));
      return;
    }
    if (!isPlainObject(node)) return;
    const isSecret = node.kind === "Secret" && typeof node.apiVersion === "string";
    for (const [key, value] of Object.entries(node)) {
      const here = path === "" ? key : `${path}.${key}`;
      if (isSecret && (key === "data" || key === "stringData")) continue;
      if (key === "image") {
        if (typeof value === "string") {
          const c = classify(value, here);
          if (c) out.push(c);
          continue;
        }
        if (isPlainObject(value) && typeof value.repository === "string") {
          const c = composeImage(value, here, {});
          if (c) out.push(c);
          continue;
        }
      }
      walk(value, here, depth + 1);
    }
  };
  walk(doc, "", 0);
  return out;
}

/**
 * An image from the parts charts conventionally split it into:
 * `[registry/]repository[:tag][@digest]`, the tag defaulting to `defaults.tag` (a chart's
 * appVersion) and the registry overridden by `defaults.registry` (bitnami's
 * `global.imageRegistry`). `name` is the key holding the repository (`repository` or `image`).
 */
export function composeImage(
  m: Record<string, unknown>,
  path: string,
  defaults: { tag?: string; registry?: string },
  name: "repository" | "image" = "repository",
): Candidate | undefined {
  const str = (v: unknown): string | undefined => (typeof v === "string" && v.trim() !== "" ? v.trim() : undefined);
  const repository = str(m[name]);
  if (!repository) return undefined;
  const registry = defaults.registry ?? str(m.registry);
  let value = registry ? `${registry.replace(/\/+$/, "")}/${repository}` : repository;
  const lastSlash = value.lastIndexOf("/");
  const hasTag = value.lastIndexOf(":") > lastSlash;
  const hasDigest = value.includes("@");
  const tag = str(m.tag) ?? (name === "image" ? str(m.imageTag) : undefined) ?? defaults.tag;
  if (!hasTag && !hasDigest && tag) value += `:${tag}`;
  const digest = str(m.digest);
  if (digest && !hasDigest) value += `@${digest}`;
  return classify(value, `${path}.${name}`);
}
