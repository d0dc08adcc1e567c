import { describe, expect, it } from "vitest";
import { ok, warnings } from "./helpers";

describe("real-world Kubefiles in sealer's style", () => {
  it("a kubernetes cluster image built FROM scratch (sealer auto-build layout)", () => {
    // GIVEN the Kubefile sealer's auto-build generates for a kubernetes base image
    const text = `FROM scratch
COPY rootfs .
COPY \${ARCH} .
COPY imageList manifests
LABEL "cluster.alpha.sealer.io/cluster-runtime-version"="v1.22.15"
LABEL "cluster.alpha.sealer.io/cluster-runtime-type"="kubernetes"
LABEL "cluster.alpha.sealer.io/container-runtime-type"="docker"
LABEL "cluster.alpha.sealer.io/container-runtime-version"="19.03.14"
COPY tigera-operator.yaml applications/tigera-operator.yaml
COPY custom-resources.yaml applications/custom-resources.yaml
CNI calico local://calico.sh
LAUNCH ["calico"]
`;
    // WHEN parsed for amd64
    const k = ok(text, { arch: "amd64" });
    // THEN the copies, labels, CNI app and launch list are all there
    expect(k.from.image).toBe("scratch");
    expect(k.instructions.filter((i) => i.kind === "COPY").map((i) => (i.kind === "COPY" ? [i.sources, i.dest] : null))).toEqual([
      [["rootfs"], "."],
      [["amd64"], "."],
      [["imageList"], "manifests"],
      [["tigera-operator.yaml"], "applications/tigera-operator.yaml"],
      [["custom-resources.yaml"], "applications/custom-resources.yaml"],
    ]);
    expect(k.labels).toEqual({
      "cluster.alpha.sealer.io/cluster-runtime-version": "v1.22.15",
      "cluster.alpha.sealer.io/cluster-runtime-type": "kubernetes",
      "cluster.alpha.sealer.io/container-runtime-type": "docker",
      "cluster.alpha.sealer.io/container-runtime-version": "19.03.14",
      "cluster.alpha.sealer.io/kube-cni-calico": "true",
    });
    expect(k.apps).toEqual([{ name: "calico", kind: "CNI", line: 11, sources: [{ type: "local", path: "calico.sh" }] }]);
    expect(k.launch).toEqual(["calico"]);
    expect(k.cmds).toEqual([]);
    expect(k.warnings).toEqual([]);
  });

  it("an application image FROM a cluster image, with APP, APPCMDS, APPENV, ENV and LAUNCH", () => {
    // GIVEN an app image in the style of sealer's docs
    const text = `# Application image: mysql chart + business shell app + dashboard from the web
FROM docker.io/sealerio/kubernetes:v1.22.15

ENV globalKey=globalValue DOMAIN=example.com
KUBEVERSION 1.22 - 1.24

APP mysql local://mysql/
APP business local://install.sh
APP dashboard https://raw.githubusercontent.com/kubernetes/dashboard/v2.7.0/aio/deploy/recommended.yaml
APPENV business key1=value1 key2=value2
APPCMDS dashboard ["kubectl apply -f recommended.yaml -n kubernetes-dashboard"]

LAUNCH ["mysql", "business", "dashboard"]
`;
    // WHEN parsed (the base image's own apps are not known yet)
    const k = ok(text);
    // THEN everything is in the summary and nothing is deferred to the base image
    expect(k.from).toEqual({ kind: "FROM", line: 2, image: "docker.io/sealerio/kubernetes:v1.22.15" });
    expect(k.env).toEqual({ globalKey: "globalValue", DOMAIN: "example.com" });
    expect(k.kubeVersion).toBe("1.22 - 1.24");
    expect(k.labels).toEqual({ "app.alpha.sealer.io/supported-kube-version": "1.22 - 1.24" });
    expect(k.apps.map((a) => [a.name, a.line, a.sources])).toEqual([
      ["mysql", 7, [{ type: "local", path: "mysql/" }]],
      ["business", 8, [{ type: "local", path: "install.sh" }]],
      ["dashboard", 9, [{ type: "remote", url: "https://raw.githubusercontent.com/kubernetes/dashboard/v2.7.0/aio/deploy/recommended.yaml" }]],
    ]);
    expect(k.appEnv).toEqual({ business: { key1: "value1", key2: "value2" } });
    expect(k.appCmds).toEqual({ dashboard: ["kubectl apply -f recommended.yaml -n kubernetes-dashboard"] });
    expect(k.launch).toEqual(["mysql", "business", "dashboard"]);
    expect(k.baseAppRefs).toEqual([]);
    expect(k.instructions.at(-1)).toEqual({ kind: "LAUNCH", line: 13, apps: ["mysql", "business", "dashboard"] });
  });

  it("a cluster image that provides two CNIs and a CSI and launches one of them", () => {
    // GIVEN the CNI example from sealer's Kubefile reference, plus a CSI
    const text = `FROM docker.io/sealerio/kubernetes:v1-22-15-sealerio-2
CNI flannel https://raw.githubusercontent.com/flannel-io/flannel/v0.20.2/Documentation/kube-flannel.yml
CNI calico local://calico.sh
CSI alibaba-cloud-csi-driver local://csi/
APPCMDS calico ["bash calico.sh install"]
LAUNCH ["flannel"]
`;
    const k = ok(text);
    // THEN both CNIs and the CSI are apps with sealer's labels, and flannel is launched
    expect(k.apps.map((a) => `${a.kind}:${a.name}`)).toEqual(["CNI:flannel", "CNI:calico", "CSI:alibaba-cloud-csi-driver"]);
    expect(Object.keys(k.labels)).toEqual([
      "cluster.alpha.sealer.io/kube-cni-flannel",
      "cluster.alpha.sealer.io/kube-cni-calico",
      "cluster.alpha.sealer.io/kube-csi-alibaba-cloud-csi-driver",
    ]);
    expect(k.launch).toEqual(["flannel"]);
  });

  it("a multi-arch Kubefile with build args, RUN and CMDS", () => {
    // GIVEN a Kubefile that copies per-arch binaries and downloads helm at build time
    const text = `ARG BASE=docker.io/sealerio/kubernetes:v1.22.15
FROM \${BASE}
ARG HELM_VERSION=v3.10.0
MAINTAINER ops <ops@example.com>
COPY \${ARCH}/bin/ /usr/local/bin/
COPY --chmod=0755 scripts/*.sh scripts/
RUN curl -fsSL https://get.helm.sh/helm-\${HELM_VERSION}-linux-\${ARCH}.tar.gz \\
      | tar -xz -C /tmp && \\
    mv /tmp/linux-\${ARCH}/helm /usr/local/bin/helm
COPY charts/ charts/
CMDS ["helm upgrade --install nginx charts/nginx", "kubectl get pods -A"]
`;
    // WHEN parsed for arm64 with a newer helm version
    const k = ok(text, { arch: "arm64", buildArgs: { HELM_VERSION: "v3.12.1" } });
    // THEN COPY uses arm64, RUN keeps its text and gets the env it needs, CMDS is the command list
    expect(k.from.image).toBe("docker.io/sealerio/kubernetes:v1.22.15");
    const [copyBin, copyScripts, run] = k.instructions.filter((i) => i.kind === "COPY" || i.kind === "RUN");
    expect(copyBin).toMatchObject({ sources: ["arm64/bin/"], dest: "/usr/local/bin/" });
    expect(copyScripts).toMatchObject({ sources: ["scripts/*.sh"], dest: "scripts/", chmod: "0755" });
    expect(run).toEqual({
      kind: "RUN",
      line: 7,
      command:
        "curl -fsSL https://get.helm.sh/helm-${HELM_VERSION}-linux-${ARCH}.tar.gz       | tar -xz -C /tmp &&     mv /tmp/linux-${ARCH}/helm /usr/local/bin/helm",
      flags: [],
      env: { ARCH: "arm64", HELM_VERSION: "v3.12.1" },
    });
    expect(k.maintainer).toBe("ops <ops@example.com>");
    expect(k.args).toEqual({ HELM_VERSION: "v3.12.1" });
    expect(k.cmds).toEqual(["helm upgrade --install nginx charts/nginx", "kubectl get pods -A"]);
    expect(k.warnings).toEqual([]);
  });

  it("a legacy Kubefile with CMD and the old ENV form (sealer before v0.9)", () => {
    // GIVEN an old-style Kubefile where several CMDs all run
    const text = `FROM kubernetes:v1.19.8
COPY wordpress-chart .
COPY helm /usr/bin
ENV DOMAIN aliyun.com
RUN wget https://get.helm.sh/helm-v3.5.2-linux-amd64.tar.gz
CMD helm install wordpress wordpress-chart
CMD helm list
`;
    const k = ok(text);
    // THEN both CMDs are kept in order and the legacy ENV is understood
    expect(k.cmds).toEqual(["helm install wordpress wordpress-chart", "helm list"]);
    expect(k.env).toEqual({ DOMAIN: "aliyun.com" });
    expect(warnings(k)).toEqual(['Kubefile:6: CMD is deprecated; use CMDS ["..."] or APP + LAUNCH']);
  });

  it("a sealos-style Kubefile with a JSON CMD list and go-template ENV defaults", () => {
    const text = `FROM scratch
ENV serviceType NodePort
ENV http_NodePort 30080
ENV https_NodePort 30443
COPY manifests manifests
COPY registry registry
CMD ["kubectl apply -f manifests/service.yaml"]
`;
    const k = ok(text);
    expect(k.env).toEqual({ serviceType: "NodePort", http_NodePort: "30080", https_NodePort: "30443" });
    expect(k.cmds).toEqual(["kubectl apply -f manifests/service.yaml"]);
  });

  it("lowercase instructions, comments, blank and continued lines all together", () => {
    const text = `
# syntax and case do not matter
from scratch

label a=1 \\
      b=2
# a comment between instructions
app web \\
    local://web/deploy.yaml \\
    local://web/svc.yaml
launch web
`;
    const k = ok(text);
    expect(k.from.line).toBe(3);
    expect(k.labels).toEqual({ a: "1", b: "2" });
    expect(k.apps).toEqual([
      {
        name: "web",
        kind: "APP",
        line: 8,
        sources: [
          { type: "local", path: "web/deploy.yaml" },
          { type: "local", path: "web/svc.yaml" },
        ],
      },
    ]);
    expect(k.launch).toEqual(["web"]);
  });
});
