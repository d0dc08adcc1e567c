import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseKubefile, formatKubefileError } from "../../../../src/engine/build/kubefile";
import { ClusterSpecError, formatProblem, parseClusterfile, readClusterfile } from "../../../../src/engine/cluster/spec";

/*
 * sealer's real files (its docs, sealer.cool's docs, the applications repository, its test data),
 * each with what sealer's own code does with it: corpus.json records the verdict of sealer's
 * Clusterfile decoder (pkg/clusterfile/decoder.go at the recorded commit, run on the file) and of
 * its Kubefile parser (the parse and the instruction checks made before the build context is
 * read). See test/fixtures/sealer/README.md. sealant's readers must judge every file the same way.
 */

const DIR = join(__dirname, "../../../fixtures/sealer");

interface Entry {
  file: string;
  /** Where a real file came from; `made` for a case written to pin one rule of sealer's decoder. */
  source: { repo?: string; commit?: string; path?: string; block?: number | string; made?: string };
  /** accepted / rejected by sealer; a fragment has no Cluster document and is judged appended to base-cluster.yaml. */
  sealer: "accepted" | "rejected" | "fragment";
  sealerError?: string;
  /** The field sealer's error names (`spec.hosts`), or `yaml` for a file that is not YAML. */
  field?: string;
}

const corpus = JSON.parse(readFileSync(join(DIR, "corpus.json"), "utf8")) as Entry[];
const base = readFileSync(join(DIR, "base-cluster.yaml"), "utf8");
const read = (e: Entry): string => readFileSync(join(DIR, e.file), "utf8");

/** Every problem sealant finds reading a Clusterfile as sealer reads it, formatted; [] when it is read. */
function problems(text: string, file: string): string[] {
  try {
    const reading = readClusterfile(text, { file });
    // What reading leaves for later is exactly what stops applying the file.
    const deferred = reading.deferred.map(formatProblem);
    if (deferred.length > 0) expect(() => parseClusterfile(text, { file })).toThrow(deferred[0]);
    else expect(parseClusterfile(text, { file }).spec).toEqual(reading.spec);
    return [];
  } catch (err) {
    if (err instanceof ClusterSpecError) return err.problems.map(formatProblem);
    throw err;
  }
}

const clusterfiles = corpus.filter((e) => e.file.startsWith("clusterfiles/") || e.file.startsWith("cases/"));
const kubefiles = corpus.filter((e) => e.file.startsWith("kubefiles/"));

describe("sealer's Clusterfiles, judged as sealer judges them", () => {
  it("the corpus is there (sealer's docs, sealer.cool, applications, test data)", () => {
    expect(clusterfiles.filter((e) => e.source.repo !== undefined).length).toBeGreaterThan(100);
    expect(new Set(clusterfiles.flatMap((e) => e.source.repo ?? []))).toEqual(new Set(["sealerio/sealer", "sealerio/sealer.cool", "sealerio/applications"]));
  });

  it.each(clusterfiles.filter((e) => e.sealer === "accepted").map((e) => [e.file, e] as const))("%s: read (sealer reads it)", (_f, e) => {
    // GIVEN a Clusterfile sealer's decoder reads; WHEN sealant reads it; THEN no problem
    expect(problems(read(e), e.file)).toEqual([]);
  });

  it.each(clusterfiles.filter((e) => e.sealer === "fragment").map((e) => [e.file, e] as const))(
    "%s: its documents are read after a Cluster (sealer reads them); alone it has no Cluster",
    (_f, e) => {
      // GIVEN documents from sealer's docs meant to follow a Cluster (Config, Plugin, Application...)
      const text = read(e);
      // WHEN read after a Cluster document THEN no problem, as in sealer
      expect(problems(`${base}---\n${text}`, e.file)).toEqual([]);
      // AND alone they are refused for want of a Cluster (sealer's GetCluster has none to give)
      expect(problems(text, e.file).join("\n")).toMatch(/no Cluster document/);
    },
  );

  it.each(clusterfiles.filter((e) => e.sealer === "rejected").map((e) => [e.file, e] as const))("%s: rejected, naming the field sealer names", (_f, e) => {
    // GIVEN a file sealer's decoder rejects (e.sealerError)
    const found = problems(read(e), e.file);
    // THEN sealant rejects it too, at the same field (or as YAML that is not valid, with its line)
    expect(found.length).toBeGreaterThan(0);
    if (e.field === "yaml") expect(found.join("\n")).toMatch(/invalid YAML: .*\(\d+:\d+\)/);
    else expect(found.join("\n")).toContain(`: ${e.field}`);
  });
});

describe("sealer's Kubefiles, judged as sealer's parser judges them", () => {
  it("the corpus is there", () => {
    expect(kubefiles.length).toBeGreaterThan(80);
  });

  it.each(kubefiles.map((e) => [e.file, e] as const))("%s", (_f, e) => {
    // sealer builds for a platform: $ARCH has a value.
    const r = parseKubefile(read(e), { file: e.file, arch: "amd64" });
    if (e.sealer === "accepted") {
      expect(r.ok ? [] : r.errors.map(formatKubefileError)).toEqual([]);
    } else {
      expect(r.ok).toBe(false);
    }
  });
});
