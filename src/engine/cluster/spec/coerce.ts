import type { z } from "zod";
import { isMapping, plain, YamlScalar } from "./yaml";

/** The parts of a zod 4 schema definition the walkers below read. */
interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  getter?: () => z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  options?: readonly z.ZodType[];
  values?: readonly unknown[];
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

const WRAPPERS = new Set(["optional", "nullable", "default", "prefault", "readonly", "catch", "nonoptional"]);

/** The schema under optional/default/pipe/lazy wrappers: what actually checks the value. */
export function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let i = 0; i < 32; i++) {
    const d = defOf(s);
    if (WRAPPERS.has(d.type) && d.innerType) s = d.innerType;
    else if (d.type === "pipe" && d.in) s = d.in;
    else if (d.type === "lazy" && d.getter) s = d.getter();
    else break;
  }
  return s;
}

/** Whether a missing value is fine for the schema (optional or defaulted). */
function acceptsMissing(schema: z.ZodType): boolean {
  let s = schema;
  for (let i = 0; i < 32; i++) {
    const d = defOf(s);
    if (d.type === "optional" || d.type === "default" || d.type === "prefault") return true;
    if (WRAPPERS.has(d.type) && d.innerType) s = d.innerType;
    else if (d.type === "pipe" && d.in) s = d.in;
    else return false;
  }
  return false;
}

type Want = "text" | "value";

/** What a YAML number/boolean should become where `schema` checks it. */
function want(schema: z.ZodType, scalar: YamlScalar): Want {
  const d = defOf(unwrap(schema));
  switch (d.type) {
    case "string":
    case "enum":
    case "template_literal":
      return "text";
    case "literal":
      return (d.values ?? []).some((v) => typeof v === "string") ? "text" : "value";
    case "union": {
      const kinds = (d.options ?? []).map((o) => defOf(unwrap(o)).type);
      if (kinds.includes(typeof scalar.value)) return "value";
      return kinds.some((k) => k === "string" || k === "enum" || k === "literal") ? "text" : "value";
    }
    default:
      return "value";
  }
}

/**
 * Makes a loaded YAML tree what `schema` expects, without judging it (zod does that next):
 * a YamlScalar becomes its text where a string is expected (`passwd: 0123` → "0123",
 * `1e3` → "1e3") and its number/boolean elsewhere; a null where the field is optional is
 * dropped (`env:` with nothing after it means no env, as in sealer). Anything the schema does
 * not describe (free-form maps, unknown fields) becomes plain values; a `z.any()` field is left
 * exactly as loaded.
 */
export function coerceForSchema(value: unknown, schema: z.ZodType): unknown {
  // z.any() marks raw YAML that is written out again: YamlScalars stay, so numbers keep their text.
  if (defOf(unwrap(schema)).type === "any") return value;
  if (value instanceof YamlScalar) return want(schema, value) === "text" ? value.text : value.value;
  const s = unwrap(schema);
  const d = defOf(s);
  if (d.type === "union" && (Array.isArray(value) || isMapping(value))) {
    const match = (d.options ?? []).find((o) => {
      const t = defOf(unwrap(o)).type;
      return Array.isArray(value) ? t === "array" : t === "object" || t === "record";
    });
    return match ? coerceForSchema(value, match) : plain(value);
  }
  if (Array.isArray(value)) {
    return d.type === "array" && d.element ? value.map((v) => coerceForSchema(v, d.element as z.ZodType)) : plain(value);
  }
  if (isMapping(value)) {
    if (d.type === "object" && d.shape) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const field = Object.hasOwn(d.shape, k) ? d.shape[k] : undefined;
        if (field === undefined) out[k] = plain(v);
        else if (v === null && acceptsMissing(field)) continue;
        else out[k] = coerceForSchema(v, field);
      }
      return out;
    }
    if (d.type === "record" && d.valueType) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = coerceForSchema(v, d.valueType);
      return out;
    }
    return plain(value);
  }
  return value;
}

/** The object schema reached by following `path` (keys and list indexes) from `schema`, if any. */
export function schemaAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = schema;
  for (const key of path) {
    if (s === undefined) return undefined;
    const d = defOf(unwrap(s));
    if (d.type === "object" && d.shape && typeof key === "string") s = d.shape[key];
    else if (d.type === "array" && typeof key === "number") s = d.element;
    else if (d.type === "record") s = d.valueType;
    else if (d.type === "union") s = (d.options ?? []).map((o) => schemaAt(o, [key])).find((x) => x !== undefined);
    else return undefined;
  }
  return s;
}

/** The field names an object schema (at `path`) knows, for "unknown field" hints. */
export function knownKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  const s = schemaAt(schema, path);
  if (s === undefined) return [];
  const d = defOf(unwrap(s));
  if (d.type === "object" && d.shape) return Object.keys(d.shape);
  if (d.type === "union") {
    for (const o of d.options ?? []) {
      const od = defOf(unwrap(o));
      if (od.type === "object" && od.shape) return Object.keys(od.shape);
    }
  }
  return [];
}
