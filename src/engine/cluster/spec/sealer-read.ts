import { z } from "zod";
import { checkHosts } from "./checks";
import { coerceForSchema } from "./coerce";
import { formatPath, issuesToProblems, type SpecProblem } from "./errors";
import { clusterSpecSchema, defaultDataRoot, hostGroupSchema, roleSchema, type ClusterSpec } from "./schema";
import { sealerClusterDocSchema, sealerClusterPath, sealerClusterProblems, sealerClusterToInput } from "./sealer";
import { decryptSealerPassword, ENCRYPTED_NOTE, sealerClusterRejects, sealerClusterWarnings, type SealerNote } from "./sealer-checks";
import { foldFieldCase } from "./sealer-case";
import { isSealerV1Cluster, sealerV1ToV2, V1_NOTE } from "./sealer-v1";
import { isMapping } from "./yaml";

/*
 * Reading sealer's documents as sealer reads them. sealer's decoder (pkg/clusterfile) picks
 * documents by kind, decodes each into its Go type (unknown fields ignored, a value of the wrong
 * type refused) and checks a few things itself (an external registry's domain, SvcCIDR, Config
 * path and data, Application configs). A file it refuses, sealant refuses when reading
 * (`rejects`). What sealer reads but cannot use later (no image, no master, a plugin type it
 * has no hook for...) sealant reports too, as `deferred`: the file reads, and applying it fails
 * with those problems before any host is touched. Unknown fields are warnings: sealer ignores them.
 */

export interface SealerReading<T> {
  value?: T;
  /** Problems sealer's decoder has too: the file is refused when read. */
  rejects: SpecProblem[];
  /** Problems sealer meets only when it uses the file: reading succeeds, applying fails. */
  deferred: SpecProblem[];
  warnings: SpecProblem[];
}

/** A host group without `roles` is read, as by sealer: a host of the cluster with no role (neither master nor node). */
const sealerHostGroupSchema = hostGroupSchema.extend({
  roles: z
    .array(roleSchema)
    .default([])
    .transform((roles) => [...new Set(roles)]),
});

const specObject = clusterSpecSchema.in;

/** sealant's spec as read from a sealer Cluster: the image and hosts may be missing (checked when applied). */
const sealerSpecSchema = specObject
  .extend({ image: specObject.shape.image.optional(), hosts: z.array(sealerHostGroupSchema).default([]) })
  .transform((v): ClusterSpec => ({ ...v, image: v.image ?? "", dataRoot: v.dataRoot ?? defaultDataRoot(v.name) }));

function notes(list: readonly SealerNote[], source: string): SpecProblem[] {
  return list.map((n) => ({ source, path: formatPath(n.path), message: n.message }));
}

/**
 * Shape problems of a document in sealer's types: a value of the wrong type is refused (sealer's
 * decoder refuses it). sealer ignores unknown fields; so does sealant, with a warning, unless the
 * name is a near miss of a real field (`pasword`): then the setting the user meant would be
 * lost, and applying the file stops at it.
 */
function shape(schema: z.ZodType, doc: unknown, source: string): { rejects: SpecProblem[]; deferred: SpecProblem[]; warnings: SpecProblem[] } {
  const r = schema.safeParse(doc);
  if (r.success) return { rejects: [], deferred: [], warnings: [] };
  const problems = (code: (c: string) => boolean): SpecProblem[] =>
    issuesToProblems(
      r.error.issues.filter((i) => code(i.code)),
      { schema, input: doc, source, userPath: (p) => [...p] },
    );
  const unknown = problems((c) => c === "unrecognized_keys");
  return {
    rejects: problems((c) => c !== "unrecognized_keys"),
    deferred: unknown.filter((p) => p.message.includes("did you mean")),
    warnings: unknown.filter((p) => !p.message.includes("did you mean")).map((p) => ({ ...p, message: `${p.message}: ignored, as sealer ignores it` })),
  };
}

/** Later problems at a path a refusal already names say nothing new. */
function without(deferred: SpecProblem[], rejects: SpecProblem[]): SpecProblem[] {
  const taken = new Set(rejects.map((p) => p.path));
  return deferred.filter((p) => !taken.has(p.path));
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (isMapping(v) ? v : {});

/**
 * sealer's `ssh.encrypted: true`: the password is decrypted as sealer does (a host group's ssh
 * is merged over the cluster's first, as sealer merges them, so the cluster's flag covers a
 * group's password). Returns the document with plain passwords and what to say about it.
 */
function decryptPasswords(doc: Obj): { doc: Obj; warnings: SealerNote[]; deferred: SealerNote[] } {
  const warnings: SealerNote[] = [];
  const deferred: SealerNote[] = [];
  const spec = obj(doc["spec"]);
  const clusterEncrypted = obj(spec["ssh"])["encrypted"] === true;
  const fix = (ssh: unknown, encrypted: boolean, path: PropertyKey[]): unknown => {
    const s = obj(ssh);
    if (!encrypted || !isMapping(ssh)) return ssh;
    if (s["encrypted"] === true) warnings.push({ path: [...path, "encrypted"], message: ENCRYPTED_NOTE });
    if (typeof s["passwd"] !== "string" || s["passwd"] === "") return ssh;
    const plain = decryptSealerPassword(s["passwd"]);
    if (plain === undefined) {
      deferred.push({
        path: [...path, "passwd"],
        message: "encrypted is true, but this is not a password encrypted by sealer (sealer fails to log in with it too)",
      });
      const { passwd: _dropped, ...rest } = s;
      return rest;
    }
    return { ...s, passwd: plain };
  };
  const hosts = Array.isArray(spec["hosts"])
    ? spec["hosts"].map((h: unknown, g) =>
        isMapping(h) && isMapping(h["ssh"]) ? { ...h, ssh: fix(h["ssh"], clusterEncrypted || h["ssh"]["encrypted"] === true, ["spec", "hosts", g, "ssh"]) } : h,
      )
    : spec["hosts"];
  const out = { ...doc, spec: { ...spec, ssh: fix(spec["ssh"], clusterEncrypted, ["spec", "ssh"]), ...(hosts !== undefined ? { hosts } : {}) } };
  return { doc: out, warnings, deferred };
}

/** A sealer Cluster document (current or first format), read as sealer reads it. */
export function readSealerCluster(raw: Obj, source: string): SealerReading<ClusterSpec> & { userPath: (p: readonly PropertyKey[]) => PropertyKey[] } {
  const warnings: SpecProblem[] = [];
  let doc = raw;
  if (isSealerV1Cluster(raw)) {
    const v1 = sealerV1ToV2(raw);
    warnings.push({ source, path: "spec", message: V1_NOTE }, ...notes(v1.notes, source));
    doc = v1.doc;
  }
  const coerced = coerceForSchema(foldFieldCase(doc, sealerClusterDocSchema, source, warnings), sealerClusterDocSchema) as Obj;
  const shaped = shape(sealerClusterDocSchema, coerced, source);
  const rejects = [...shaped.rejects, ...notes(sealerClusterRejects(coerced), source)];
  warnings.push(...shaped.warnings, ...notes(sealerClusterWarnings(coerced), source));
  const decrypted = decryptPasswords(coerced);
  warnings.push(...notes(decrypted.warnings, source));
  const userPath = sealerClusterPath(decrypted.doc);
  const input = sealerClusterToInput(decrypted.doc);
  const deferred: SpecProblem[] = [...shaped.deferred, ...notes(decrypted.deferred, source), ...notes(sealerClusterProblems(decrypted.doc), source)];
  const r = sealerSpecSchema.safeParse(coerceForSchema(input, sealerSpecSchema));
  if (!r.success) deferred.push(...issuesToProblems(r.error.issues, { schema: sealerSpecSchema, input, source, userPath }));
  const spec = obj(decrypted.doc["spec"]);
  if (typeof spec["image"] !== "string" || spec["image"] === "") {
    deferred.push({
      source,
      path: "spec.image",
      message: "not set: the cluster image is what is applied (sealer reads such a file too, and fails when it pulls the image)",
    });
  }
  const hosts = Array.isArray(spec["hosts"]) ? spec["hosts"] : [];
  if (hosts.length === 0) deferred.push({ source, path: "spec.hosts", message: "no hosts: list the cluster's hosts (ips and roles)" });
  deferred.push(
    ...checkHosts(hosts, (g) => formatPath(["spec", "hosts", g])).map((p) => ({ source, path: formatPath(["spec", ...p.path]), message: p.message })),
  );
  const value = r.success ? r.data : undefined;
  return { ...(value !== undefined ? { value } : {}), rejects, deferred: without(deferred, rejects), warnings, userPath };
}

/** A sealer Config, Plugin or Application document, read as sealer reads it. */
export function readSealerPart<S extends z.ZodType>(
  docSchema: z.ZodType,
  toInput: (doc: unknown) => unknown,
  schema: S,
  userPath: (doc: unknown) => (path: readonly PropertyKey[]) => PropertyKey[],
  checks: (doc: Obj) => SealerNote[],
  raw: Obj,
  source: string,
): SealerReading<z.output<S>> {
  const folded: SpecProblem[] = [];
  const coerced = coerceForSchema(foldFieldCase(raw, docSchema, source, folded), docSchema) as Obj;
  const shaped = shape(docSchema, coerced, source);
  const rejects = [...shaped.rejects, ...notes(shaped.rejects.length === 0 ? checks(coerced) : [], source)];
  const input = toInput(coerced);
  const r = schema.safeParse(input);
  const deferred = [...shaped.deferred, ...(r.success ? [] : issuesToProblems(r.error.issues, { schema, input, source, userPath: userPath(coerced) }))];
  return { ...(r.success ? { value: r.data } : {}), rejects, deferred: without(deferred, rejects), warnings: [...folded, ...shaped.warnings] };
}

/** sealer's own checks of a Config: a path and data (its decoder refuses either empty). */
export function sealerConfigRejects(doc: Obj): SealerNote[] {
  const spec = obj(doc["spec"]);
  const out: SealerNote[] = [];
  if (typeof spec["path"] !== "string" || spec["path"] === "")
    out.push({ path: ["spec", "path"], message: "is required: the file the data is written to (sealer refuses a Config without it)" });
  if (typeof spec["data"] !== "string" || spec["data"] === "")
    out.push({ path: ["spec", "data"], message: "is required: what is written (sealer refuses a Config without it)" });
  return out;
}

/** sealer's own checks of an Application: every config named, launch with cmds, files with path and data. */
export function sealerApplicationRejects(doc: Obj): SealerNote[] {
  const configs = obj(doc["spec"])["configs"];
  const out: SealerNote[] = [];
  (Array.isArray(configs) ? configs : []).forEach((c: unknown, i) => {
    const config = obj(c);
    const at = ["spec", "configs", i];
    if (typeof config["name"] !== "string" || config["name"] === "") out.push({ path: [...at, "name"], message: "is required: the app the config is for" });
    if (isMapping(config["launch"]) && !Array.isArray(config["launch"]["cmds"]))
      out.push({ path: [...at, "launch", "cmds"], message: "is required: the commands that launch the app" });
    const files = config["files"];
    (Array.isArray(files) ? files : []).forEach((f: unknown, j) => {
      for (const k of ["path", "data"]) {
        const v = obj(f)[k];
        if (typeof v !== "string" || v === "") out.push({ path: [...at, "files", j, k], message: "is required" });
      }
    });
  });
  return out;
}
