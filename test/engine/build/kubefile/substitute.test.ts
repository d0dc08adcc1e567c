import { describe, expect, it } from "vitest";
import { expand, SubstitutionError } from "../../../../src/engine/build/kubefile/substitute";

const vars: Record<string, string> = { NAME: "web", EMPTY: "", ARCH: "arm64" };
const lookup = (n: string) => vars[n];
const x = (w: string, quotes = true) => expand(w, lookup, { quotes });

describe("expand", () => {
  it("expands $VAR and ${VAR}, unset variables to empty", () => {
    // GIVEN variables NAME=web and no UNSET
    // WHEN words referencing them are expanded
    // THEN set ones are replaced and unset ones become ""
    expect(x("$NAME-${NAME}/$UNSET.${UNSET}x")).toBe("web-web/.x");
  });

  it("supports :- - :+ + modifiers with set, empty and unset variables", () => {
    expect(x("${NAME:-d}|${EMPTY:-d}|${UNSET:-d}")).toBe("web|d|d");
    expect(x("${NAME-d}|${EMPTY-d}|${UNSET-d}")).toBe("web||d");
    expect(x("${NAME:+alt}|${EMPTY:+alt}|${UNSET:+alt}")).toBe("alt||");
    expect(x("${NAME+alt}|${EMPTY+alt}|${UNSET+alt}")).toBe("alt|alt|");
  });

  it("expands inside a default word, recursively", () => {
    expect(x("${UNSET:-${NAME}-$ARCH}")).toBe("web-arm64");
  });

  it("fails ${VAR:?msg} when VAR is unset or empty", () => {
    expect(x("${NAME:?need it}")).toBe("web");
    expect(() => x("${UNSET:?need a name}")).toThrow(/UNSET: need a name/);
    expect(() => x("${EMPTY:?}")).toThrow(SubstitutionError);
  });

  it("treats escaped dollars and lone dollars literally", () => {
    // GIVEN \$ and $ not followed by a name
    // THEN they stay (the escape is removed); $5 is a (unset) variable named 5, as in Docker
    expect(x("\\$NAME costs $5 and $ alone, 100$")).toBe("$NAME costs  and $ alone, 100$");
  });

  it("removes quotes: single quotes are literal, double quotes expand", () => {
    expect(x(`'$NAME'`)).toBe("$NAME");
    expect(x(`"$NAME x"`)).toBe("web x");
    expect(x(`"a \\"q\\" \\$NAME \\n"`)).toBe('a "q" $NAME \\n');
    expect(x(`pre"mid"'post'`)).toBe("premidpost");
  });

  it("keeps quotes for JSON-form strings (quotes: false)", () => {
    expect(x(`"$NAME" 'x'`, false)).toBe(`"web" 'x'`);
  });

  it("reports syntax errors", () => {
    expect(() => x("${NAME")).toThrow(/missing '}'/);
    expect(() => x("${}")).toThrow(/bad substitution/);
    expect(() => x("${NAME/a/b}")).toThrow(/unsupported modifier/);
    expect(() => x(`"open`)).toThrow(/double-quote/);
    expect(() => x(`'open`)).toThrow(/single-quote/);
  });

  it("uses the given escape character", () => {
    // GIVEN the backtick escape (# escape=`)
    // THEN `$ is literal and backslashes are plain text
    expect(expand("C:\\dir\\`$NAME", lookup, { escape: "`" })).toBe("C:\\dir\\$NAME");
  });

  it("reports unset plain references, but not those in an unused default", () => {
    const seen: string[] = [];
    expand("$A ${B} ${NAME:-$C} ${UNSET:-$D}", lookup, { onUnset: (n) => seen.push(n) });
    expect(seen).toEqual(["A", "B", "D"]);
  });
});
