import { describe, expect, it } from "vitest";
import { formatReference, parseReference } from "../../../src/engine/image/reference";

describe("parseReference", () => {
  it.each([
    ["alpine", "docker.io/library/alpine:latest"],
    ["127.0.0.1:5000/a/b:1", "127.0.0.1:5000/a/b:1"],
    ["localhost/x", "localhost/x:latest"],
    [`r.example:65535/x@sha256:${"a".repeat(64)}`, `r.example:65535/x@sha256:${"a".repeat(64)}`],
  ])("GIVEN %s THEN it reads as %s", (input, expected) => {
    expect(formatReference(parseReference(input))).toBe(expected);
  });

  it.each([
    ["", /it is empty/],
    ["127.0.0.1:99999/x:1", /port 99999 is not 1-65535/],
    ["127.0.0.1:0/x:1", /port 0 is not 1-65535/],
    ["UPPER::case", /invalid image reference/],
    ["a@sha256:xyz", /is not a sha256 digest/],
    ["r.example/A/b", /repository component "A"/],
    ["x:bad tag", /tag "bad tag"/],
    [`r.example/${"a".repeat(300)}`, /300 characters \(at most 255\)/],
    ["r.example/a/../b", /repository component "\.\."/],
    ["evil\nhost/x", /invalid image reference/],
  ])("GIVEN %j THEN it is refused before any request: %s", (input, message) => {
    expect(() => parseReference(input)).toThrow(message);
  });
});
