import { describe, expect, it } from "vitest";
import { KubefileSyntaxError, parseKubefile } from "../../../../src/engine/build/kubefile";
import { errs, kf, ok } from "./helpers";

/**
 * Inputs that used to parse and fail only later (on the hosts, or with a raw JavaScript error):
 * each is now an error at parse time with the file, the line and the instruction.
 */

describe("variable names", () => {
  it.each([
    ["ENV starting with a digit", "ENV 1BAD=x", 'Kubefile:2: ENV name "1BAD" is not a valid variable name'],
    ["ENV with a dot", "ENV a.b=x", 'Kubefile:2: ENV name "a.b" is not a valid variable name'],
    ["ENV with a dash, legacy form", "ENV a-b x", 'Kubefile:2: ENV name "a-b" is not a valid variable name'],
    ["ARG with a dash", "ARG my-arg=1", 'Kubefile:2: ARG name "my-arg" is not a valid variable name'],
    ["APPENV with a dash", "APPENV web a-b=1", 'Kubefile:2: APPENV web: name "a-b" is not a valid variable name'],
  ])("refuses %s", (_what, line, message) => {
    const e = errs(kf("FROM scratch", "APP web local://web.yaml", line));
    expect(e).toHaveLength(1);
    expect(e[0]).toContain(message.replace("Kubefile:2", "Kubefile:3"));
    expect(e[0]).toContain("use letters, digits and _, not starting with a digit");
  });

  it("accepts every POSIX name", () => {
    const k = ok(kf("FROM scratch", "ARG _a=1 B2", "ENV lower=1 UPPER_2=2 _=3"));
    expect(k.env).toEqual({ lower: "1", UPPER_2: "2", _: "3" });
  });
});

describe("KUBEVERSION", () => {
  it.each(["1.22 - 1.24", ">=1.22 <1.25", ">= 1.22, < 1.25", "~1.24 || ^1.26", "v1.24.x", "*", "1.x", "=1.24.3-rc.1+build.2", "~>1.24", "!=1.23"])(
    "accepts the range %s",
    (range) => {
      expect(ok(kf("FROM scratch", `KUBEVERSION ${range}`)).kubeVersion).toBe(range);
    },
  );

  it.each([
    ["not-a-range", '"not-a-range" is not a version or a comparison with one'],
    ["1.22 ||", "an empty alternative around ||"],
    [">>1.22", '">>1.22" is not a version or a comparison with one'],
    ["1.22 - ", '"-" is not a version or a comparison with one'],
    ["1.22.3.4", '"1.22.3.4" is not a version or a comparison with one'],
  ])("refuses %s with the line", (range, why) => {
    expect(errs(kf("FROM scratch", `KUBEVERSION ${range}`))).toEqual([
      `Kubefile:2: KUBEVERSION "${range.trim()}" is not a version range: ${why} (e.g. KUBEVERSION 1.22 - 1.24, >=1.22 <1.25, ~1.24 || ^1.26)`,
    ]);
  });
});

describe("runaway expansion", () => {
  it("stops an ARG that doubles itself at 1 MiB, naming the line and the instruction", () => {
    // GIVEN an ARG doubled 24 times (16 M times its 32 characters: "Invalid string length" before)
    const lines = ["FROM scratch", "ARG A=0123456789abcdef0123456789abcdef"];
    for (let i = 0; i < 24; i++) lines.push("ARG A=$A$A");
    const started = Date.now();
    const e = errs(kf(...lines));
    // THEN the first line whose value would pass 1 MiB is named (and each later one, which would too)
    expect(e[0]).toBe('Kubefile:18: ARG: expanding "$A$A" gives more than 1 MiB of text, the limit for one instruction (a variable that doubles itself?)');
    expect(e.map((m) => m.split(":")[1])).toEqual(["18", "19", "20", "21", "22", "23", "24", "25", "26"]);
    expect(Date.now() - started).toBeLessThan(10_000); // without the cap: gigabytes of text (a bound, not a benchmark)
  });

  it("counts every word of one instruction together", () => {
    const big = "x".repeat(400_000);
    expect(ok(kf("FROM scratch", `ARG A=${big}`, "ENV B=$A C=$A")).env.B).toHaveLength(400_000);
    expect(errs(kf("FROM scratch", `ARG A=${big}`, "ENV B=$A C=$A D=$A"))[0]).toMatch(/^Kubefile:3: ENV: expanding "\$A" gives more than 1 MiB of text/);
  });

  it("refuses substitutions nested deeper than 64 (no stack overflow)", () => {
    const nested = "${A:-".repeat(100_000) + "x" + "}".repeat(100_000);
    expect(errs(kf("FROM scratch", `ENV B=${nested}`))[0]).toMatch(
      /^Kubefile:2: cannot expand ".*characters left out.*": substitutions nested more than 64 deep$/,
    );
  });

  it("keeps an error about a 2 MB line short", () => {
    const e = errs(kf("FROM scratch", `COPPY ${"a".repeat(2_000_000)} b`));
    expect(e[0]!.length).toBeLessThan(2200);
    expect(e[0]).toMatch(/^Kubefile:2: unknown instruction "COPPY" \(expected one of/);
  });
});

describe("remote source URLs", () => {
  it.each([
    ["ADD http://127.0.0.1/a%zz.tar x/", 'Kubefile:2: ADD source "http://127.0.0.1/a%zz.tar" has a malformed %-escape in its path'],
    ["ADD https://127.0.0.1/%E0%A4%A.bin x/", "has a malformed %-escape in its path"],
    ["ADD http://[::1/x x/", 'Kubefile:2: ADD source "http://[::1/x" is not a valid URL'],
    ["APP web http://127.0.0.1/%ff.yaml", 'Kubefile:2: APP "web": source "http://127.0.0.1/%ff.yaml" has a malformed %-escape'],
    ["CNI net https://u:secret@127.0.0.1/cni.yaml", 'Kubefile:2: CNI "net": source "https://***@127.0.0.1/cni.yaml" carries credentials'],
  ])("%s is an error with the line", (line, message) => {
    const e = errs(kf("FROM scratch", line));
    expect(e).toHaveLength(1);
    expect(e[0]).toContain(message);
    expect(e[0]).not.toContain("secret");
  });

  it("accepts well-formed escapes", () => {
    const k = ok(kf("FROM scratch", "ADD http://127.0.0.1/a%20b%25.tar x/"));
    expect(k.instructions[1]).toMatchObject({ kind: "ADD", sources: ["http://127.0.0.1/a%20b%25.tar"] });
  });
});

describe("ADD --checksum", () => {
  const sum = "ab".repeat(32);
  it("records the checksum of an ADD with one http(s) source", () => {
    const k = ok(kf("FROM scratch", `ADD --checksum=sha256:${sum} https://127.0.0.1/a.tar x/`));
    expect(k.instructions[1]).toMatchObject({ kind: "ADD", checksum: `sha256:${sum}`, sources: ["https://127.0.0.1/a.tar"] });
  });

  it.each([
    [`ADD --checksum=sha256:${sum.slice(1)} http://127.0.0.1/a x`, "ADD --checksum=sha256:" + sum.slice(1) + ": expected sha256:<64 lowercase hex digits>"],
    [`ADD --checksum=md5:${sum.slice(32)} http://127.0.0.1/a x`, `ADD --checksum=md5:${sum.slice(32)}: expected sha256:<64 lowercase hex digits>`],
    [`ADD --checksum=sha256:${sum} local.tar x`, 'ADD --checksum needs exactly one http(s) source (got "local.tar")'],
    [`ADD --checksum=sha256:${sum} http://127.0.0.1/a http://127.0.0.1/b x/`, "ADD --checksum needs exactly one http(s) source"],
    [`COPY --checksum=sha256:${sum} a x`, "unknown flag --checksum for COPY (expected --chown=<user> or --chmod=<mode>)"],
  ])("refuses %s", (line, message) => {
    const e = errs(kf("FROM scratch", line));
    expect(e).toHaveLength(1);
    expect(e[0]).toContain(`Kubefile:2: ${message}`);
  });
});

describe("messages about unreadable input", () => {
  it("shows control characters as escapes and lists at most 20 errors", () => {
    const e = errs(kf("FROM scratch", "\u001b[2JCOPPY a b"));
    expect(e).toEqual([expect.stringContaining('Kubefile:2: unknown instruction "\\x1b[2JCOPPY"')]);
    const many = Array.from({ length: 30 }, (_, i) => `BAD${i} x`);
    const r = parseKubefile(kf("FROM scratch", ...many));
    expect(r.ok).toBe(false);
    const message = new KubefileSyntaxError(r.ok ? [] : r.errors).message.split("\n");
    expect(message[0]).toBe("Kubefile is invalid (30 errors):");
    expect(message).toHaveLength(22);
    expect(message[21]).toBe("  ... and 10 more");
  });
});

describe("app names", () => {
  it.each(['APP ["a b", "local://a.yaml"]', "APP a\u0001b local://a.yaml", 'LAUNCH ["a\\tb"]'])("refuses blanks and control characters: %s", (line) => {
    expect(errs(kf("FROM scratch", line))[0]).toMatch(
      /^Kubefile:2: (APP|LAUNCH): invalid app name ".*" \(an app name is a directory name and part of labels: no blanks or control characters\)$/,
    );
  });
});

describe("NUL characters", () => {
  it.each(["ENV A=x\u0000y", "COPY a x\u0000y", "RUN echo x\u0000y"])("refuses a line holding one: %j", (line) => {
    expect(errs(kf("FROM scratch", line))).toEqual([
      "Kubefile:2: the line holds a NUL character: a Kubefile is UTF-8 text (was it saved as UTF-16, or is it a binary file?)",
    ]);
  });
});

describe("build arguments with secret names", () => {
  it("warns when ENV, LABEL or APPENV stores one in the image, and not when only RUN sees it", () => {
    const k = ok(
      kf(
        "FROM scratch",
        "ARG DB_PASSWORD API_KEY PORT",
        "APP web local://web.yaml",
        "ENV PW=$DB_PASSWORD PORT=$PORT",
        "LABEL k=${API_KEY}",
        "APPENV web X=$DB_PASSWORD",
        "RUN use $DB_PASSWORD",
      ),
      { buildArgs: { DB_PASSWORD: "hunter2", API_KEY: "k", PORT: "80" } },
    );
    const warned = k.warnings.map((w) => `${w.line}: ${w.message}`);
    expect(warned).toEqual([
      `4: ENV stores the build argument "DB_PASSWORD" in the image, where anyone who can pull it reads it; give secrets to the hosts through the Clusterfile's env instead`,
      `5: LABEL stores the build argument "API_KEY" in the image, where anyone who can pull it reads it; give secrets to the hosts through the Clusterfile's env instead`,
      `6: APPENV stores the build argument "DB_PASSWORD" in the image, where anyone who can pull it reads it; give secrets to the hosts through the Clusterfile's env instead`,
    ]);
    expect(warned.join("\n")).not.toContain("hunter2");
  });
});
