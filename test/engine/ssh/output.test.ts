import { describe, expect, it } from "vitest";
import { MarkerLineFilter, TailBuffer, tailOf } from "../../../src/engine/ssh/output";
import { redact } from "../../../src/engine/ssh/redact";
import { shellQuote, wrapCommand } from "../../../src/engine/ssh/shell";

function filter(chunks: string[], limit?: number): { value: string | undefined; out: string } {
  const out: string[] = [];
  const f = new MarkerLineFilter("@pid ", (c) => out.push(c.toString()), limit);
  for (const c of chunks) f.push(Buffer.from(c));
  f.flush();
  return { value: f.value, out: out.join("") };
}

describe("marker line filter", () => {
  it("takes the marker line out wherever it starts a line in the head, also split across chunks", () => {
    expect(filter(["@pid 42\nrest\n"])).toEqual({ value: "42", out: "rest\n" });
    expect(filter(["@p", "id 4", "2\n", "more"])).toEqual({ value: "42", out: "more" });
    expect(filter(["bashrc noise\n@pid 7\nx"])).toEqual({ value: "7", out: "bashrc noise\nx" });
    expect(filter(["not @pid 7\n"])).toEqual({ value: undefined, out: "not @pid 7\n" });
    expect(filter(["no marker at all"])).toEqual({ value: undefined, out: "no marker at all" });
    expect(filter(["x".repeat(50), "@pid 1\n"], 40)).toEqual({ value: undefined, out: `${"x".repeat(50)}@pid 1\n` });
  });
});

describe("bounded output", () => {
  it("keeps the tail within the cap", () => {
    const t = new TailBuffer(5);
    for (const s of ["abc", "defg", "hi"]) t.push(Buffer.from(s));
    expect(t.toString()).toBe("efghi");
    expect(t.dropped).toBe(4);
  });

  it("tails the last non-empty lines, cut at the front", () => {
    expect(tailOf("a\n\nb\nc\n\n", 2)).toBe("b\nc");
    expect(tailOf("x".repeat(30), 20, 10)).toBe(`...${"x".repeat(10)}`);
  });
});

describe("redaction and quoting", () => {
  it("hides every secret, longest first", () => {
    expect(redact("pw=abc pwd=abcdef", ["abc", "abcdef", "", undefined])).toBe("pw=*** pwd=***");
  });

  it("quotes for sh and wraps env and sudo", () => {
    expect(shellQuote("plain-word_1.2")).toBe("plain-word_1.2");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(wrapCommand("ls")).toBe("ls");
    expect(wrapCommand("a; b", { sudo: "nopasswd" })).toBe("sudo -n -- sh -c 'a; b'");
    expect(wrapCommand("x", { env: { A: "1 2" }, sudo: "password" })).toMatch(/^sudo -k -S -p '' -- sh -c /);
    expect(wrapCommand("x", { env: { A: "1 2" }, sudo: "password" })).not.toContain("1 2");
    expect(() => wrapCommand("x", { env: { "A-B": "1" } })).toThrow(/invalid environment variable name/);
  });
});
