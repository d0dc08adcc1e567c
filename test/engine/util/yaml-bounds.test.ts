import { loadAll } from "js-yaml";
import { describe, expect, it } from "vitest";
import { checkExpandedSize } from "../../../src/engine/util/yaml-bounds";

/** `levels` of ten aliases each: 10^levels leaves from a few hundred bytes of text. */
function laughs(levels: number): string {
  const lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i <= levels; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(", ")}]`);
  return lines.join("\n") + "\n";
}

describe("checkExpandedSize", () => {
  it("GIVEN a billion-laughs document (10^9 leaves, 700 bytes) THEN it is refused at once, naming the file", () => {
    const started = Date.now();
    const [doc] = loadAll(laughs(9));
    expect(() => checkExpandedSize(doc, "Clusterfile")).toThrow(/^Clusterfile: its aliases \(\*name\) expand to more than 1,000,000 values/);
    expect(Date.now() - started).toBeLessThan(5_000); // linear in the text, not the expansion (a generous bound, not a benchmark)
  });

  it("GIVEN ordinary anchors (a shared ssh block, merge keys) THEN it passes", () => {
    const [doc] = loadAll("base: &b {user: root, port: 22}\nhosts:\n  - {<<: *b, ip: 10.0.0.1}\n  - {<<: *b, ip: 10.0.0.2}\n" + laughs(3));
    expect(() => checkExpandedSize(doc, "Clusterfile")).not.toThrow();
  });

  it("GIVEN a value one node over the limit THEN it is refused; at the limit THEN it passes", () => {
    const [doc] = loadAll(laughs(1)); // the root, a0 (1 + 10 leaves), a1 (1 + 10 × a0's 11): 123 nodes
    expect(() => checkExpandedSize(doc, "f", 122)).toThrow(/more than 122 values/);
    expect(() => checkExpandedSize(doc, "f", 123)).not.toThrow();
  });
});
