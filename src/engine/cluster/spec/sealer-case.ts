import type { z } from "zod";
import { unwrap } from "./coerce";
import { formatPath, type SpecProblem } from "./errors";
import { isMapping } from "./yaml";

/*
 * sealer decodes its documents with Go's encoding/json, which matches a field name in any case
 * when no field has the exact name: `Hosts:` or `SSH:` are sealer's `hosts` and `ssh`. sealant
 * reads them the same way, and says so (the file is clearer with the documented spelling).
 */

interface Shape {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
}

function shapeOf(schema: z.ZodType): Shape {
  return (unwrap(schema) as unknown as { _zod: { def: Shape } })._zod.def;
}

/** `value` with field names matched to `schema`'s in any case, as Go's JSON decoding matches them. */
export function foldFieldCase(value: unknown, schema: z.ZodType, source: string, notes: SpecProblem[], path: PropertyKey[] = []): unknown {
  const d = shapeOf(schema);
  if (Array.isArray(value)) {
    return d.type === "array" && d.element ? value.map((v, i) => foldFieldCase(v, d.element as z.ZodType, source, notes, [...path, i])) : value;
  }
  if (!isMapping(value) || d.type !== "object" || d.shape === undefined) return value;
  const fields = Object.keys(d.shape);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    let name = key;
    if (!fields.includes(key)) {
      const match = fields.find((f) => f.toLowerCase() === key.toLowerCase());
      if (match !== undefined && !Object.hasOwn(value, match)) {
        name = match;
        notes.push({ source, path: formatPath([...path, key]), message: `read as ${match} (sealer matches field names in any case): write ${match}` });
      }
    }
    const field = Object.hasOwn(d.shape, name) ? d.shape[name] : undefined;
    // defineProperty: a key such as "__proto__" in the file stays a plain key.
    Object.defineProperty(out, name, {
      value: field === undefined ? v : foldFieldCase(v, field, source, notes, [...path, name]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
