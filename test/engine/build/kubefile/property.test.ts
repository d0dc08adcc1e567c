import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  expand,
  KUBEFILE_INSTRUCTIONS,
  KubefileSyntaxError,
  parseKubefile,
  parseKubefileOrThrow,
  SubstitutionError,
} from "../../../../src/engine/build/kubefile";

/**
 * Property-based tests of the Kubefile parser (fast-check): a fixed seed so a failure replays,
 * a run cap and a time limit so CI stays bounded. The parser has no printer, so instead of
 * print-and-reparse the model-based property builds text from known values and checks that the
 * parse gives them back.
 */

const RUNS = { seed: 20261205, numRuns: 400, interruptAfterTimeLimit: 4000 };

const INSTRUCTIONS = [...KUBEFILE_INSTRUCTIONS];

/** Characters that mean something to the lexer, the word splitter or the expander. */
const SPECIAL = fc.constantFrom(
  "$",
  "{",
  "}",
  ":",
  "-",
  "+",
  "?",
  "=",
  '"',
  "'",
  "\\",
  "`",
  "[",
  "]",
  ",",
  " ",
  "\t",
  "\n",
  "\r",
  "#",
  "%",
  "/",
  "*",
  "|",
  "<",
  ">",
  "~",
  "^",
  "\u0000",
  "\uFEFF",
);
const WORDISH = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 12 }),
  fc.string({ unit: fc.oneof(SPECIAL, fc.constantFrom("a", "B", "1", "_", "x")), maxLength: 16 }),
  fc.constantFrom(
    "${A:-${B}}",
    "$ARCH",
    "${ARCH}",
    "--chown=1",
    "--checksum=sha256:" + "a".repeat(64),
    "local://x",
    "http://127.0.0.1/%zz",
    '["a", "b"]',
    "[",
    "1.22 - 1.24",
    "A=$A$A",
    "1BAD=x",
    "a-b=1",
    "not-a-range",
  ),
);
const LINE = fc
  .tuple(fc.constantFrom(...INSTRUCTIONS, "from", "COPPY", "#", "# escape=`", ""), fc.array(WORDISH, { maxLength: 6 }))
  .map(([ins, words]) => [ins, ...words].join(" "));
const KUBEFILE_LIKE = fc.array(LINE, { maxLength: 12 }).map((lines) => lines.join("\n"));

/** parse, and check the one contract every outcome must keep. */
function parsesWithinContract(text: string, buildArgs: Record<string, string> = {}): void {
  const lines = text.split("\n").length;
  const r = parseKubefile(text, { file: "K", arch: "amd64", buildArgs });
  if (r.ok) return;
  expect(r.errors.length).toBeGreaterThan(0);
  for (const e of r.errors) {
    expect(e.file).toBe("K");
    expect(Number.isInteger(e.line) && e.line >= 1 && e.line <= lines + 1).toBe(true);
    expect(e.message.length).toBeGreaterThan(0);
    expect(e.message.length).toBeLessThan(4000);
  }
}

describe("the Kubefile parser, for any input", () => {
  it("returns a result or errors with a line for arbitrary unicode and control characters, never throwing", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 400 }), (text) => parsesWithinContract(text)),
      RUNS,
    );
  });

  it("does the same for text shaped like Kubefiles (instructions, flags, quotes, substitutions, JSON)", () => {
    fc.assert(
      fc.property(KUBEFILE_LIKE, fc.dictionary(fc.constantFrom("A", "B", "ARCH", "1X"), fc.string({ maxLength: 8 })), (text, args) =>
        parsesWithinContract(`FROM scratch\n${text}`, args),
      ),
      RUNS,
    );
  });

  it("throws nothing but KubefileSyntaxError from parseKubefileOrThrow", () => {
    fc.assert(
      fc.property(KUBEFILE_LIKE, (text) => {
        try {
          parseKubefileOrThrow(text);
        } catch (e) {
          expect(e).toBeInstanceOf(KubefileSyntaxError);
          expect((e as Error).message).toMatch(/^Kubefile is invalid/);
        }
      }),
      RUNS,
    );
  });

  it("accepts only what the builder and the hosts can use: POSIX variable names, decodable URLs, ranges for KUBEVERSION", () => {
    fc.assert(
      fc.property(KUBEFILE_LIKE, (text) => {
        const r = parseKubefile(`FROM scratch\n${text}`, { arch: "amd64" });
        if (!r.ok) return;
        for (const name of [...Object.keys(r.kubefile.env), ...Object.keys(r.kubefile.args)]) expect(name).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
        for (const ins of r.kubefile.instructions) {
          const urls =
            ins.kind === "ADD"
              ? ins.sources.filter((s) => /^https?:\/\//i.test(s))
              : ins.kind === "APP" || ins.kind === "CNI" || ins.kind === "CSI"
                ? ins.sources.flatMap((s) => (s.type === "remote" ? [s.url] : []))
                : [];
          for (const url of urls) expect(() => decodeURIComponent(new URL(url).pathname)).not.toThrow();
          if (ins.kind === "KUBEVERSION") expect(ins.version).toMatch(/\d|\*|x/i);
        }
      }),
      RUNS,
    );
  });

  it("parses long lines and deep nesting quickly", () => {
    fc.assert(
      fc.property(fc.constantFrom(...INSTRUCTIONS), WORDISH, fc.integer({ min: 10_000, max: 200_000 }), (ins, word, n) => {
        const started = Date.now();
        parsesWithinContract(`FROM scratch\n${ins} ${word.repeat(Math.ceil(n / Math.max(1, word.length)))}\n`);
        expect(Date.now() - started).toBeLessThan(10_000); // a hang, not a speed, is what this catches
      }),
      { ...RUNS, numRuns: 40 },
    );
  });
});

describe("substitution", () => {
  it("expands any word or fails with a SubstitutionError", () => {
    const vars: Record<string, string> = { A: "a", B: "", C: "$A" };
    fc.assert(
      fc.property(fc.string({ unit: fc.oneof(SPECIAL, fc.constantFrom("A", "B", "C", "x")), maxLength: 40 }), fc.boolean(), (word, quotes) => {
        try {
          expect(typeof expand(word, (n) => vars[n], { quotes })).toBe("string");
        } catch (e) {
          expect(e).toBeInstanceOf(SubstitutionError);
        }
      }),
      RUNS,
    );
  });
});

describe("a Kubefile written from known values parses back to them", () => {
  const NAME = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/);
  // Any printable text, including quotes, $, backslashes and blanks: written double-quoted with
  // ", $ and \ escaped, it must come back unchanged.
  const VALUE = fc.string({
    unit: fc.oneof(fc.constantFrom('"', "$", "\\", "'", " ", "=", "{", "}", "#", "`"), fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 })),
    maxLength: 20,
  });
  const quote = (v: string): string => `"${v.replace(/["$\\]/g, (c) => `\\${c}`)}"`;

  it("keeps ENV and LABEL values and ARG defaults exactly", () => {
    fc.assert(
      fc.property(
        fc.dictionary(NAME, VALUE, { minKeys: 1, maxKeys: 5 }),
        fc.dictionary(
          fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !/[\s"'\\$=]/.test(k)),
          VALUE,
          { maxKeys: 3 },
        ),
        (env, labels) => {
          const lines = ["FROM scratch"];
          for (const [k, v] of Object.entries(env)) lines.push(`ARG ${k}=${quote(v)}`, `ENV ${k}=${quote(v)}`);
          if (Object.keys(labels).length > 0)
            lines.push(
              `LABEL ${Object.entries(labels)
                .map(([k, v]) => `${k}=${quote(v)}`)
                .join(" ")}`,
            );
          const k = parseKubefileOrThrow(lines.join("\n"));
          expect(k.env).toEqual(env);
          for (const [name, value] of Object.entries(labels)) expect(k.labels[name]).toBe(value);
          for (const [name, value] of Object.entries(env)) {
            expect(k.instructions.find((i) => i.kind === "ARG" && i.args[0]?.name === name)).toMatchObject({ args: [{ name, default: value }] });
          }
        },
      ),
      RUNS,
    );
  });
});
