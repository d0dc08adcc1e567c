import { describe, expect, it } from "vitest";
import { checkBaseAppRefs, formatKubefileError, KubefileSyntaxError, parseKubefile, parseKubefileOrThrow } from "../../../../src/engine/build/kubefile";
import { errs, kf, ok } from "./helpers";

describe("unknown and unsupported instructions", () => {
  it("rejects an unknown instruction with the expected list and a suggestion", () => {
    // GIVEN a typo on line 3
    const e = errs(kf("FROM scratch", "", "COPPY bin/ bin/"));
    // THEN the error names the line, the word, what is expected and the likely fix
    expect(e).toEqual([
      'Kubefile:3: unknown instruction "COPPY" (expected one of FROM, ARG, COPY, ADD, RUN, ENV, LABEL, MAINTAINER, APP, APPCMDS, APPENV, CNI, CSI, KUBEVERSION, LAUNCH, CMDS, CMD); did you mean COPY?',
    ]);
  });

  it("says when a Dockerfile-only instruction is used", () => {
    const e = errs(kf("FROM scratch", "WORKDIR /root"));
    expect(e[0]).toMatch(/^Kubefile:2: WORKDIR is a Dockerfile instruction that Kubefiles do not support/);
  });

  it("uses the file name given in the options", () => {
    expect(errs("FROM scratch\nBOGUS x", { file: "apps/Kubefile.arm" })[0]).toMatch(/^apps\/Kubefile.arm:2: unknown instruction "BOGUS"/);
  });
});

describe("FROM rules", () => {
  it("rejects a file without FROM, and an empty file", () => {
    expect(errs(kf("# nothing but a comment", "COPY a b"))).toEqual([
      "Kubefile:2: no FROM instruction: a Kubefile must start with FROM <image> (or FROM scratch)",
    ]);
    expect(errs("")).toEqual(["Kubefile:1: the Kubefile is empty: expected FROM <image> (or FROM scratch)"]);
  });

  it("allows only ARG before FROM", () => {
    // GIVEN ARG then COPY then FROM
    const e = errs(kf("ARG V=1", "COPY a b", "FROM scratch"));
    // THEN the COPY is reported on its line
    expect(e).toEqual(["Kubefile:2: COPY before FROM (line 3): FROM must be the first instruction (only ARG may come before it)"]);
  });

  it("rejects FROM without an image, with too many words, and a bad reference", () => {
    expect(errs("FROM")).toEqual(["Kubefile:1: FROM requires an image: FROM <image> (or FROM scratch)"]);
    expect(errs("FROM a b")[0]).toMatch(/^Kubefile:1: FROM expects "FROM \[--platform=<platform>\] <image> \[AS <name>\]"/);
    expect(errs("FROM Sealerio/Kubernetes:v1")[0]).toMatch(/^Kubefile:1: FROM: invalid image reference "Sealerio\/Kubernetes:v1"/);
  });

  it("rejects a FROM image that expands to nothing", () => {
    expect(errs(kf("ARG IMAGE", "FROM $IMAGE"))).toEqual(['Kubefile:2: FROM image "$IMAGE" expands to an empty string']);
  });

  it("rejects FROM flags other than --platform, and a second FROM (no multi-stage)", () => {
    expect(errs("FROM --pull=always scratch")).toEqual(["Kubefile:1: flag --pull is not available in FROM (only --platform=<os>/<arch>)"]);
    expect(errs(kf("FROM scratch", "COPY a b", "FROM scratch"))).toEqual([
      "Kubefile:3: only one FROM is allowed (the first is on line 1): Kubefiles build a single stage, multi-stage builds are not supported",
    ]);
  });
});

describe("missing and malformed arguments", () => {
  const cases: [string, string, RegExp][] = [
    ["COPY with one argument", "COPY bin", /^Kubefile:2: COPY requires at least two arguments: COPY <src>\.\.\. <dest> \(got only "bin"\)$/],
    ["ADD with none", "ADD", /^Kubefile:2: ADD requires at least two arguments/],
    ["RUN without a command", "RUN", /^Kubefile:2: RUN requires a command/],
    ["RUN with an empty JSON array", "RUN []", /^Kubefile:2: RUN requires a command: the JSON array is empty/],
    ["RUN with a non-string JSON array", "RUN [1, 2]", /^Kubefile:2: RUN: when using JSON array syntax, arrays must be comprised of strings only/],
    ["ENV without pairs", "ENV", /^Kubefile:2: ENV requires at least one argument/],
    ["ENV with a key only", "ENV KEY", /^Kubefile:2: ENV must have two arguments/],
    ["ENV mixing forms", "ENV A=1 B", /^Kubefile:2: syntax error - can't find = in "B"\. Must be of the form: name=value/],
    ["ENV with a blank name", "ENV =x", /^Kubefile:2: ENV names can not be blank/],
    ["LABEL without pairs", "LABEL", /^Kubefile:2: LABEL requires at least one argument/],
    ["ARG without a name", "ARG", /^Kubefile:2: ARG requires a name/],
    ["ARG with a blank name", "ARG =1", /^Kubefile:2: ARG names can not be blank/],
    ["MAINTAINER without a name", "MAINTAINER", /^Kubefile:2: MAINTAINER requires a name/],
    ["KUBEVERSION without a range", "KUBEVERSION", /^Kubefile:2: KUBEVERSION requires a version range/],
    ["CMD without a command", "CMD", /^Kubefile:2: CMD requires a command/],
    ["CMDS with a non-string JSON array", 'CMDS ["a", 1]', /^Kubefile:2: CMDS: when using JSON array syntax/],
    ["LAUNCH with malformed JSON", 'LAUNCH ["a", "b"', /^Kubefile:2: LAUNCH: malformed JSON array/],
    ["LAUNCH with single quotes", "LAUNCH ['a']", /^Kubefile:2: LAUNCH: malformed JSON array/],
    ["COPY with malformed JSON", 'COPY ["a", "b"', /^Kubefile:2: COPY: malformed JSON array/],
    ["COPY with a quoted blank in shell form", 'COPY "my file" dest/', /^Kubefile:2: cannot expand ""my": .*use the JSON form COPY \["a b", "dest\/"\]/],
    ["COPY --from", "COPY --from=builder /out ./", /^Kubefile:2: COPY --from is not supported: Kubefiles have a single stage/],
    ["COPY with an unknown flag", "COPY --link a b", /^Kubefile:2: unknown flag --link for COPY \(expected --chown=<user> or --chmod=<mode>\)/],
    [
      "COPY of several sources to a file",
      "COPY a b dest",
      /^Kubefile:2: when COPY has more than one source, the destination must be a directory ending with "\/" \(got "dest"\)/,
    ],
    ["flags on an instruction without flags", "LABEL --x=y a=b", /^Kubefile:2: LABEL does not take flags \(got --x=y\)/],
    ["a bad substitution", "COPY ${DIR a", /^Kubefile:2: cannot expand "\$\{DIR": syntax error: missing '}'/],
    ["a required variable", "COPY ${DIR:?set --build-arg DIR} a", /^Kubefile:2: cannot expand "\$\{DIR:\?set": /],
  ];
  for (const [what, line, expected] of cases) {
    it(`rejects ${what}`, () => {
      // GIVEN FROM scratch and the bad instruction on line 2
      const e = errs(kf("FROM scratch", line));
      // THEN there is exactly one error, on line 2
      expect(e).toHaveLength(1);
      expect(e[0]).toMatch(expected);
    });
  }

  it("rejects ${ARCH} when no target architecture is known", () => {
    expect(errs(kf("FROM scratch", "COPY ${ARCH}/bin bin/"))).toEqual([
      "Kubefile:2: uses $ARCH, but no target architecture was given to the parser (opts.arch) and no ARG or ENV sets ARCH",
    ]);
  });
});

describe("APP rules", () => {
  const cases: [string, string, string][] = [
    ["APP without arguments", "APP", "Kubefile:2: APP requires a name and at least one source: APP <name> local://<path>|http(s)://<url>..."],
    ["APP without sources", "APP web", 'Kubefile:2: APP "web" has no sources: APP <name> local://<path>|http(s)://<url>...'],
    [
      "APP without a name",
      "APP local://web.yaml",
      'Kubefile:2: APP requires a name before its sources: APP <name> local://<path>|https://<url>... (got "local://web.yaml" as the name)',
    ],
    [
      "a source without a scheme",
      "APP web web.yaml",
      'Kubefile:2: APP "web": source "web.yaml" must start with local:// (a path in the build context), http:// or https://',
    ],
    [
      "another scheme",
      "CNI calico oss://bucket/calico.yaml",
      'Kubefile:2: CNI "calico": source "oss://bucket/calico.yaml" must start with local:// (a path in the build context), http:// or https://',
    ],
    ["an empty local path", "CSI csi local://", 'Kubefile:2: CSI "csi": source "local://" has an empty path'],
    [
      "a name with a slash",
      "APP ../etc local://x.yaml",
      'Kubefile:2: APP: invalid app name "../etc" (an app name is a directory name under application/apps/: no "/", not "." or "..")',
    ],
  ];
  for (const [what, line, expected] of cases) {
    it(`rejects ${what}`, () => {
      expect(errs(kf("FROM scratch", line))).toEqual([expected]);
    });
  }

  it("APPCMDS needs an app name and a JSON array", () => {
    expect(errs(kf("FROM scratch", "APP web local://web.yaml", "APPCMDS web kubectl apply -f web.yaml"))).toEqual([
      'Kubefile:3: APPCMDS web: the commands must be a JSON array of strings, e.g. APPCMDS web ["kubectl apply -f app.yaml"]',
    ]);
    expect(errs(kf("FROM scratch", 'APPCMDS ["kubectl apply -f web.yaml"]'))[0]).toMatch(/^Kubefile:2: APPCMDS needs the app name before the JSON array/);
    expect(errs(kf("FROM scratch", "APPCMDS"))[0]).toMatch(/^Kubefile:2: APPCMDS requires an app name and a JSON array of commands/);
  });
});

describe("references to apps", () => {
  it("APPCMDS, APPENV and LAUNCH must name an app declared above (FROM scratch)", () => {
    // GIVEN FROM scratch and references to an undeclared app "web"
    const e = errs(kf("FROM scratch", "APP db local://db.yaml", 'APPCMDS web ["kubectl apply -f web.yaml"]', "APPENV web port=80", 'LAUNCH ["db", "web"]'));
    // THEN each reference is an error on its own line
    expect(e).toEqual([
      'Kubefile:3: APPCMDS refers to app "web", which no APP, CNI or CSI above declares',
      'Kubefile:4: APPENV refers to app "web", which no APP, CNI or CSI above declares',
      'Kubefile:5: LAUNCH refers to app "web", which no APP, CNI or CSI above declares',
    ]);
  });

  it("says when the app is declared, but only below the reference", () => {
    const e = errs(kf("FROM scratch", 'APPCMDS web ["kubectl apply -f web.yaml"]', "APP web local://web.yaml", 'LAUNCH ["web"]'));
    expect(e).toEqual(['Kubefile:2: APPCMDS refers to app "web", which is declared only below (line 3); declare it with APP above APPCMDS']);
  });

  it("does not repeat an error for an app whose APP line was itself invalid", () => {
    expect(errs(kf("FROM scratch", "APP web web.yaml", 'LAUNCH ["web"]'))).toEqual([
      'Kubefile:2: APP "web": source "web.yaml" must start with local:// (a path in the build context), http:// or https://',
    ]);
  });

  it("with a base image and no baseApps, defers unknown names to baseAppRefs", () => {
    // GIVEN an app image built on a cluster image that may already hold "calico"
    const k = ok(kf("FROM docker.io/sealerio/kubernetes:v1.22.15", "APP web local://web.yaml", "APPENV calico mtu=1440", 'LAUNCH ["calico", "web"]'));
    // THEN the parse succeeds and lists what the base image must provide
    expect(k.baseAppRefs).toEqual([
      { name: "calico", line: 3, instruction: "APPENV" },
      { name: "calico", line: 4, instruction: "LAUNCH" },
    ]);
    // AND checkBaseAppRefs reports them against the base image's real app list
    expect(checkBaseAppRefs(k, ["calico", "coredns"])).toEqual([]);
    expect(checkBaseAppRefs(k, ["flannel"]).map(formatKubefileError)).toEqual([
      'Kubefile:3: APPENV refers to app "calico", which neither this Kubefile nor the base image docker.io/sealerio/kubernetes:v1.22.15 declares (the base image has "flannel")',
      'Kubefile:4: LAUNCH refers to app "calico", which neither this Kubefile nor the base image docker.io/sealerio/kubernetes:v1.22.15 declares (the base image has "flannel")',
    ]);
  });

  it("with baseApps given, checks references at once", () => {
    const text = kf("FROM docker.io/sealerio/kubernetes:v1.22.15", 'LAUNCH ["calico", "ghost"]');
    expect(errs(text, { baseApps: ["calico"] })).toEqual([
      'Kubefile:2: LAUNCH refers to app "ghost", which no APP, CNI or CSI above declares and the base image docker.io/sealerio/kubernetes:v1.22.15 does not provide',
    ]);
    expect(ok(kf("FROM docker.io/sealerio/kubernetes:v1.22.15", 'LAUNCH ["calico"]'), { baseApps: ["calico"] }).baseAppRefs).toEqual([]);
  });
});

describe("LAUNCH / CMDS / CMD ordering (sealer's rules)", () => {
  it("LAUNCH must be the last instruction", () => {
    const e = errs(kf("FROM scratch", "APP web local://web.yaml", 'LAUNCH ["web"]', "COPY a b", "# trailing comments are fine"));
    expect(e).toEqual(["Kubefile:3: LAUNCH must be the last instruction; found COPY on line 4 after it"]);
  });

  it("CMDS must be the last instruction", () => {
    expect(errs(kf("FROM scratch", 'CMDS ["a"]', "LABEL a=b"))).toEqual(["Kubefile:2: CMDS must be the last instruction; found LABEL on line 3 after it"]);
  });

  it("LAUNCH and CMDS are mutually exclusive", () => {
    expect(errs(kf("FROM scratch", "APP web local://web.yaml", 'LAUNCH ["web"]', 'CMDS ["echo"]'))).toEqual([
      "Kubefile:4: LAUNCH and CMDS are mutually exclusive (LAUNCH on line 3, CMDS on line 4)",
    ]);
  });

  it("only one LAUNCH and one CMDS are allowed", () => {
    expect(errs(kf("FROM scratch", "APP web local://web.yaml", 'LAUNCH ["web"]', 'LAUNCH ["web"]'))).toEqual([
      "Kubefile:4: only one LAUNCH instruction is allowed (the first is on line 3)",
    ]);
    expect(errs(kf("FROM scratch", 'CMDS ["a"]', 'CMDS ["b"]'))).toEqual(["Kubefile:3: only one CMDS instruction is allowed (the first is on line 2)"]);
  });

  it("CMD and LAUNCH are mutually exclusive", () => {
    expect(errs(kf("FROM scratch", "CMD kubectl apply -f x.yaml", "APP web local://web.yaml", 'LAUNCH ["web"]'))).toEqual([
      "Kubefile:4: CMD and LAUNCH are mutually exclusive (CMD on line 2); use APPCMDS for app commands, or CMDS instead of LAUNCH",
    ]);
  });

  it("CMD and CMDS may be combined (sealer appends both)", () => {
    expect(ok(kf("FROM scratch", "CMD a", 'CMDS ["b"]')).cmds).toEqual(["a", "b"]);
  });
});

describe("collecting errors", () => {
  it("reports every error, in line order, with the first physical line of a continued instruction", () => {
    // GIVEN several independent mistakes, one inside a continued instruction
    const text = kf(
      "FROM scratch", //          1
      "COPY \\", //               2
      "   only-one-arg", //        3
      "RUNN echo", //              4
      "ENV A=1 B", //              5
      'LAUNCH ["x"]', //           6
      "LABEL a=b", //              7
    );
    // WHEN parsed
    const e = errs(text);
    // THEN each is reported once, the COPY at line 2 where it starts
    expect(e.map((m) => m.split(":").slice(0, 2).join(":"))).toEqual(["Kubefile:2", "Kubefile:4", "Kubefile:5", "Kubefile:6", "Kubefile:6"]);
    expect(e[1]).toMatch(/unknown instruction "RUNN".*did you mean RUN\?/);
    expect(e[4]).toBe("Kubefile:6: LAUNCH must be the last instruction; found LABEL on line 7 after it");
  });

  it("parseKubefileOrThrow throws a KubefileSyntaxError listing all errors", () => {
    // GIVEN a Kubefile with two errors
    const text = kf("FROM scratch", "COPY x", "BOGUS");
    // WHEN parsed with the throwing variant
    let thrown: unknown;
    try {
      parseKubefileOrThrow(text, { file: "demo/Kubefile" });
    } catch (e) {
      thrown = e;
    }
    // THEN the error carries both, and its message lists them with file and line
    expect(thrown).toBeInstanceOf(KubefileSyntaxError);
    const err = thrown as KubefileSyntaxError;
    expect(err.errors.map((e) => e.line)).toEqual([2, 3]);
    expect(err.message).toContain("demo/Kubefile is invalid (2 errors):");
    expect(err.message).toContain("demo/Kubefile:2: COPY requires at least two arguments");
    expect(err.message).toContain('demo/Kubefile:3: unknown instruction "BOGUS"');
  });

  it("returns warnings with the errors", () => {
    const r = parseKubefile(kf("FROM scratch", "COPY x"), { buildArgs: { UNUSED: "1" } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.warnings.map(formatKubefileError)).toEqual(['Kubefile: build argument "UNUSED" was given but no ARG declares it; it is ignored']);
  });
});
