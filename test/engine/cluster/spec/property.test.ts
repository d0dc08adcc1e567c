/**
 * Property-based tests of the Clusterfile reader and the Cluster inputs (fast-check, a fixed seed
 * so a failure replays, a bounded time per property so CI never waits long). Whatever text or
 * structure comes in, the reader gives a spec or throws its own ClusterSpecError — one line per
 * problem, never a raw TypeError/RangeError, never a hang, never a secret — and a spec it accepts
 * carries no line break or control character in any value that lands in a host file.
 */
import { performance } from "node:perf_hooks";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClusterSpecError, parseClusterfile, validateClusterSpec, type ClusterSpec } from "../../../../src/engine/cluster/spec";

/** Fixed, so CI replays the same inputs; SEALANT_PROPERTY_SEED explores others locally. */
const SEED = Number(process.env["SEALANT_PROPERTY_SEED"] ?? 20261205);
/** Each property stops after this long (whatever it reached counts as passed) or numRuns. */
const PROPERTY = {
  seed: SEED,
  numRuns: Number(process.env["SEALANT_PROPERTY_RUNS"] ?? 1000),
  interruptAfterTimeLimit: 4000,
  markInterruptAsFailure: false,
} as const;
/** One read of one input: far more than any real Clusterfile takes (~1 ms); a hang fails here. */
const ONE_READ_MS = 3000;

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const SECRET_MARK = "S3CR3T-";

/** Reads `text`; returns the spec, or the ClusterSpecError (anything else fails the property). */
function read(text: string): ClusterSpec | ClusterSpecError {
  const started = performance.now();
  try {
    return parseClusterfile(text).spec;
  } catch (err) {
    if (!(err instanceof ClusterSpecError)) throw new Error(`not a ClusterSpecError: ${String(err)}\nfor: ${JSON.stringify(text)}`, { cause: err });
    return err;
  } finally {
    const ms = performance.now() - started;
    if (ms > ONE_READ_MS) throw new Error(`reading took ${ms.toFixed(0)} ms: ${JSON.stringify(text).slice(0, 300)}`);
  }
}

/** Every problem is one line, with a source, and no secret value of the input. */
function checkProblems(err: ClusterSpecError, secrets: readonly string[] = []): void {
  expect(err.problems.length).toBeGreaterThan(0);
  for (const p of err.problems) {
    expect(p.source).not.toBe("");
    expect(p.message).not.toBe("");
    expect(`${p.path} ${p.message}`).not.toMatch(/[\n\r\u2028\u2029]/);
  }
  for (const s of secrets) expect(err.message).not.toContain(s);
}

/** What lands in host files and command lines, from an accepted spec: none may hold a control character. */
function landedValues(spec: ClusterSpec): string[] {
  const out = [spec.name, spec.dataRoot, spec.registry.domain, ...(spec.registry.subjectAltNames ?? []), spec.ssh.user];
  if (spec.registry.username !== undefined) out.push(spec.registry.username);
  if (spec.ssh.bastion) out.push(spec.ssh.bastion.host);
  for (const a of spec.hostAliases) out.push(a.ip, ...a.hostnames);
  for (const h of spec.hosts) {
    out.push(...h.ips, ...h.roles, ...(h.taints ?? []));
    for (const [k, v] of Object.entries(h.labels ?? {})) out.push(k, v);
    out.push(...Object.keys(h.env ?? {}));
  }
  out.push(...Object.keys(spec.env));
  for (const p of spec.plugins) out.push(p.name);
  for (const c of spec.configs) out.push(c.name, c.path);
  return out;
}

function checkSpec(spec: ClusterSpec): void {
  for (const v of landedValues(spec)) expect(v, JSON.stringify(v)).not.toMatch(CONTROL);
  expect(spec.registry.domain).toMatch(/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/);
  for (const a of spec.hostAliases) for (const n of a.hostnames) expect(n).toMatch(/^[A-Za-z0-9.-]+$/);
  expect(spec.dataRoot.startsWith("/")).toBe(true);
}

// ---- arbitraries ----

/** Strings that have broken readers before: line breaks, NUL, separators, quotes, YAML syntax, huge numbers. */
const nasty = fc.constantFrom(
  "sea.hub\n10.6.6.6 evil.example",
  "a\u0000b",
  "x\u2028y",
  "\r\n",
  "\t",
  "../../etc",
  "/",
  "a b",
  "user:pass",
  "'",
  '"',
  "${HOME}",
  "$(id)",
  "`id`",
  "*",
  "-",
  "1e999",
  "0x1F",
  "-0",
  "NaN",
  "~",
  "true",
  "__proto__",
  "constructor",
  "toString",
  "10.0.0.300",
  "fd00::1%eth0",
  "a".repeat(300),
);
const text = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 2, arbitrary: nasty },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
);
const ipLike = fc.oneof(fc.ipV4(), fc.ipV6(), text);
const scalar = fc.oneof(text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
const anyValue: fc.Arbitrary<unknown> = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }), fc.dictionary(text, scalar, { maxKeys: 3 }));
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(fc.oneof({ weight: 4, arbitrary: a }, { weight: 1, arbitrary: anyValue }), { nil: undefined });
const password = fc.string({ maxLength: 12 }).map((s) => `${SECRET_MARK}${s}`);

const hostGroup = fc.record(
  {
    ips: fc.oneof(fc.array(ipLike, { minLength: 1, maxLength: 3 }), anyValue),
    roles: fc.oneof(fc.array(fc.oneof(fc.constantFrom("master", "node", "worker", "registry"), text), { minLength: 1, maxLength: 2 }), anyValue),
    labels: maybe(fc.dictionary(text, text, { maxKeys: 2 })),
    taints: maybe(fc.array(fc.oneof(fc.constantFrom("k=v:NoSchedule", "k:NoExecute"), text), { maxLength: 2 })),
    env: maybe(fc.oneof(fc.dictionary(text, text, { maxKeys: 2 }), fc.array(text, { maxLength: 2 }))),
  },
  { requiredKeys: ["ips", "roles"] },
);

const registry = fc.record(
  {
    domain: maybe(text),
    port: maybe(fc.oneof(fc.integer(), text)),
    username: maybe(text),
    password: maybe(password),
    subjectAltNames: maybe(fc.array(text, { maxLength: 2 })),
  },
  { requiredKeys: [] },
);

/** A sealant Clusterfile's spec, every field drawn from good and hostile values. */
const sealantSpec = fc.record(
  {
    image: fc.oneof(fc.constant("example/app:1"), text),
    hosts: fc.oneof(fc.array(hostGroup, { minLength: 1, maxLength: 2 }), anyValue),
    ssh: maybe(
      fc.record(
        { user: maybe(text), password: maybe(password), port: maybe(fc.oneof(fc.integer(), text)), bastion: maybe(fc.record({ host: text, password })) },
        { requiredKeys: [] },
      ),
    ),
    env: maybe(fc.oneof(fc.dictionary(text, text, { maxKeys: 3 }), fc.array(text, { maxLength: 3 }))),
    registry: maybe(registry),
    hostAliases: maybe(fc.array(fc.record({ ip: ipLike, hostnames: fc.array(text, { maxLength: 2 }) }), { maxLength: 2 })),
    dataRoot: maybe(text),
    plugins: maybe(fc.array(fc.record({ name: text, action: fc.oneof(fc.constantFrom("post-install", "pre-init-host"), text), data: text }), { maxLength: 1 })),
    configs: maybe(fc.array(fc.record({ name: text, path: text, data: text }), { maxLength: 1 })),
    timeouts: maybe(fc.record({ command: fc.oneof(fc.integer(), text) }, { requiredKeys: [] })),
  },
  { requiredKeys: ["image", "hosts"] },
);

/** The same kinds of values in sealer's v2 shape (passwd, env lists, localRegistry). */
const sealerSpec = fc.record(
  {
    image: fc.oneof(fc.constant("docker.io/sealerio/kubernetes:v1.22.15"), text),
    hosts: fc.oneof(fc.array(hostGroup, { minLength: 1, maxLength: 2 }), anyValue),
    ssh: maybe(fc.record({ user: maybe(text), passwd: maybe(password), port: maybe(fc.oneof(fc.integer(), text)) }, { requiredKeys: [] })),
    env: maybe(fc.array(text, { maxLength: 3 })),
    registry: maybe(fc.record({ localRegistry: maybe(registry) }, { requiredKeys: [] })),
    hostAliases: maybe(fc.array(fc.record({ ip: ipLike, hostnames: fc.array(text, { maxLength: 2 }) }), { maxLength: 2 })),
    dataRoot: maybe(text),
  },
  { requiredKeys: ["image", "hosts"] },
);

const name = fc.oneof({ weight: 4, arbitrary: fc.constant("c1") }, { weight: 1, arbitrary: text });
const sealantDoc = fc.record({ apiVersion: fc.constant("sealant.io/v1"), kind: fc.constant("Cluster"), metadata: fc.record({ name }), spec: sealantSpec });
const sealerDoc = fc.record({ apiVersion: fc.constant("sealer.io/v2"), kind: fc.constant("Cluster"), metadata: fc.record({ name }), spec: sealerSpec });

/** Every secret value drawn for a document (they carry SECRET_MARK). */
function secretsIn(value: unknown): string[] {
  if (typeof value === "string") return value.startsWith(SECRET_MARK) ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(secretsIn);
  if (value !== null && typeof value === "object") return Object.values(value).flatMap(secretsIn);
  return [];
}

/** Lines of YAML-ish tokens: anchors, aliases, tags, merge keys, flow and block syntax, directives. */
const yamlToken = fc.oneof(
  fc.constantFrom(
    "apiVersion: sealant.io/v1",
    "apiVersion: sealer.io/v2",
    "kind: Cluster",
    "kind: Config",
    "kind: Plugin",
    "metadata: {name: c1}",
    "spec:",
    "  image: example/app:1",
    "  hosts:",
    "    - ips: [10.0.0.2]",
    "      roles: [master]",
    "  registry: {domain: sea.hub}",
    "  env: [A=1]",
    "---",
    "...",
    "%YAML 1.2",
    "a: &x [1, 2]",
    "b: *x",
    "<<: *x",
    "<<: {a: 1}",
    "? complex",
    ": value",
    "!!binary aGk=",
    "!!str 1",
    "!custom x",
    "|",
    ">-",
    "- [",
    "{a: }",
    "'unterminated",
    '"\\u0000"',
    "\t- tab",
    "x: 1e999",
    "x: 0o17",
    "x: .nan",
    "x: ~",
  ),
  fc.string({ maxLength: 12 }),
);
const yamlish = fc
  .array(fc.tuple(fc.constantFrom("", "  ", "    ", "- "), yamlToken), { maxLength: 14 })
  .map((lines) => lines.map(([i, t]) => `${i}${t}`).join("\n"));

const VALID = `apiVersion: sealant.io/v1
kind: Cluster
metadata: {name: c1}
spec:
  image: example/app:1
  hosts:
    - {ips: [10.0.0.2, 10.0.0.3], roles: [master], labels: {tier: app}, taints: ["k=v:NoSchedule"]}
  ssh: {user: root, password: ${SECRET_MARK}ssh}
  env: {A: "1", B: two}
  registry: {domain: sea.hub, port: 5000, username: admin, password: ${SECRET_MARK}reg}
  hostAliases: [{ip: 10.0.0.9, hostnames: [db]}]
  dataRoot: /var/lib/sealant/c1/
---
apiVersion: sealer.io/v1
kind: Plugin
metadata: {name: p1}
spec: {type: SHELL, action: PostInstall, data: "echo hi"}
`;

/** A valid Clusterfile with a few random edits (inserted tokens, deleted spans). */
const mutated = fc
  .array(fc.tuple(fc.nat({ max: VALID.length }), fc.nat({ max: 8 }), fc.oneof(yamlToken, nasty, fc.constant(""))), { minLength: 1, maxLength: 4 })
  .map((edits) => edits.reduce((t, [at, drop, insert]) => `${t.slice(0, at)}${insert}${t.slice(at + drop)}`, VALID));

/** A valid spec's fields that the landing property edits. */
interface BaseSpec {
  image: string;
  hosts: { ips: string[]; roles: string[]; labels?: Record<string, string>; taints?: string[] }[];
  registry: { domain: string; subjectAltNames?: string[]; username?: string };
  hostAliases: { ip: string; hostnames: string[] }[];
  ssh: { user: string };
  dataRoot?: string;
  env?: Record<string, string>;
  plugins?: unknown[];
  configs?: unknown[];
}

/** Where a value lands on hosts, as a path in a sealant Clusterfile's spec, and how to put one there. */
const LANDING: readonly { path: string; set: (spec: BaseSpec, v: string) => void }[] = [
  { path: "spec.registry.domain", set: (s, v) => (s.registry.domain = v) },
  { path: "spec.registry.subjectAltNames[0]", set: (s, v) => (s.registry.subjectAltNames = [v]) },
  { path: "spec.registry.username", set: (s, v) => (s.registry.username = v) },
  { path: "spec.hostAliases[0].hostnames[0]", set: (s, v) => (s.hostAliases[0]!.hostnames[0] = v) },
  { path: "spec.dataRoot", set: (s, v) => (s.dataRoot = `/var/lib/${v}`) },
  { path: "spec.hosts[0].labels", set: (s, v) => (s.hosts[0]!.labels = { tier: v }) },
  { path: "spec.hosts[0].taints[0]", set: (s, v) => (s.hosts[0]!.taints = [`k=${v}:NoSchedule`]) },
  { path: "spec.hosts[0].roles[1]", set: (s, v) => s.hosts[0]!.roles.push(v) },
  { path: "spec.env", set: (s, v) => (s.env = { [v]: "1" }) },
  { path: "spec.ssh.user", set: (s, v) => (s.ssh.user = v) },
  { path: "spec.plugins[0].name", set: (s, v) => (s.plugins = [{ name: v, action: "post-install", data: "true" }]) },
  { path: "spec.configs[0].path", set: (s, v) => (s.configs = [{ name: "c", path: `etc/${v}`, data: "x" }]) },
];
const controlChar = fc
  .oneof(fc.integer({ min: 0, max: 0x1f }), fc.integer({ min: 0x7f, max: 0x9f }), fc.constantFrom(0x2028, 0x2029))
  .map((c) => String.fromCharCode(c));

describe("the Clusterfile reader, on arbitrary input (fast-check)", () => {
  it("GIVEN a valid Clusterfile whose one landing value holds a control character WHEN read THEN it is refused at that field, the character escaped", () => {
    fc.assert(
      fc.property(fc.constantFrom(...LANDING), fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/), controlChar, fc.boolean(), (field, word, bad, asJson) => {
        const spec: BaseSpec = {
          image: "example/app:1",
          hosts: [{ ips: ["10.0.0.2"], roles: ["master"] }],
          registry: { domain: "sea.hub" },
          hostAliases: [{ ip: "10.0.0.9", hostnames: ["db"] }],
          ssh: { user: "root" },
        };
        field.set(spec, `${word}${bad}${word}`);
        const doc = { apiVersion: "sealant.io/v1", kind: "Cluster", metadata: { name: "c1" }, spec };
        const r = read(asJson ? JSON.stringify(doc) : dumpYaml(doc));
        expect(r).toBeInstanceOf(ClusterSpecError);
        checkProblems(r as ClusterSpecError);
        expect((r as ClusterSpecError).problems.map((p) => p.path).some((p) => p.startsWith(field.path))).toBe(true);
      }),
      PROPERTY,
    );
  });

  it("GIVEN aliases that expand a billion times WHEN read THEN one ClusterSpecError at once, not a hang or another error", () => {
    const levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++) levels.push(`a${i}: &a${i} [${Array.from({ length: 9 }, () => `*a${i - 1}`).join(", ")}]`);
    const r = read(`${VALID.split("---")[0]}  runtime:\n${levels.map((l) => `    ${l}`).join("\n")}\n`);
    expect(r).toBeInstanceOf(ClusterSpecError);
    expect((r as ClusterSpecError).message).toMatch(/aliases .* expand to more than/);
  });

  it("GIVEN a valid Clusterfile THEN it reads (the generators' baseline)", () => {
    const spec = read(VALID);
    expect(spec).not.toBeInstanceOf(ClusterSpecError);
    checkSpec(spec as ClusterSpec);
  });

  it("GIVEN arbitrary text, binary included WHEN read THEN a spec or a ClusterSpecError of one-line problems, never another error", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: "binary", maxLength: 200 }), yamlish), (t) => {
        const r = read(t);
        if (r instanceof ClusterSpecError) checkProblems(r);
        else checkSpec(r);
      }),
      PROPERTY,
    );
  });

  it("GIVEN a valid Clusterfile with random edits WHEN read THEN a spec or one-line problems, and no password in them", () => {
    fc.assert(
      fc.property(mutated, (t) => {
        const r = read(t);
        // A password the edits left in place (an edit may also turn it into a key, which is no secret).
        const secrets = [`${SECRET_MARK}ssh`, `${SECRET_MARK}reg`].filter((s) => t.includes(`password: ${s}`));
        if (r instanceof ClusterSpecError) checkProblems(r, secrets);
        else checkSpec(r);
      }),
      PROPERTY,
    );
  });

  it("GIVEN structured sealant and sealer documents with hostile values WHEN read THEN hostile values are refused by field, secrets unshown, and nothing accepted lands on a host with a control character", () => {
    fc.assert(
      fc.property(fc.oneof(sealantDoc, sealerDoc), fc.boolean(), (doc, asJson) => {
        // JSON is YAML too; both spellings must read the same way.
        const t = asJson ? JSON.stringify(doc) : dumpYaml(doc);
        const r = read(t);
        if (r instanceof ClusterSpecError) checkProblems(r, secretsIn(doc));
        else checkSpec(r);
      }),
      PROPERTY,
    );
  });

  it("GIVEN any JavaScript value as the Cluster resource's inputs WHEN validated THEN it returns a spec or problems, never throws", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          sealantSpec.map((s) => ({ name: "c1", ...s })),
        ),
        (input) => {
          const r = validateClusterSpec(input);
          if (r.spec !== undefined) checkSpec(r.spec);
          else for (const p of r.problems) expect(`${p.path} ${p.message}`).not.toMatch(/[\n\r\u2028\u2029]/);
        },
      ),
      PROPERTY,
    );
  });
});

/** YAML with every string double-quoted (escapes for control characters), as a careful user would write it. */
function dumpYaml(value: unknown, indent = ""): string {
  if (value === undefined || value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : ".nan";
  if (typeof value === "boolean") return String(value);
  const entries = Array.isArray(value) ? value.map((v) => ["-", v] as const) : Object.entries(value).map(([k, v]) => [`${JSON.stringify(k)}:`, v] as const);
  const present = entries.filter(([, v]) => v !== undefined);
  if (present.length === 0) return Array.isArray(value) ? "[]" : "{}";
  return `\n${present.map(([k, v]) => `${indent}${k} ${dumpYaml(v, `${indent}  `)}`).join("\n")}`;
}
