import { describe, expect, it } from "vitest";
import { kf, ok, only, warnings } from "./helpers";

describe("COPY words after the destination, as sealer reads them", () => {
  it("drops a trailing '# ...' with a warning: sealer takes the first two words (its docs write comments there)", () => {
    // GIVEN the line from sealer's docs (docs/design/global-config.md)
    const k = ok(kf("FROM scratch", "COPY dashobard.yaml.tmpl manifests/ # only support render template files in `manifests etc charts` dirs"));
    // THEN it copies the file into manifests/, as sealer does, and says what was dropped
    const copy = only(k, "COPY");
    expect([copy.sources, copy.dest]).toEqual([["dashobard.yaml.tmpl"], "manifests/"]);
    expect(warnings(k)).toEqual([
      'Kubefile:2: COPY: "# only support render template files in `manifests etc charts` dirs" is not a comment (a comment is a whole line): ignored, as sealer ignores words after the destination',
    ]);
  });

  it("keeps several sources into a directory, and a '#' that is the destination's own first letter is no comment", () => {
    const k = ok(kf("FROM scratch", "COPY a b dir/"));
    expect([only(k, "COPY").sources, only(k, "COPY").dest]).toEqual([["a", "b"], "dir/"]);
    expect(only(ok(kf("FROM scratch", "COPY a #b")), "COPY").dest).toBe("#b");
  });
});
