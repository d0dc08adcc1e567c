/**
 * What the ImageBuild and ClusterImage implementations share: the zod pieces of their inputs
 * (image references, registry credentials, flags; values not known yet during preview pass),
 * zod's issues as Pulumi check failures, and a session that uses the resource's credentials.
 * No Pulumi import here.
 */
import { z } from "zod";
import { registryKey } from "../../engine/image/credentials";
import { formatReference, parseReference } from "../../engine/image/reference";
import { Session } from "../../engine/session";
import { isUnknown, UNKNOWN } from "./unknown";

/** One validation failure, as Pulumi's CheckFailure. */
export interface Failure {
  property: string;
  reason: string;
}

/** Credentials for one registry. `registry` defaults to the registry of the image concerned. */
export interface RegistryAuth {
  registry?: string;
  username: string;
  password: string;
}

/** What every provider method may be given besides its Pulumi arguments (tests pass a quiet log). */
export interface ProviderHooks {
  /** Progress lines. Default: stderr, which `pulumi up` shows while the step runs. */
  log?: (line: string) => void;
}

export function logger(hooks: ProviderHooks | undefined, prefix: string): (line: string) => void {
  const log = hooks?.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  return (line) => log(`${prefix}: ${line}`);
}

/** A copy that is plain JSON (no undefined, no class instances): what `outs` must be. */
export function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A bad value as a message shows it. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return `"${value}"`;
  return `${typeof value} ${String(value)}`;
}

/** `registry/repo:tag` normalised, or the text as is when it does not parse (so a diff still sees it). */
export function normalisedRef(value: unknown): unknown {
  if (typeof value !== "string" || isUnknown(value)) return value;
  try {
    return formatReference(parseReference(value));
  } catch {
    return value;
  }
}

// ------------------------------------------------------------------ zod

/** `schema`, or a value not known yet (preview): that is neither validated nor acted on. */
export function orUnknown<T extends z.ZodType>(schema: T) {
  return z.union([z.literal(UNKNOWN), schema]);
}

/** true or false. */
export const flag = orUnknown(z.boolean({ error: (iss) => `expected true or false, got ${describeValue(iss.input)}` })).nullish();

const REQUIRED_REF = "an image reference is required, e.g. registry.example.com/team/app:1.0";

/** An image reference's text; with `allowDigest: false`, one with a tag (a name to build or push to). */
export function referenceText(opts: { allowDigest: boolean }) {
  return z
    .string({
      error: (iss) => (iss.input === undefined || iss.input === null ? REQUIRED_REF : `expected an image reference string, got ${describeValue(iss.input)}`),
    })
    .superRefine((v, ctx) => {
      if (v === "") return void ctx.addIssue({ code: "custom", message: REQUIRED_REF });
      try {
        if (parseReference(v).digest && !opts.allowDigest)
          ctx.addIssue({ code: "custom", message: `"${v}" has a digest; a tag is needed here (e.g. registry.example.com/team/app:1.0)` });
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
      }
    });
}

/** A required image reference (see referenceText). */
export function reference(opts: { allowDigest: boolean }) {
  return orUnknown(referenceText(opts));
}

const NON_EMPTY = "a non-empty string is required";
const registryHint = (iss: { input?: unknown }): string =>
  `expected a registry host[:port] such as "registry.example.com:5000", got ${describeValue(iss.input)}`;

/** registryAuth: never echoes the password. */
export const registryAuth = orUnknown(
  z.strictObject(
    {
      registry: orUnknown(z.string({ error: registryHint }).refine((v) => registryKey(v) !== "", { error: registryHint })).optional(),
      username: orUnknown(
        z
          .string({ error: NON_EMPTY })
          .min(1, { error: NON_EMPTY })
          .refine((v) => !v.includes(":"), { error: 'must not contain ":"' }),
      ),
      password: orUnknown(
        z.string({ error: `${NON_EMPTY} (the value is not shown: it is a secret)` }).min(1, { error: `${NON_EMPTY} (the value is not shown: it is a secret)` }),
      ),
    },
    {
      error: (iss) =>
        iss.code === "unrecognized_keys"
          ? "unknown property (allowed: registry, username, password)"
          : `expected { registry?, username, password }, got ${Array.isArray(iss.input) ? "a list" : typeof iss.input}`,
    },
  ),
).nullish();

/** A field path as the inputs spell it: `registryAuth.username`, `platforms[1]`, `buildArgs.1x`. */
function propertyOf(path: readonly PropertyKey[]): string {
  return path.map((k, i) => (typeof k === "number" ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join("");
}

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  input?: unknown;
  keys?: string[];
  errors?: Issue[][];
  issues?: Issue[];
}

/** zod's issues as check failures: one per bad field, named by its path, with the schema's own words. */
export function failuresOf(issues: readonly z.core.$ZodIssue[]): Failure[] {
  const out: Failure[] = [];
  const add = (issue: Issue, base: PropertyKey[]): void => {
    const path = [...base, ...issue.path];
    if (issue.code === "invalid_union") {
      // A value that may also be "unknown": the other branch says what is wrong.
      const branches = (issue.errors ?? []).filter(
        (b) =>
          !(
            b.length === 1 &&
            b[0]!.code === "invalid_value" &&
            b[0]!.path.length === 0 &&
            JSON.stringify((b[0] as { values?: unknown[] }).values) === JSON.stringify([UNKNOWN])
          ),
      );
      if (branches.length === 1 && branches.length < (issue.errors ?? []).length) return branches[0]!.forEach((i) => add(i, path));
    }
    if (issue.code === "unrecognized_keys") return (issue.keys ?? []).forEach((k) => out.push({ property: propertyOf([...path, k]), reason: issue.message }));
    if (issue.code === "invalid_key") return void out.push({ property: propertyOf(path), reason: issue.issues?.[0]?.message ?? issue.message });
    out.push({ property: propertyOf(path), reason: issue.message });
  };
  for (const issue of issues as unknown as Issue[]) add(issue, []);
  return out;
}

// ------------------------------------------------------------------ sessions

/** The registryAuth input as the engine wants it, or undefined. */
export function authOf(value: unknown): RegistryAuth | undefined {
  if (!value || typeof value !== "object") return undefined;
  const a = value as Record<string, unknown>;
  if (typeof a["username"] !== "string" || typeof a["password"] !== "string") return undefined;
  return { ...(typeof a["registry"] === "string" ? { registry: a["registry"] } : {}), username: a["username"], password: a["password"] };
}

/**
 * A session ($SEALANT_HOME, SEALANT_REGISTRY_MIRRORS) whose registry clients use `auth` for its
 * registry (default: `defaultRegistry`) and the user's stored credentials elsewhere. The
 * password is only held in memory: it is never written to the credential store.
 */
export function openSession(auth: RegistryAuth | undefined, defaultRegistry: string): Promise<Session> {
  return Session.open(auth ? { auth: { [auth.registry ?? defaultRegistry]: { username: auth.username, password: auth.password } } } : {});
}

/** The registry of a reference; docker.io when it does not parse. */
export function registryOf(ref: unknown): string {
  try {
    return parseReference(String(ref)).registry;
  } catch {
    return "docker.io";
  }
}
