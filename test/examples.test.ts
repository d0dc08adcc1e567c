import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { load } from "js-yaml";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * What a user reads is TypeScript that compiles: every Pulumi project in the repo (the root's,
 * which the demo runs, and each example's) is a TypeScript program, each example type-checks
 * with its own tsconfig.json, and every ```ts snippet of README.md type-checks as a program of
 * its own. `sealant` resolves to the package's source (src/index.ts), so the check is against the
 * types as they are now, not a possibly stale dist/; test/e2e/pulumi/package.test.ts checks the types
 * of the packed package itself, in a program that installed it.
 */
const ROOT = resolve(__dirname, "..");
const EXAMPLES = join(ROOT, "examples");
const README = join(ROOT, "README.md");
/** The example whose tsconfig.json stands for a user's program when README snippets are checked. */
const SNIPPET_TSCONFIG = join(EXAMPLES, "pulumi-kubernetes/tsconfig.json");

interface PulumiYaml {
  runtime?: string | { name?: string; options?: { typescript?: boolean } };
  main?: string;
}

/** Directories holding a Pulumi project: the repo root and every examples/* with a Pulumi.yaml. */
function pulumiProjects(): string[] {
  const examples = readdirSync(EXAMPLES, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(EXAMPLES, d.name, "Pulumi.yaml")))
    .map((d) => join(EXAMPLES, d.name));
  return [ROOT, ...examples];
}

/** The programs under examples/ (a Pulumi.yaml and its own tsconfig.json). */
const examplePrograms = pulumiProjects()
  .filter((d) => d !== ROOT)
  .map((d) => relative(ROOT, d));

function parseTsconfig(file: string): ts.ParsedCommandLine {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    file,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(`${relative(ROOT, file)}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
      },
    },
  );
  if (!parsed) throw new Error(`${relative(ROOT, file)}: not a tsconfig`);
  if (parsed.errors.length) throw new Error(parsed.errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")).join("\n"));
  return parsed;
}

/** A ```ts block of README.md: its text and the README line its first line of code is on. */
interface Snippet {
  line: number;
  text: string;
}

function readmeSnippets(): Snippet[] {
  const lines = readFileSync(README, "utf8").split("\n");
  const out: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i]!)) continue;
    const end = lines.findIndex((l, j) => j > i && /^```\s*$/.test(l));
    if (end < 0) throw new Error(`README.md:${i + 1}: a \`\`\`ts block that never ends`);
    out.push({ line: i + 2, text: `${lines.slice(i + 1, end).join("\n")}\n` });
    i = end;
  }
  return out;
}

const parsedFiles = new Map<string, ts.SourceFile>();

/**
 * Type-checks `roots` with `options` (as `tsc --noEmit` would), `sealant` resolving to
 * src/index.ts; `virtual` holds files that exist only in memory. Returns the diagnostics of the
 * root files, one line each, with `where` naming a diagnostic's place.
 */
function typeCheck(
  roots: string[],
  options: ts.CompilerOptions,
  virtual = new Map<string, string>(),
  where = (file: string, line: number) => `${relative(ROOT, file)}:${line}`,
): string[] {
  const opts: ts.CompilerOptions = {
    ...options,
    noEmit: true,
    paths: { sealant: [join(ROOT, "src/index.ts")], "sealant/plugin": [join(ROOT, "src/engine/cluster/plugins/api.ts")] },
  };
  const host = ts.createCompilerHost(opts, true);
  const real = { fileExists: host.fileExists, readFile: host.readFile, getSourceFile: host.getSourceFile };
  host.fileExists = (f) => virtual.has(f) || real.fileExists.call(host, f);
  host.readFile = (f) => virtual.get(f) ?? real.readFile.call(host, f);
  host.getSourceFile = (f, language, ...rest) => {
    const text = virtual.get(f);
    if (text !== undefined) return ts.createSourceFile(f, text, language, true);
    // Every program here reads the same ~2,700 declaration files (@pulumi/alicloud's): parsed once.
    const key = `${f}\0${JSON.stringify(language)}`;
    let file = parsedFiles.get(key);
    if (!file) {
      file = real.getSourceFile.call(host, f, language, ...rest);
      if (file) parsedFiles.set(key, file);
    }
    return file;
  };
  const program = ts.createProgram({ rootNames: roots, options: opts, host });
  const mine = new Set(roots);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file === undefined || mine.has(d.file.fileName))
    .map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, "\n  ");
      if (!d.file || d.start === undefined) return `TS${d.code}: ${text}`;
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      return `${where(d.file.fileName, line + 1)}:${character + 1}: TS${d.code}: ${text}`;
    });
}

describe("TypeScript everywhere a user looks", () => {
  it("every Pulumi project (the root's and each example's) is a TypeScript program with a tsconfig.json beside it", () => {
    const projects = pulumiProjects();
    expect(examplePrograms.length).toBeGreaterThanOrEqual(2);
    for (const dir of projects) {
      const name = relative(ROOT, join(dir, "Pulumi.yaml"));
      const project = load(readFileSync(join(dir, "Pulumi.yaml"), "utf8")) as PulumiYaml;
      const runtime = typeof project.runtime === "string" ? { name: project.runtime } : (project.runtime ?? {});
      expect(runtime.name, name).toBe("nodejs");
      // Pulumi's nodejs runtime compiles TypeScript unless told `typescript: false`.
      expect(runtime.options?.typescript, `${name}: runtime.options.typescript`).not.toBe(false);
      expect(project.main, `${name}: main`).toMatch(/\.ts$/);
      const main = join(dir, project.main!);
      expect(existsSync(main), `${name}: main ${project.main} exists`).toBe(true);
      // Pulumi (ts-node) reads the tsconfig.json of the program's directory.
      expect(existsSync(join(dirname(main), "tsconfig.json")), `${relative(ROOT, dirname(main))}/tsconfig.json`).toBe(true);
    }
    // No JavaScript program left behind in an example.
    for (const dir of projects.filter((d) => d !== ROOT)) {
      expect(
        readdirSync(dir).filter((f) => /\.(c|m)?js$/.test(f)),
        relative(ROOT, dir),
      ).toEqual([]);
    }
  });

  it.each(examplePrograms)("%s type-checks with its own tsconfig.json", (example) => {
    const parsed = parseTsconfig(join(ROOT, example, "tsconfig.json"));
    expect(parsed.fileNames.map((f) => basename(f))).toContain("index.ts");
    expect(typeCheck(parsed.fileNames, parsed.options)).toEqual([]);
  });

  it("every ```ts snippet of README.md type-checks as a program of its own, against sealant's types", () => {
    const snippets = readmeSnippets();
    expect(snippets.length).toBeGreaterThanOrEqual(2);
    // Each snippet is a module in the repo root (so @pulumi/pulumi and @types/node resolve as in a user's program).
    const virtual = new Map(snippets.map((s) => [join(ROOT, `README.md.${s.line}.snippet.ts`), s.text] as const));
    const lineOf = new Map(snippets.map((s) => [join(ROOT, `README.md.${s.line}.snippet.ts`), s.line] as const));
    const { options } = parseTsconfig(SNIPPET_TSCONFIG);
    const errors = typeCheck([...virtual.keys()], options, virtual, (file, line) => `README.md:${lineOf.get(file)! + line - 1}`);
    expect(errors).toEqual([]);
    // The check is not vacuous: a misused argument in a snippet is reported.
    const wrong = join(ROOT, "README.md.wrong.snippet.ts");
    const misuse = 'import { Cluster } from "sealant";\nnew Cluster("c", { name: 7, image: "x", hosts: {} });\n';
    expect(typeCheck([wrong], options, new Map([[wrong, misuse]]))).toEqual([
      expect.stringMatching(/^README\.md\.wrong\.snippet\.ts:2:\d+: TS2322: Type 'number' is not assignable to type /),
    ]);
  });
});
