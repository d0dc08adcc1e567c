import type { z } from "zod";
import { knownKeys } from "./coerce";
import { quote, suggest } from "./validators";

/** One thing wrong with a cluster spec, in the terms of the file (or inputs) the user wrote. */
export interface SpecProblem {
  /** Which document: `Clusterfile (Cluster "my-cluster")`, `Clusterfile (Config "calico")`, `Cluster inputs`. */
  readonly source: string;
  /** The field, as the user's file spells it: `spec.hosts[1].ips[0]`, `spec.ssh.passwd`; "" for the whole document. */
  readonly path: string;
  /** What is wrong: the bad value (never a secret's) and what is allowed. */
  readonly message: string;
}

/** `Clusterfile (Cluster "my-cluster"): spec.hosts[1].ips[0]: "10.0.0.300" is not an IPv4 or IPv6 address` */
export function formatProblem(p: SpecProblem): string {
  return p.path === "" ? `${p.source}: ${p.message}` : `${p.source}: ${p.path}: ${p.message}`;
}

/** Every problem found in a cluster spec, all at once; the message lists them one per line. */
export class ClusterSpecError extends Error {
  readonly problems: readonly SpecProblem[];

  constructor(problems: readonly SpecProblem[], file = "Clusterfile") {
    const head = problems.length === 1 ? `${file} is invalid` : `${file} is invalid (${problems.length} problems)`;
    super(`${head}:\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`);
    this.name = "ClusterSpecError";
    this.problems = problems;
  }
}

/** `spec.hosts[1].ips[0]`; keys that are not identifiers are quoted (`labels["node.kubernetes.io/x"]`). */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const k of path) {
    if (typeof k === "number") out += `[${k}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(k))) out += out === "" ? String(k) : `.${String(k)}`;
    else out += `[${quote(String(k))}]`;
  }
  return out;
}

/** Field names whose values are secrets in either format: never printed, never in digests as plain text. */
export const SECRET_FIELDS: ReadonlySet<string> = new Set(["password", "passwd", "passphrase", "pkPasswd", "privateKey", "token"]);

export function isSecretPath(path: readonly PropertyKey[]): boolean {
  const keys = path.filter((k): k is string => typeof k === "string");
  const last = keys[keys.length - 1];
  if (last === undefined) return false;
  // k3s's `auth: {auth: <base64 of user:password>}` (registries): the inner `auth` only — the outer one is the login's mapping.
  if (last === "auth" && keys[keys.length - 2] === "auth") return true;
  return SECRET_FIELDS.has(last);
}

export const REDACTED = "<redacted>";

/** The value as a message shows it: strings quoted, containers by kind, a secret field's scalar `<redacted>`. */
export function describeValue(value: unknown, path: readonly PropertyKey[]): string {
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (isSecretPath(path)) return REDACTED;
  if (typeof value === "string") return quote(value);
  return String(value);
}

export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/**
 * The same setting under another tool's name (sealant's, sealer's, OpenSSH's): a typo of one
 * suggests the name this file uses (`pasword` in a sealer file → `passwd`).
 */
const SYNONYMS: Record<string, readonly string[]> = {
  password: ["passwd"],
  passwd: ["password"],
  privateKeyPath: ["pk"],
  privateKey: ["pk"],
  identityFile: ["pk", "privateKeyPath"],
  pk: ["privateKeyPath"],
  passphrase: ["pkPasswd"],
  pkPasswd: ["passphrase"],
  username: ["user"],
  workers: ["hosts"],
  masters: ["hosts"],
  nodes: ["hosts"],
};

/** The known field a misspelled one most likely means, through SYNONYMS too. */
function suggestField(key: string, known: readonly string[]): string | undefined {
  // Own keys only: a field named "constructor" or "__proto__" is an unknown field, not Object's.
  const synonyms = (k: string): readonly string[] | undefined => (Object.hasOwn(SYNONYMS, k) ? SYNONYMS[k] : undefined);
  const direct = synonyms(key)?.find((s) => known.includes(s));
  if (direct !== undefined) return direct;
  const hint = suggest(key, [...known, ...Object.keys(SYNONYMS)]);
  if (hint === undefined || known.includes(hint)) return hint;
  return synonyms(hint)?.find((s) => known.includes(s)) ?? suggest(key, known);
}

const EXPECTED_WORDS: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
  record: "a mapping",
};

function quoteAll(xs: readonly unknown[]): string {
  return xs.map((x) => (typeof x === "string" ? quote(x) : JSON.stringify(x))).join(", ");
}

/** A zod issue, read loosely (zod 4's issue union without its internals). */
interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  expected?: string;
  keys?: string[];
  values?: unknown[];
  origin?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  errors?: Issue[][];
}

export interface IssueContext {
  /** The schema that produced the issues (for the field names an object knows). */
  schema: z.ZodType;
  /** What was parsed (after YAML coercion): bad values are read from here. */
  input: unknown;
  source: string;
  /** Turns a path in the parsed value into the user's path (e.g. adds `spec`). */
  userPath: (path: readonly PropertyKey[]) => PropertyKey[];
}

/** zod's issues as problems in the user's terms: the field, the bad value (redacted if secret), what is allowed. */
export function issuesToProblems(issues: readonly z.core.$ZodIssue[], ctx: IssueContext): SpecProblem[] {
  const out: SpecProblem[] = [];
  for (const issue of issues as unknown as Issue[]) out.push(...issueProblems(issue, [], ctx));
  return out;
}

function issueProblems(issue: Issue, base: PropertyKey[], ctx: IssueContext): SpecProblem[] {
  const path = [...base, ...issue.path];
  const at = (p: readonly PropertyKey[], message: string): SpecProblem => ({ source: ctx.source, path: formatPath(ctx.userPath(p)), message });
  const value = valueAt(ctx.input, path);
  const shown = describeValue(value, path);
  switch (issue.code) {
    case "unrecognized_keys": {
      const known = knownKeys(ctx.schema, path);
      return (issue.keys ?? []).map((key) => {
        const hint = suggestField(key, known);
        const tail = hint !== undefined ? `did you mean "${hint}"?` : known.length > 0 ? `expected one of ${quoteAll(known)}` : "";
        return at([...path, key], tail === "" ? "unknown field" : `unknown field (${tail})`);
      });
    }
    case "invalid_type": {
      if (value === undefined) return [at(path, "is required")];
      const expected = EXPECTED_WORDS[issue.expected ?? ""] ?? issue.expected ?? "another type";
      return [at(path, `expected ${expected}, got ${shown}`)];
    }
    case "invalid_value": {
      const allowed = (issue.values ?? []).filter((v): v is string => typeof v === "string");
      const hint = typeof value === "string" && !isSecretPath(path) ? suggest(value, allowed) : undefined;
      return [at(path, `${shown} is not allowed (expected one of ${quoteAll(issue.values ?? [])})${hint !== undefined ? `; did you mean "${hint}"?` : ""}`)];
    }
    case "too_small": {
      if (issue.origin === "string" && Number(issue.minimum) === 1) return [at(path, "must not be empty")];
      if (issue.origin === "array") return [at(path, `must list at least ${String(issue.minimum)}`)];
      return [at(path, `${shown} is below the minimum ${String(issue.minimum)}`)];
    }
    case "too_big": {
      if (issue.origin === "array") return [at(path, `must list at most ${String(issue.maximum)}`)];
      if (issue.origin === "string") return [at(path, `is longer than ${String(issue.maximum)} characters`)];
      return [at(path, `${shown} is above the maximum ${String(issue.maximum)}`)];
    }
    case "invalid_union": {
      const branches = issue.errors ?? [];
      // A branch that got past the type check has the real complaint (e.g. a port out of range).
      const typed = branches.find((b) => b.length > 0 && !b.some((i) => i.code === "invalid_type" && i.path.length === 0));
      if (typed !== undefined) return typed.flatMap((i) => issueProblems(i, path, ctx));
      const expected = [
        ...new Set(
          branches.flatMap((b) =>
            b.filter((i) => i.code === "invalid_type" && i.path.length === 0).map((i) => EXPECTED_WORDS[i.expected ?? ""] ?? i.expected ?? ""),
          ),
        ),
      ];
      if (value === undefined) return [at(path, "is required")];
      return [at(path, `expected ${expected.join(" or ")}, got ${shown}`)];
    }
    default:
      return [at(path, issue.message)];
  }
}
