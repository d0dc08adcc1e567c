import { describe, expect, it } from "vitest";
import { LABEL_KUBE_CNI_PREFIX, LABEL_KUBE_CSI_PREFIX, LABEL_SUPPORTED_KUBE_VERSION } from "../../../../src/engine/build/kubefile";
import { kf, ok, only, warnings } from "./helpers";

describe("FROM", () => {
  it("accepts scratch and image references, with --platform and AS <name>", () => {
    // GIVEN FROM scratch, and FROM with a platform flag and a stage name (sealer's own tests use AS)
    const a = ok("FROM scratch");
    const b = ok("FROM --platform=linux/arm64 docker.io/sealerio/kubernetes:v1.22.15 AS base");
    // THEN the image, platform and alias are recorded, and FROM is also the first instruction
    expect(a.from).toEqual({ kind: "FROM", line: 1, image: "scratch" });
    expect(b.from).toEqual({
      kind: "FROM",
      line: 1,
      image: "docker.io/sealerio/kubernetes:v1.22.15",
      platform: "linux/arm64",
      alias: "base",
    });
    expect(b.instructions[0]).toBe(b.from);
  });

  it("takes the first item of sealer's list form --platform=[a,b]", () => {
    expect(ok('FROM --platform="[linux/amd64, linux/arm64]" scratch').from.platform).toBe("linux/amd64");
  });

  it("expands ARGs declared before FROM, and ${ARCH} in --platform", () => {
    // GIVEN a version ARG before FROM, overridden by a build arg
    const k = ok(kf("ARG KUBE=v1.22.15", "FROM --platform=linux/${ARCH} sealerio/kubernetes:$KUBE"), {
      arch: "arm64",
      buildArgs: { KUBE: "v1.24.0" },
    });
    // THEN FROM uses the build arg and the target arch
    expect(k.from.image).toBe("sealerio/kubernetes:v1.24.0");
    expect(k.from.platform).toBe("linux/arm64");
  });

  it("is case-insensitive, like every instruction", () => {
    const k = ok(kf("from scratch", "Copy a b", "rUn echo"));
    expect(k.instructions.map((i) => i.kind)).toEqual(["FROM", "COPY", "RUN"]);
  });
});

describe("ARG", () => {
  it("takes build args over defaults; an ARG without value or build arg stays unset", () => {
    // GIVEN three ARGs, one overridden by a build arg
    const k = ok(kf("FROM scratch", "ARG A=1", "ARG B=2", "ARG C"), { buildArgs: { B: "two" } });
    // THEN args holds A's default and B's build arg, and C is absent
    expect(k.args).toEqual({ A: "1", B: "two" });
  });

  it("declares several names on one line, expanding defaults", () => {
    const k = ok(kf("FROM scratch", 'ARG A=x B="${A}-y" C'));
    const arg = k.instructions[1];
    expect(arg).toEqual({ kind: "ARG", line: 2, beforeFrom: false, args: [{ name: "A", default: "x" }, { name: "B", default: "x-y" }, { name: "C" }] });
    expect(k.args).toEqual({ A: "x", B: "x-y" });
  });

  it("scopes ARGs before FROM to FROM; a bare ARG after FROM re-imports the value", () => {
    // GIVEN V declared before FROM, W before FROM and never redeclared
    const k = ok(kf("ARG V=1", "ARG W=2", "FROM scratch", "ARG V", "LABEL v=$V w=$W"));
    // THEN V is visible after its redeclaration, W is not
    expect(only(k, "LABEL").pairs).toEqual({ v: "1", w: "" });
    expect(k.args).toEqual({ V: "1" });
    expect(k.instructions[0]).toMatchObject({ kind: "ARG", beforeFrom: true });
  });

  it("warns about build args that no ARG declares (docker/sealer only warn)", () => {
    const k = ok(kf("FROM scratch", "ARG USED"), { buildArgs: { USED: "1", TYPO: "2" } });
    expect(warnings(k)).toEqual(['Kubefile: build argument "TYPO" was given but no ARG declares it; it is ignored']);
  });
});

describe("COPY and ADD", () => {
  it("parses sources and destination in shell and JSON form", () => {
    // GIVEN a shell-form and a JSON-form COPY (the JSON one with a blank in a path)
    const k = ok(kf("FROM scratch", "COPY bin/ etc/ ./", 'COPY ["my file.yaml", "manifests/"]'));
    const [, a, b] = k.instructions;
    // THEN both give sources and dest
    expect(a).toEqual({ kind: "COPY", line: 2, sources: ["bin/", "etc/"], dest: "./" });
    expect(b).toEqual({ kind: "COPY", line: 3, sources: ["my file.yaml"], dest: "manifests/" });
  });

  it("expands ${ARCH}, $ARCH, ARG and ENV values and removes quotes", () => {
    const k = ok(kf("FROM scratch", "ARG DIR=charts", "ENV SUB=nginx", "COPY ${ARCH}/bin $ARCH/\"sub\"'s' $DIR/$SUB/"), { arch: "amd64" });
    expect(only(k, "COPY")).toMatchObject({ sources: ["amd64/bin", "amd64/subs"], dest: "charts/nginx/" });
  });

  it("keeps --chown and --chmod", () => {
    expect(only(ok(kf("FROM scratch", "COPY --chown=0:0 --chmod=755 a b")), "COPY")).toEqual({
      kind: "COPY",
      line: 2,
      sources: ["a"],
      dest: "b",
      chown: "0:0",
      chmod: "755",
    });
  });

  it("keeps ADD sources as written: local files, archives and URLs", () => {
    const k = ok(kf("FROM scratch", "ADD https://get.helm.sh/helm-v3.5.2-linux-${ARCH}.tar.gz images.tar.gz bin/"), { arch: "arm64" });
    expect(only(k, "ADD")).toEqual({
      kind: "ADD",
      line: 2,
      sources: ["https://get.helm.sh/helm-v3.5.2-linux-arm64.tar.gz", "images.tar.gz"],
      dest: "bin/",
    });
  });

  it("treats a leading [ that is not JSON as a glob", () => {
    expect(only(ok(kf("FROM scratch", "COPY [ab]*.yaml manifests/")), "COPY").sources).toEqual(["[ab]*.yaml"]);
  });
});

describe("RUN", () => {
  it("keeps the shell form verbatim (the shell expands it) with the env in scope", () => {
    // GIVEN an ARG, an ENV and a RUN using both
    const k = ok(kf("FROM scratch", "ARG VERSION=1.2", "ENV HOME_DIR=/root VERSION=env-wins", "RUN echo $VERSION > $HOME_DIR/v"), { arch: "amd64" });
    const run = only(k, "RUN");
    // THEN the command is not expanded; env has ARG and ENV values (ENV wins) and ARCH
    expect(run.command).toBe("echo $VERSION > $HOME_DIR/v");
    expect(run.env).toEqual({ ARCH: "amd64", VERSION: "env-wins", HOME_DIR: "/root" });
  });

  it("parses the JSON exec form into argv", () => {
    expect(only(ok(kf("FROM scratch", 'RUN ["sh", "-c", "echo $X"]')), "RUN").command).toEqual(["sh", "-c", "echo $X"]);
  });

  it("runs a shell command starting with [ as shell form", () => {
    expect(only(ok(kf("FROM scratch", 'RUN [ -f /etc/os-release ] && echo "$X"')), "RUN").command).toBe('[ -f /etc/os-release ] && echo "$X"');
  });

  it("keeps builder flags for the builder to judge", () => {
    expect(only(ok(kf("FROM scratch", "RUN --network=host curl -O x")), "RUN")).toMatchObject({ flags: ["--network=host"], command: "curl -O x" });
  });

  it("only sees ENV defined above it", () => {
    const k = ok(kf("FROM scratch", "RUN one", "ENV A=1", "RUN two"));
    const runs = k.instructions.filter((i) => i.kind === "RUN");
    expect(runs.map((r) => (r.kind === "RUN" ? r.env : {}))).toEqual([{}, { A: "1" }]);
  });
});

describe("ENV and LABEL", () => {
  it("parses key=value pairs with quotes, and the legacy ENV key value form", () => {
    const k = ok(kf("FROM scratch", "ENV A=1 B=\"v 2\" C='$lit'", "ENV LEGACY some value here"));
    expect(k.env).toEqual({ A: "1", B: "v 2", C: "$lit", LEGACY: "some value here" });
  });

  it("expands values with the env from before the instruction (Docker semantics)", () => {
    // GIVEN ENV A=old, then one ENV that sets A and uses $A
    const k = ok(kf("FROM scratch", "ENV A=old", "ENV A=new B=$A"));
    // THEN B got the old value
    expect(k.env).toEqual({ A: "new", B: "old" });
  });

  it("handles sealer's quoted label keys and multi-line LABELs", () => {
    const k = ok(
      kf(
        "FROM scratch",
        'LABEL "cluster.alpha.sealer.io/cluster-runtime-version"="v1.22.15"',
        'LABEL "cluster.alpha.sealer.io/cluster-runtime-type"="kubernetes" \\',
        '      "cluster.alpha.sealer.io/container-runtime-type"="docker"',
        "LABEL legacy-key legacy value",
      ),
    );
    expect(k.labels).toEqual({
      "cluster.alpha.sealer.io/cluster-runtime-version": "v1.22.15",
      "cluster.alpha.sealer.io/cluster-runtime-type": "kubernetes",
      "cluster.alpha.sealer.io/container-runtime-type": "docker",
      "legacy-key": "legacy value",
    });
  });

  it("lets a later ENV override an ARG in substitution", () => {
    const k = ok(kf("FROM scratch", "ARG X=arg", "ENV X=env", "COPY $X dst"));
    expect(only(k, "COPY").sources).toEqual(["env"]);
  });
});

describe("MAINTAINER and KUBEVERSION", () => {
  it("keeps MAINTAINER verbatim as its own field", () => {
    const k = ok(kf("FROM scratch", "MAINTAINER sealer team <sealer@example.com>"));
    expect(only(k, "MAINTAINER").maintainer).toBe("sealer team <sealer@example.com>");
    expect(k.maintainer).toBe("sealer team <sealer@example.com>");
  });

  it("records KUBEVERSION and the label sealer derives from it", () => {
    const k = ok(kf("FROM scratch", "KUBEVERSION 1.22 - 1.24"));
    expect(only(k, "KUBEVERSION").version).toBe("1.22 - 1.24");
    expect(k.kubeVersion).toBe("1.22 - 1.24");
    expect(k.labels[LABEL_SUPPORTED_KUBE_VERSION]).toBe("1.22 - 1.24");
  });
});

describe("APP, CNI, CSI", () => {
  it("parses local:// and http(s):// sources", () => {
    const k = ok(kf("FROM scratch", "APP dashboard local://recommended.yaml https://example.com/extra.yaml"));
    expect(only(k, "APP")).toEqual({
      kind: "APP",
      line: 2,
      name: "dashboard",
      sources: [
        { type: "local", path: "recommended.yaml" },
        { type: "remote", url: "https://example.com/extra.yaml" },
      ],
    });
    expect(k.apps).toEqual([{ name: "dashboard", kind: "APP", line: 2, sources: only(k, "APP").sources }]);
  });

  it("accepts the JSON form and substitutes variables", () => {
    const k = ok(kf("FROM scratch", "ARG CHART=mysql", 'APP ["$CHART", "local://charts/$CHART/"]'));
    expect(only(k, "APP")).toMatchObject({ name: "mysql", sources: [{ type: "local", path: "charts/mysql/" }] });
  });

  it("CNI and CSI declare apps and add sealer's labels", () => {
    const k = ok(kf("FROM scratch", "CNI calico local://calico.sh", "CSI alibaba-cloud-csi local://csi/", 'LAUNCH ["calico", "alibaba-cloud-csi"]'));
    expect(k.apps.map((a) => [a.name, a.kind])).toEqual([
      ["calico", "CNI"],
      ["alibaba-cloud-csi", "CSI"],
    ]);
    expect(k.labels).toEqual({ [`${LABEL_KUBE_CNI_PREFIX}calico`]: "true", [`${LABEL_KUBE_CSI_PREFIX}alibaba-cloud-csi`]: "true" });
    expect(k.launch).toEqual(["calico", "alibaba-cloud-csi"]);
  });

  it("lets a redeclared name win, with a warning (sealer docs: the last one takes precedence)", () => {
    const k = ok(kf("FROM scratch", "CNI flannel local://old.yaml", "CNI flannel https://example.com/kube-flannel.yml"));
    expect(k.apps).toEqual([{ name: "flannel", kind: "CNI", line: 3, sources: [{ type: "remote", url: "https://example.com/kube-flannel.yml" }] }]);
    expect(warnings(k)).toEqual(['Kubefile:3: CNI "flannel" redeclares the app declared by CNI on line 2; the later declaration wins']);
  });
});

describe("APPCMDS and APPENV", () => {
  it("APPCMDS takes a JSON array of commands; the last one wins", () => {
    const k = ok(
      kf(
        "FROM scratch",
        "APP nginx local://nginx.yaml",
        'APPCMDS nginx ["kubectl apply -f a.yaml"]',
        'APPCMDS nginx ["kubectl apply -f nginx.yaml -n nginx", "echo $DONE"]',
      ),
    );
    expect(k.appCmds).toEqual({ nginx: ["kubectl apply -f nginx.yaml -n nginx", "echo $DONE"] });
  });

  it("APPENV sets key=value pairs per app, merged across instructions", () => {
    const k = ok(kf("FROM scratch", "APP app1 local://app1", 'APPENV app1 key1=value1 key2="two words"', "APPENV app1 key1=override key3=$ARCH"), {
      arch: "amd64",
    });
    expect(k.appEnv).toEqual({ app1: { key1: "override", key2: "two words", key3: "amd64" } });
    expect(k.instructions[2]).toEqual({ kind: "APPENV", line: 3, app: "app1", pairs: { key1: "value1", key2: "two words" } });
  });

  it("APPENV ignores words without = with a warning, as sealer ignores them", () => {
    const k = ok(kf("FROM scratch", "APP a local://a.yaml", "APPENV a k=v junk"));
    expect(k.appEnv).toEqual({ a: { k: "v" } });
    expect(warnings(k)[0]).toMatch(/Kubefile:3: APPENV a: "junk" is not of the form key=value and is ignored/);
  });
});

describe("LAUNCH, CMDS, CMD", () => {
  it("LAUNCH accepts the JSON form and the whitespace form", () => {
    const a = ok(kf("FROM scratch", "APP a local://a.yaml", "APP b local://b.sh", 'LAUNCH ["a","b"]'));
    const b = ok(kf("FROM scratch", "APP a local://a.yaml", "APP b local://b.sh", "LAUNCH a b"));
    expect(a.launch).toEqual(["a", "b"]);
    expect(b.launch).toEqual(["a", "b"]);
  });

  it("CMDS takes a JSON array of commands, kept verbatim", () => {
    const k = ok(kf("FROM scratch", 'CMDS ["kubectl apply -f abc.yaml", "kubectl apply -f $FILE"]'));
    expect(only(k, "CMDS").commands).toEqual(["kubectl apply -f abc.yaml", "kubectl apply -f $FILE"]);
    expect(k.cmds).toEqual(["kubectl apply -f abc.yaml", "kubectl apply -f $FILE"]);
  });

  it("CMDS in shell form is one command, with a warning that sealer would split it", () => {
    const k = ok(kf("FROM scratch", "CMDS kubectl apply -f x.yaml"));
    expect(k.cmds).toEqual(["kubectl apply -f x.yaml"]);
    expect(warnings(k)[0]).toMatch(/^Kubefile:2: CMDS in shell form is used as one command/);
  });

  it("every CMD is appended (deprecated), shell and JSON form, then CMDS", () => {
    const k = ok(kf("FROM scratch", "CMD kubectl apply -f a.yaml", 'CMD ["helm install x charts/x", "helm list"]', 'CMDS ["echo done"]'));
    expect(k.cmds).toEqual(["kubectl apply -f a.yaml", "helm install x charts/x", "helm list", "echo done"]);
    expect(warnings(k)).toContain('Kubefile:2: CMD is deprecated; use CMDS ["..."] or APP + LAUNCH');
  });

  it("an empty LAUNCH [] is accepted, as sealer does, with a warning", () => {
    const k = ok(kf("FROM scratch", "LAUNCH []"));
    expect(k.launch).toEqual([]);
    expect(warnings(k)).toEqual(["Kubefile:2: LAUNCH lists no apps; nothing will be launched"]);
  });
});

describe("ARCH", () => {
  it("an ARG or ENV named ARCH overrides the target architecture", () => {
    const k = ok(kf("FROM scratch", "ARG ARCH=x86_64", "COPY $ARCH/bin bin/"), { arch: "amd64" });
    expect(only(k, "COPY").sources).toEqual(["x86_64/bin"]);
  });

  it("${ARCH:-default} works without a target architecture", () => {
    expect(only(ok(kf("FROM scratch", "COPY ${ARCH:-amd64}/bin bin/")), "COPY").sources).toEqual(["amd64/bin"]);
  });
});
