import { describe, expect, it } from "vitest";
import { splitLogicalLines } from "../../../../src/engine/build/kubefile/lexer";
import { extractFlags, parseJsonArray, parseWords, splitCommand } from "../../../../src/engine/build/kubefile/words";

const texts = (src: string) => splitLogicalLines(src, "Kubefile").lines.map((l) => [l.line, l.text]);

describe("logical lines", () => {
  it("skips blank lines and full-line comments, keeps line numbers", () => {
    // GIVEN a Kubefile with comments, indented comments and blank lines
    const src = "# a comment\n\nFROM scratch\n   # indented comment\n\t\nCOPY a b\n";
    // WHEN it is split into logical lines
    // THEN only the instructions remain, each with its 1-based physical line
    expect(texts(src)).toEqual([
      [3, "FROM scratch"],
      [6, "COPY a b"],
    ]);
  });

  it("treats # after the start of a line as text, not a comment", () => {
    // GIVEN an instruction with a # in the middle
    // WHEN split  THEN the # and what follows stay part of the instruction (Dockerfile rule)
    expect(texts("RUN echo hi # not a comment")).toEqual([[1, "RUN echo hi # not a comment"]]);
  });

  it("joins continuation lines without adding spaces and reports first and last line", () => {
    // GIVEN an instruction continued over three lines, with trailing blanks after the backslash
    const src = "FROM scratch\nRUN a \\  \n  && b \\\n  && c\nCOPY x y";
    // WHEN split
    const r = splitLogicalLines(src, "Kubefile");
    // THEN the pieces are concatenated as they are, and the line range is 2..4
    expect(r.lines[1]).toEqual({ text: "RUN a   && b   && c", line: 2, endLine: 4 });
    expect(r.lines[2]).toEqual({ text: "COPY x y", line: 5, endLine: 5 });
  });

  it("skips comment lines inside a continuation silently and blank ones with a warning", () => {
    // GIVEN a continued RUN with a comment line and an empty line in the middle
    const src = "FROM scratch\nRUN a \\\n  # explain b\n\n  b\nCOPY x y\n";
    // WHEN split
    const r = splitLogicalLines(src, "Kubefile");
    // THEN the RUN ends at line 5 and the empty continuation line is warned about (Docker does)
    expect(r.lines.map((l) => [l.line, l.text])).toEqual([
      [1, "FROM scratch"],
      [2, "RUN a   b"],
      [6, "COPY x y"],
    ]);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0].line).toBe(2);
    expect(r.warnings[0].message).toMatch(/empty continuation line/);
  });

  it("handles CRLF line endings and a UTF-8 BOM", () => {
    // GIVEN a file written on Windows, with a BOM
    const src = "\uFEFFFROM scratch\r\nCOPY a \\\r\n  b\r\n";
    // WHEN split  THEN the BOM and carriage returns are gone and continuation still works
    expect(texts(src)).toEqual([
      [1, "FROM scratch"],
      [2, "COPY a   b"],
    ]);
  });

  it("honours the escape parser directive at the top of the file", () => {
    // GIVEN `# escape=`` and an instruction continued with a backtick
    const src = "# escape=`\nFROM scratch\nCOPY C:\\dir `\n  dest";
    // WHEN split
    const r = splitLogicalLines(src, "Kubefile");
    // THEN the backtick continues the line and backslashes are plain characters
    expect(r.escape).toBe("`");
    expect(r.lines.map((l) => l.text)).toEqual(["FROM scratch", "COPY C:\\dir   dest"]);
  });

  it("ignores an escape directive that is not at the very top", () => {
    // GIVEN an escape directive after a blank line (directives must come first)
    const r = splitLogicalLines("\n# escape=`\nFROM scratch", "Kubefile");
    // THEN it is only a comment
    expect(r.escape).toBe("\\");
    expect(r.errors).toEqual([]);
  });

  it("rejects a repeated or invalid escape directive", () => {
    // GIVEN two directives, and an invalid escape character
    const twice = splitLogicalLines("# escape=`\n# escape=\\\nFROM scratch", "Kubefile");
    const invalid = splitLogicalLines("# escape=x\nFROM scratch", "Kubefile");
    // THEN each is an error on its line
    expect(twice.errors).toEqual([{ file: "Kubefile", line: 2, message: "only one escape parser directive can be used" }]);
    expect(invalid.errors[0].line).toBe(1);
    expect(invalid.errors[0].message).toMatch(/invalid escape parser directive "x"/);
  });

  it("ends an unterminated continuation at the end of the file", () => {
    // GIVEN a last line that ends with a backslash
    // THEN the instruction is kept as it is
    expect(texts("FROM scratch\nCOPY a b \\")).toEqual([
      [1, "FROM scratch"],
      [2, "COPY a b "],
    ]);
  });
});

describe("words", () => {
  it("splits the instruction word, builder flags and the rest", () => {
    // GIVEN a COPY with flags, one of them quoted
    const s = splitCommand('  copy --chown=1000:1000 --chmod="0755" src/ dest/  ');
    // THEN flags have their quotes removed and the rest is trimmed
    expect(s).toEqual({ word: "copy", flags: ["--chown=1000:1000", "--chmod=0755"], rest: "src/ dest/" });
  });

  it("stops flags at a lone --", () => {
    expect(extractFlags("--network=host -- --not-a-flag")).toEqual({ flags: ["--network=host"], rest: " --not-a-flag" });
  });

  it("parseWords keeps quotes inside words and groups quoted blanks", () => {
    // GIVEN ENV-style words with double and single quotes and an escaped blank
    // THEN quotes stay (expansion removes them later) and quoted blanks do not split
    expect(parseWords(`A=1 B="two words" C='x y' D=a\\ b`, "\\")).toEqual(["A=1", 'B="two words"', "C='x y'", "D=a\\ b"]);
  });

  it("parseJsonArray distinguishes arrays, non-JSON, invalid JSON and non-string arrays", () => {
    expect(parseJsonArray(' ["a", "b c"]')).toEqual({ kind: "array", values: ["a", "b c"] });
    expect(parseJsonArray("echo hi")).toEqual({ kind: "not-json" });
    expect(parseJsonArray("[\"a\", 'b']").kind).toBe("invalid");
    expect(parseJsonArray("[1, 2]")).toEqual({ kind: "not-strings" });
  });
});
