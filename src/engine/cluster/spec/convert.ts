import { readClusterfile, SEALANT_API_VERSION, type ParseClusterfileOptions } from "./clusterfile";
import type { SpecProblem } from "./errors";
import { clusterSpecSchema, defaultDataRoot, type ClusterSpec } from "./schema";
import { dumpYamlDocuments } from "./yaml";

/*
 * `sealant convert`: any Clusterfile sealant reads (sealer's first format, sealer v2, sealant's
 * own) written as sealant's own `sealant.io/v1` Cluster, with sealer's Config, Plugin and
 * Application documents folded into its spec. Only what differs from sealant's defaults is
 * written, so the result reads like something a person wrote.
 */

export interface ConvertedClusterfile {
  /** The new Clusterfile's text. */
  text: string;
  /** What the reader said (ignored fields, the old format...), and what was left out. */
  warnings: SpecProblem[];
  /** What applying the result would still refuse (no image, no master...): fix these in the new file. */
  unresolved: SpecProblem[];
}

type Obj = Record<string, unknown>;

function isPlainObject(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `value` without what equals `base` (objects compared field by field, anything else as JSON). */
function diff(value: unknown, base: unknown): unknown {
  if (isPlainObject(value) && isPlainObject(base)) {
    const out: Obj = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      const d = diff(v, base[k]);
      if (d !== undefined) out[k] = d;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  return JSON.stringify(value) === JSON.stringify(base) ? undefined : value;
}

/** sealant's spec with only the defaults: what is left out of the written file. */
function defaultsFor(spec: ClusterSpec): Obj {
  return clusterSpecSchema.parse({ name: spec.name, image: "defaults:1", hosts: [{ ips: ["10.0.0.1"], roles: ["master"] }] }) as Obj;
}

/**
 * A password sealer had "encrypted" with the key in its source is not written back in the
 * clear: the new file leaves it out and a warning says how to give it.
 */
function withoutDecryptedPasswords(spec: ClusterSpec, warnings: SpecProblem[], source: string, out: SpecProblem[]): ClusterSpec {
  const encrypted = new Set(warnings.filter((w) => w.path.endsWith(".encrypted")).map((w) => w.path));
  if (encrypted.size === 0) return spec;
  const all = encrypted.has("spec.ssh.encrypted");
  const copy = structuredClone(spec);
  const drop = (ssh: { password?: string } | undefined, path: string): void => {
    if (ssh?.password === undefined) return;
    delete ssh.password;
    out.push({
      source,
      path,
      message: "a password sealer encrypted is not written in the clear: give it as a Pulumi secret, or use ssh.privateKeyPath with a key file",
    });
  };
  if (all) drop(copy.ssh, "spec.ssh.passwd");
  copy.hosts.forEach((h, g) => {
    if (all || encrypted.has(`spec.hosts[${g}].ssh.encrypted`)) drop(h.ssh, `spec.hosts[${g}].ssh.passwd`);
  });
  return copy;
}

/** Converts a Clusterfile's text (see `readClusterfile` for what is read) into a sealant Clusterfile. */
export function convertClusterfile(text: string, options: ParseClusterfileOptions = {}): ConvertedClusterfile {
  const reading = readClusterfile(text, options);
  const file = options.file ?? "Clusterfile";
  const warnings = [...reading.warnings];
  if (reading.spec === undefined) {
    // The Cluster document itself has problems only applying reports: nothing to write from.
    return { text: "", warnings, unresolved: reading.deferred };
  }
  const spec = withoutDecryptedPasswords(reading.spec, reading.warnings, file, warnings);
  const { name, ...body } = spec;
  const written = (diff(body, defaultsFor(spec)) ?? {}) as Obj;
  if (written["dataRoot"] === defaultDataRoot(name)) delete written["dataRoot"];
  // Fields a person reads first, in the order sealant's README writes them.
  const ordered: Obj = {};
  for (const k of ["image", "hosts", "ssh", "env"])
    if (written[k] !== undefined || k === "image" || k === "hosts") ordered[k] = written[k] ?? body[k as keyof typeof body];
  for (const [k, v] of Object.entries(written)) if (!(k in ordered)) ordered[k] = v;
  const doc = { apiVersion: SEALANT_API_VERSION, kind: "Cluster", metadata: { name }, spec: ordered };
  const unresolved = [...reading.deferred];
  spec.hosts.forEach((h, g) => {
    if (h.roles.length === 0) {
      unresolved.push({
        source: file,
        path: `spec.hosts[${g}].roles`,
        message: "none: sealer gives these hosts no role; sealant's format names them (node for a worker)",
      });
    }
  });
  return { text: dumpYamlDocuments([doc]), warnings, unresolved };
}
