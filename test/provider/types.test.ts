import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import * as ts from "typescript";
import { beforeAll, describe, expect, it } from "vitest";

/*
 * The resources' and constructs' argument types, judged by the project's own TypeScript over
 * small programs (test/fixtures/types): ok/ holds what users write — outputs and
 * `cfg.requireSecret(...)` at every depth, precisely typed outputs, the Args interfaces equal to
 * the engine's schemas — and must compile; bad/ holds wrong programs, each wrong line marked
 * `// expect-error TSxxxx: <message text>` on the line above, and must fail exactly there, with
 * that error, and nowhere else.
 */
const ROOT = resolve(__dirname, "../..");
const FIXTURES = join(ROOT, "test/fixtures/types");
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");

interface Diagnostic {
  file: string;
  line: number;
  code: string;
  /** The message with its continuation lines, whitespace collapsed. */
  message: string;
}

interface Marker {
  file: string;
  /** The line the error is expected on (the marker's next line). */
  line: number;
  code: string;
  text: string;
}

const squash = (s: string) => s.replace(/\s+/g, " ").trim();

/** tsc's `--pretty false` output: `file(line,col): error TSnnnn: message`, continuation lines indented. */
function parseDiagnostics(output: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const line of output.split("\n")) {
    const m = /^(.+?)\((\d+),\d+\): error (TS\d+): (.*)$/.exec(line);
    if (m) out.push({ file: resolve(ROOT, m[1]!), line: Number(m[2]), code: m[3]!, message: squash(m[4]!) });
    else if (/^\s+\S/.test(line) && out.length > 0) out[out.length - 1]!.message = squash(`${out[out.length - 1]!.message} ${line}`);
  }
  return out;
}

function markersOf(file: string): Marker[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .flatMap((text, i) => {
      const m = /\/\/ expect-error (TS\d+): (.+)$/.exec(text);
      return m ? [{ file, line: i + 2, code: m[1]!, text: squash(m[2]!) }] : [];
    });
}

/** What is wrong with a bad/ file's diagnostics, in words: missed markers and unexpected errors. */
function mismatches(markers: Marker[], diagnostics: Diagnostic[]): string[] {
  const problems: string[] = [];
  for (const m of markers) {
    const at = diagnostics.filter((d) => d.file === m.file && d.line === m.line);
    if (!at.some((d) => d.code === m.code && d.message.includes(m.text))) {
      problems.push(`line ${m.line}: expected ${m.code}: ${m.text}; got ${at.length ? at.map((d) => `${d.code}: ${d.message}`).join(" | ") : "no error"}`);
    }
  }
  for (const d of diagnostics) {
    if (!markers.some((m) => m.file === d.file && m.line === d.line)) problems.push(`line ${d.line}: unexpected ${d.code}: ${d.message}`);
  }
  return problems;
}

const filesIn = (dir: string) =>
  readdirSync(join(FIXTURES, dir))
    .filter((f) => f.endsWith(".ts"))
    .map((f) => join(FIXTURES, dir, f));

describe("argument and output types (tsc over test/fixtures/types)", () => {
  let diagnostics: Diagnostic[];
  let output: string;

  beforeAll(async () => {
    // A failed compile exits non-zero: that is the expected case (bad/ fails), not an error here.
    const r = await promisify(execFile)(process.execPath, [TSC, "-p", join(FIXTURES, "tsconfig.json"), "--pretty", "false"], {
      cwd: ROOT,
      maxBuffer: 16 << 20,
    }).catch((err: { stdout?: string; stderr?: string }) => ({ stdout: err.stdout ?? "", stderr: err.stderr ?? "" }));
    output = `${r.stdout}${r.stderr}`;
    diagnostics = parseDiagnostics(output);
  }, 240_000);

  it("GIVEN programs with outputs and secrets at every depth of every resource and construct WHEN compiled THEN they compile", () => {
    const ok = filesIn("ok");
    expect(ok.map((f) => relative(FIXTURES, f)).sort()).toEqual(["ok/args-match-engine.ts", "ok/constructs.ts", "ok/resources.ts"]);
    expect(diagnostics.filter((d) => ok.includes(d.file)).map((d) => `${relative(ROOT, d.file)}:${d.line} ${d.code}: ${d.message}`)).toEqual([]);
    // Every diagnostic belongs to a fixture (no compile failure elsewhere, e.g. in src/).
    expect(diagnostics.filter((d) => !d.file.startsWith(FIXTURES))).toEqual([]);
    // Every error tsc printed was read.
    expect(diagnostics.length).toBe((output.match(/\): error TS\d+:/g) ?? []).length);
  });

  for (const name of ["resources.ts", "constructs.ts"]) {
    it(`GIVEN wrong programs (bad/${name}) WHEN compiled THEN each marked line fails with its error, and no other line`, () => {
      const file = join(FIXTURES, "bad", name);
      const markers = markersOf(file);
      expect(markers.length).toBeGreaterThanOrEqual(6);
      expect(
        mismatches(
          markers,
          diagnostics.filter((d) => d.file === file),
        ),
      ).toEqual([]);
    });
  }

  it("GIVEN the matcher WHEN an error is missing, different or unmarked THEN it says so (the bad/ checks can fail)", () => {
    const file = "/x.ts";
    const markers: Marker[] = [
      { file, line: 3, code: "TS2322", text: "Type 'number' is not assignable to type 'Input<string>'." },
      { file, line: 7, code: "TS2353", text: "'sshh' does not exist" },
    ];
    expect(mismatches(markers, [...markers.map((m) => ({ file, line: m.line, code: m.code, message: `x ${m.text} y` }))])).toEqual([]);
    const got = mismatches(markers, [
      { file, line: 3, code: "TS2345", message: "Type 'number' is not assignable to type 'Input<string>'." },
      { file, line: 9, code: "TS2322", message: "elsewhere" },
    ]);
    expect(got).toEqual([
      "line 3: expected TS2322: Type 'number' is not assignable to type 'Input<string>'.; got TS2345: Type 'number' is not assignable to type 'Input<string>'.",
      "line 7: expected TS2353: 'sshh' does not exist; got no error",
      "line 9: unexpected TS2322: elsewhere",
    ]);
    expect(parseDiagnostics("a.ts(2,5): error TS2322: Type 'A' is not assignable to type 'B'.\n  Types of property 'x' are incompatible.\n")).toEqual([
      { file: resolve(ROOT, "a.ts"), line: 2, code: "TS2322", message: "Type 'A' is not assignable to type 'B'. Types of property 'x' are incompatible." },
    ]);
  });

  it("GIVEN the project's tsconfigs THEN the build never compiles the fixtures and the typecheck takes ok/ but not bad/", () => {
    const filesOf = (config: string) => {
      const parsed = ts.getParsedCommandLineOfConfigFile(
        join(ROOT, config),
        {},
        {
          ...ts.sys,
          onUnRecoverableConfigFileDiagnostic: (d) => {
            throw new Error(String(d.messageText));
          },
        },
      );
      return parsed!.fileNames.map((f) => resolve(f));
    };
    const build = filesOf("tsconfig.json");
    const typecheck = filesOf("tsconfig.test.json");
    expect(build.filter((f) => f.startsWith(FIXTURES))).toEqual([]);
    expect(typecheck.filter((f) => f.startsWith(join(FIXTURES, "bad")))).toEqual([]);
    for (const f of filesIn("ok")) expect(typecheck).toContain(f);
  });
});
