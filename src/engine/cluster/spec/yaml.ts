import {
  boolCoreTag,
  defineScalarTag,
  dump,
  DUMP_SCHEMA,
  FAILSAFE_SCHEMA,
  floatCoreTag,
  intCoreTag,
  loadAll,
  mergeTag,
  NOT_RESOLVED,
  nullCoreTag,
  visit,
  type ScalarTagDefinition,
} from "js-yaml";
import { checkExpandedSize } from "../../util/yaml-bounds";

/**
 * A plain YAML scalar that reads as a number or boolean (`123456`, `0123`, `1e3`, `true`), kept
 * with the text it was written as. Whether it is the number or the text is decided by the field
 * it lands in (see `coerceForSchema`): `passwd: 0123` is the password "0123", `port: 22` the
 * number 22. Quoted scalars are strings from the start and never become a YamlScalar.
 */
export class YamlScalar {
  constructor(
    /** As written in the file. */
    readonly text: string,
    /** What YAML 1.2's core schema makes of it. */
    readonly value: number | boolean,
  ) {}

  /** Mapping keys and string contexts see the written text. */
  toString(): string {
    return this.text;
  }
}

function keepText<T extends number | boolean>(tag: ScalarTagDefinition<T>): ScalarTagDefinition<YamlScalar> {
  return defineScalarTag<YamlScalar>(tag.tagName, {
    implicit: true,
    implicitFirstChars: tag.implicitFirstChars,
    resolve: (source, isExplicit, tagName) => {
      const v = tag.resolve(source, isExplicit, tagName);
      return v === NOT_RESOLVED ? NOT_RESOLVED : new YamlScalar(source, v);
    },
    identify: () => false,
  });
}

/**
 * The load schema: YAML 1.2 core resolution (`~`/`null`/empty are null; merge keys work), except
 * that numbers and booleans arrive as `YamlScalar`s that remember their text.
 */
const LOAD_SCHEMA = FAILSAFE_SCHEMA.withTags(nullCoreTag, keepText(boolCoreTag), keepText(intCoreTag), keepText(floatCoreTag), mergeTag);

const VERBATIM_TAG = "tag:sealant.io,2025:verbatim";

/** The dump schema: DUMP_SCHEMA (strings a YAML 1.1 reader would misread are quoted) + YamlScalars written verbatim. */
const DUMP_WITH_SCALARS = DUMP_SCHEMA.withTags(
  defineScalarTag<YamlScalar>(VERBATIM_TAG, {
    resolve: () => NOT_RESOLVED,
    identify: (d) => d instanceof YamlScalar,
    represent: (d: YamlScalar) => d.text,
  }),
);

const CORE_SCALARS = [intCoreTag, floatCoreTag, boolCoreTag];

/** The core tag a YamlScalar's text resolves to, so that the dumper writes it plain. */
function coreTagOf(text: string): string {
  const tag = CORE_SCALARS.find((t) => t.resolve(text, false, t.tagName) !== NOT_RESOLVED);
  return tag?.tagName ?? "tag:yaml.org,2002:str";
}

/** A YAML document that cannot be read, with the parser's message (which names line and column). */
export class YamlSyntaxError extends Error {
  constructor(file: string, reason: string) {
    super(`${file}: invalid YAML: ${reason}`);
    this.name = "YamlSyntaxError";
  }
}

/**
 * Every document of a YAML (or JSON) stream, in order; empty documents are kept as null so that
 * document numbers match the file. Numbers and booleans are `YamlScalar`s (see above).
 */
export function loadYamlDocuments(text: string, file = "Clusterfile"): unknown[] {
  let docs: unknown[];
  try {
    docs = loadAll(text, { schema: LOAD_SCHEMA, filename: file });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new YamlSyntaxError(file, msg.split("\n")[0] ?? msg);
  }
  checkExpandedSize(docs, file);
  return docs;
}

/** Writes documents as a YAML stream (`---` between documents); YamlScalars keep their text, key order is kept. */
export function dumpYamlDocuments(docs: readonly unknown[]): string {
  return docs
    .map((d) =>
      dump(d, {
        schema: DUMP_WITH_SCALARS,
        noRefs: true,
        transform: (documents) =>
          visit(documents, (node) => {
            // The tag may be printed percent-encoded; what matters is that it is ours.
            if (node.kind === "scalar" && node.tagged && node.tag.includes("sealant.io")) {
              node.tag = coreTagOf(node.value);
              node.tagged = false;
            }
            return undefined;
          }),
      }),
    )
    .join("---\n");
}

/** The value with every YamlScalar replaced by its number/boolean (what a plain YAML load would give). */
export function plain(value: unknown): unknown {
  if (value instanceof YamlScalar) return value.value;
  if (Array.isArray(value)) return value.map(plain);
  if (isMapping(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

/** A YAML mapping as loaded (a plain object; not a list, not a scalar). */
export function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof YamlScalar) && !(v instanceof Uint8Array);
}
