import type { ConfigProcessor } from "./schema";
import { dumpYamlDocuments, isMapping, loadYamlDocuments, plain, YamlScalar } from "./yaml";

/** What `applyConfig` needs of a Config (sealer's `spec`, or an entry of sealant's `configs`). */
export interface ConfigChange {
  /** For messages, e.g. the Config's name or path. @default "config" */
  name?: string;
  data: string;
  /** @default "overwrite" */
  strategy?: "overwrite" | "merge";
  process?: readonly ConfigProcessor[];
}

/** A Config that cannot be applied to the file (data or file not YAML where it must be). */
export class ConfigApplyError extends Error {
  constructor(name: string, message: string) {
    super(`config ${name}: ${message}`);
    this.name = "ConfigApplyError";
  }
}

/** Keys sorted, recursively, as Go's YAML/JSON marshalling of maps writes them (sealer's output). */
function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (isMapping(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sorted(v[k]);
    return out;
  }
  return v;
}

function loadOne(text: string, what: string, name: string): unknown {
  let docs: unknown[];
  try {
    docs = loadYamlDocuments(text, what);
  } catch (err) {
    throw new ConfigApplyError(name, err instanceof Error ? err.message : String(err));
  }
  const real = docs.filter((d) => d !== null && d !== undefined);
  if (real.length > 1) throw new ConfigApplyError(name, `${what} has ${real.length} YAML documents; one is expected`);
  return real[0] ?? null;
}

function dataMapping(data: string, name: string, why: string): Record<string, unknown> {
  const v = loadOne(data, "data", name);
  if (v === null) return {};
  if (!isMapping(v)) throw new ConfigApplyError(name, `${why} needs data that is a YAML mapping (key: value)`);
  return v;
}

function scalarText(v: unknown, key: string, name: string, processor: string): string {
  if (typeof v === "string") return v;
  if (v instanceof YamlScalar) return v.text;
  if (v === null) return "";
  throw new ConfigApplyError(name, `${processor} with "value": the value of "${key}" must be a string, not a ${Array.isArray(v) ? "list" : "mapping"}`);
}

/**
 * sealer's Config pre-processors, in the order given: `toJson` turns the data (YAML) into JSON,
 * `toBase64` base64-encodes it; after `value`, both work on each top-level value instead of the
 * whole data (`config: {a: 1}` → `config: '{"a":1}'`). Keys are sorted as sealer's Go output
 * sorts them. `toSecret` does not change the data: it tells `applyConfig` to write a Secret.
 */
export function processConfigData(data: string, process: readonly ConfigProcessor[] = [], name = "config"): string {
  let perValue = false;
  let out = data;
  for (const p of process) {
    if (p === "value") {
      perValue = true;
    } else if (p === "toJson") {
      if (!perValue) {
        out = JSON.stringify(sorted(plain(loadOne(out, "data", name))));
      } else {
        const m = dataMapping(out, name, "toJson with value");
        const converted: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(m)) converted[k] = JSON.stringify(sorted(plain(v)));
        out = dumpYamlDocuments([sorted(converted)]);
      }
    } else if (p === "toBase64") {
      if (!perValue) {
        out = Buffer.from(out).toString("base64");
      } else {
        const m = dataMapping(out, name, "toBase64 with value");
        const converted: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(m)) converted[k] = Buffer.from(scalarText(v, k, name, "toBase64")).toString("base64");
        out = dumpYamlDocuments([sorted(converted)]);
      }
    }
  }
  return out;
}

/**
 * Deep merge as sealer's (mergo with override): mappings merge key by key, anything else in
 * `data` replaces what is there (lists too), and a null in `data` leaves the existing value.
 */
export function deepMerge(base: Record<string, unknown>, data: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(data)) {
    const cur = out[k];
    if (isMapping(v) && isMapping(cur)) out[k] = deepMerge(cur, v);
    else if (v !== null || !Object.hasOwn(out, k)) out[k] = v;
  }
  return out;
}

/** `data`'s entries, base64-encoded, into the existing Secret's `data` (sealer's `toSecret`). */
function intoSecret(existing: string, data: string, name: string): string {
  const secret = loadOne(existing, "the existing file", name) ?? {};
  if (!isMapping(secret)) throw new ConfigApplyError(name, "toSecret needs the existing file to be a Kubernetes Secret (a YAML mapping)");
  const values = dataMapping(data, name, "toSecret");
  const current = isMapping(secret["data"]) ? secret["data"] : {};
  const merged: Record<string, unknown> = { ...current };
  // As sealer: each value's text is base64-encoded once more (toBase64 before toSecret encodes twice).
  for (const [k, v] of Object.entries(values)) merged[k] = Buffer.from(scalarText(v, k, name, "toSecret")).toString("base64");
  return dumpYamlDocuments([{ ...secret, data: sorted(merged) }]);
}

/**
 * The new content of the file a Config targets (pure: the caller reads and writes the file).
 *
 * - No file yet (`existing` undefined): the processed data, whatever the strategy (sealer).
 * - `overwrite` (default): the processed data.
 * - `merge`: every YAML document of the file gets the data (a mapping) deep-merged into it, as
 *   sealer does (`metadata.namespace` added to each document of a multi-document manifest);
 *   empty documents are dropped; scalars keep their written form (`1.10` stays `1.10`).
 * - `process` with `toSecret`: the data's entries go into the existing Secret's `data`.
 */
export function applyConfig(existing: string | undefined, config: ConfigChange): string {
  const name = config.name ?? "config";
  const process = config.process ?? [];
  let data = processConfigData(config.data, process, name);
  if (existing === undefined) return data;
  if (process.includes("toSecret")) data = intoSecret(existing, data, name);
  if (config.strategy !== "merge") return data;
  const patch = dataMapping(data, name, "strategy merge");
  let docs: unknown[];
  try {
    docs = loadYamlDocuments(existing, "the existing file");
  } catch (err) {
    throw new ConfigApplyError(name, `strategy merge: ${err instanceof Error ? err.message : String(err)}`);
  }
  const merged = docs
    .filter((d) => d !== null && d !== undefined)
    .map((d, i) => {
      if (!isMapping(d)) throw new ConfigApplyError(name, `strategy merge: document ${i + 1} of the existing file is not a YAML mapping`);
      return deepMerge(d, patch);
    });
  return dumpYamlDocuments(merged.length > 0 ? merged : [patch]);
}
