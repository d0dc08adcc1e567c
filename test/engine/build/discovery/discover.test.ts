import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { discoverImages, ImageListError, parseImageList } from "../../../../src/engine/build/discovery";

let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "sealant-discovery-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function put(rel: string, text: string): Promise<string> {
  const p = join(root, rel);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, text);
  return p;
}

const DIGEST = `sha256:${"ab".repeat(32)}`;

const WORKLOADS = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: busybox:1.36
      containers:
        - name: web
          image: nginx
          imagePullPolicy: IfNotPresent
        - name: sidecar
          image: "quay.io/prometheus/node-exporter:v1.6.1"
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: backup
              image: registry.example.com:5000/tools/backup:2.0@${DIGEST}
---
apiVersion: v1
kind: Pod
metadata: {name: debug}
spec:
  containers:
    - {name: app, image: "docker.io/library/nginx:latest"}
  ephemeralContainers:
    - name: debugger
      image: ghcr.io/example/debug:0.1
---
apiVersion: v1
kind: List
items:
  - apiVersion: apps/v1
    kind: DaemonSet
    metadata: {name: agent}
    spec:
      template:
        spec:
          containers:
            - name: agent
              image: k8s.gcr.io/agent:3
`;

const CRD_AND_CONFIG = `
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata:
  name: main
spec:
  image: quay.io/prometheus/prometheus:v2.45.0
  baseImage: quay.io/prometheus/prometheus
  version: v2.45.0
  description: "the image of the app"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  annotations:
    note: "this image is great"
data:
  config.yaml: |
    image: should-not-be-found:1.0
    imagePullPolicy: Always
  description: the image of the app
---
apiVersion: v1
kind: Secret
metadata: {name: s}
stringData:
  image: secret-not-an-image:1.0
`;

describe("discoverImages: manifests", () => {
  it("finds images of workloads, initContainers, ephemeralContainers, CronJobs, Lists and CRDs, and nothing else", async () => {
    // GIVEN manifests with workloads, a Prometheus CR, a ConfigMap whose text mentions images, and a Secret
    await put("manifests/workloads.yaml", WORKLOADS);
    await put("manifests/nested/crd.yml", CRD_AND_CONFIG);
    await put("manifests/pod.json", JSON.stringify({ apiVersion: "v1", kind: "Pod", spec: { containers: [{ name: "x", image: "alpine:3.19" }] } }));

    // WHEN images are discovered
    const { images, warnings } = await discoverImages(root, { helmBinary: null });

    // THEN exactly the container and CR images are found, normalised
    expect(images.map((i) => i.image)).toEqual([
      "docker.io/library/alpine:3.19",
      "docker.io/library/busybox:1.36",
      "docker.io/library/nginx:latest",
      "ghcr.io/example/debug:0.1",
      "k8s.gcr.io/agent:3",
      "quay.io/prometheus/node-exporter:v1.6.1",
      "quay.io/prometheus/prometheus:v2.45.0",
      `registry.example.com:5000/tools/backup:2.0@${DIGEST}`,
    ]);
    // AND `nginx` and `docker.io/library/nginx:latest` are one image
    expect(images.find((i) => i.image === "docker.io/library/nginx:latest")!.sources).toEqual(["manifests/workloads.yaml"]);
    expect(images.find((i) => i.image.startsWith("quay.io/prometheus/prometheus"))!.sources).toEqual(["manifests/nested/crd.yml"]);
    expect(images.some((i) => i.image.includes("should-not-be-found"))).toBe(false);
    expect(images.some((i) => i.image.includes("secret-not-an-image"))).toBe(false);
    expect(warnings).toEqual([]);
  });

  it("skips templated images and unparseable files with warnings naming the file", async () => {
    // GIVEN a manifest with a templated image, a broken YAML file and an invalid image value
    await put(
      "manifests/tmpl.yaml",
      `apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - image: "{{ .Values.image }}"\n    - image: "\${REGISTRY}/app:1"\n    - image: "Not An Image"\n`,
    );
    await put("manifests/broken.yaml", "kind: Pod\nspec: [unclosed\n  - a: b: c\n");
    await put("manifests/ok.yaml", "kind: Pod\nspec: {containers: [{image: redis:7}]}\n");

    // WHEN images are discovered
    const { images, warnings } = await discoverImages(root, { helmBinary: null });

    // THEN only the real image is found and each skip is reported
    expect(images.map((i) => i.image)).toEqual(["docker.io/library/redis:7"]);
    expect(warnings.some((w) => w.startsWith("manifests/broken.yaml: not valid YAML"))).toBe(true);
    expect(warnings.some((w) => w.includes("manifests/tmpl.yaml") && w.includes("{{ .Values.image }}") && w.includes("templated"))).toBe(true);
    expect(warnings.some((w) => w.includes("manifests/tmpl.yaml") && w.includes("${REGISTRY}/app:1"))).toBe(true);
    expect(warnings.some((w) => w.includes('"Not An Image" is not a valid image reference'))).toBe(true);
  });
});

const CHART = `apiVersion: v2
name: myapp
version: 0.1.0
appVersion: "1.10"
dependencies:
  - name: cache
    version: 0.1.0
`;

const VALUES = `
image:
  repository: example/myapp
  tag: ""
  pullPolicy: IfNotPresent
controller:
  image:
    registry: registry.k8s.io
    image: ingress-nginx/controller
    tag: "v1.9.4"
    digest: ${DIGEST}
images:
  worker:
    repository: quay.io/example/worker
    tag: 2.1.0
  helper:
    repository: ""
metrics:
  image: "prom/statsd-exporter:v0.26.0"
  imagePullPolicy: Always
docs:
  description: "the image of the app"
  repository: "https://github.com/example/myapp.git"
templated:
  image: "{{ .Values.other }}"
cache:
  image:
    tag: "7.2-override"
`;

const BITNAMI_CHART = `apiVersion: v2\nname: cache\nversion: 0.1.0\nappVersion: 7.2.0\n`;
const BITNAMI_VALUES = `
global:
  imageRegistry: ""
image:
  registry: docker.io
  repository: bitnami/redis
  tag: 7.2.0-debian-12
  digest: ""
sentinel:
  image:
    registry: docker.io
    repository: bitnami/redis-sentinel
`;

describe("discoverImages: Helm charts without helm", () => {
  it("collects images from values.yaml by convention, subcharts included, tags defaulting to appVersion", async () => {
    // GIVEN a chart with nested repository/tag maps, an ingress-nginx-style map, an image string, and a bitnami-style subchart
    await put("charts/myapp/Chart.yaml", CHART);
    await put("charts/myapp/values.yaml", VALUES);
    await put("charts/myapp/templates/deployment.yaml", `{{- if .Values.enabled }}\napiVersion: apps/v1\n{{- end }}\n`);
    await put(
      "charts/myapp/templates/job.yaml",
      `apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      containers:\n        - image: busybox:1.36\n`,
    );
    await put("charts/myapp/charts/cache/Chart.yaml", BITNAMI_CHART);
    await put("charts/myapp/charts/cache/values.yaml", BITNAMI_VALUES);

    // WHEN images are discovered without helm
    const { images } = await discoverImages(root, { helmBinary: null });
    const names = images.map((i) => i.image);

    // THEN the conventional images are found
    expect(names).toContain("docker.io/example/myapp:1.10"); // tag "" -> appVersion, kept as the string "1.10"
    expect(names).toContain(`registry.k8s.io/ingress-nginx/controller:v1.9.4@${DIGEST}`);
    expect(names).toContain("quay.io/example/worker:2.1.0");
    expect(names).toContain("docker.io/prom/statsd-exporter:v0.26.0");
    // AND the subchart's values are merged with the parent's (tag overridden), the sentinel defaults to the subchart's appVersion
    expect(names).toContain("docker.io/bitnami/redis:7.2-override");
    expect(names).toContain("docker.io/bitnami/redis-sentinel:7.2.0");
    // AND a literal image in a template that parses is found too
    expect(names).toContain("docker.io/library/busybox:1.36");
    // AND nothing else: not the git repository, not the templated value, not the empty repository
    expect(names).toHaveLength(7);
    expect(images.find((i) => i.image === "docker.io/bitnami/redis:7.2-override")!.sources).toEqual(["charts/myapp/charts/cache/values.yaml"]);
  });

  it("reads packaged subcharts (.tgz) and honours global.imageRegistry", async () => {
    // GIVEN a chart whose subchart is a helm-package archive, and a parent that sets global.imageRegistry
    await put("charts/parent/Chart.yaml", `apiVersion: v2\nname: parent\nversion: 1.0.0\nappVersion: "2.0"\n`);
    await put("charts/parent/values.yaml", `global:\n  imageRegistry: mirror.example.com\n`);
    const tar = pack();
    tar.entry({ name: "cache/Chart.yaml" }, BITNAMI_CHART);
    tar.entry({ name: "cache/values.yaml" }, BITNAMI_VALUES);
    tar.finalize();
    const chunks: Buffer[] = [];
    for await (const c of tar) chunks.push(Buffer.from(c as Uint8Array));
    await mkdir(join(root, "charts/parent/charts"), { recursive: true });
    await writeFile(join(root, "charts/parent/charts/cache-0.1.0.tgz"), gzipSync(Buffer.concat(chunks)));

    // WHEN images are discovered
    const { images } = await discoverImages(root, { helmBinary: null });

    // THEN the archive's images are found, with the global registry override
    expect(images.map((i) => i.image)).toEqual(["mirror.example.com/bitnami/redis-sentinel:7.2.0", "mirror.example.com/bitnami/redis:7.2.0-debian-12"]);
  });

  it("fails on a chart whose values.yaml does not parse", async () => {
    await put("charts/bad/Chart.yaml", `apiVersion: v2\nname: bad\nversion: 1.0.0\n`);
    await put("charts/bad/values.yaml", `image: [unclosed\n`);
    await expect(discoverImages(root, { helmBinary: null })).rejects.toThrow(/charts\/bad\/values\.yaml: invalid YAML/);
  });
});

describe("discoverImages: helm template", () => {
  it("runs helm template on each chart and scans the rendered manifests, keeping the template as the source", async () => {
    // GIVEN a chart and a `helm` that renders it (a stand-in script; no helm on this machine)
    await put("charts/web/Chart.yaml", `apiVersion: v2\nname: web\nversion: 0.1.0\n`);
    await put("charts/web/values.yaml", `image:\n  repository: nginx\n  tag: "1.25"\n`);
    const args = join(root, "helm-args");
    const helm = await put(
      "bin/helm",
      `#!/bin/sh\necho "$@" > ${args}\ncat <<'EOF'\n---\n# Source: web/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - image: "nginx:1.25"\n        - image: "rendered/sidecar:0.3"\n---\n# Source: web/charts/db/templates/sts.yaml\napiVersion: apps/v1\nkind: StatefulSet\nspec:\n  template:\n    spec:\n      containers:\n        - image: postgres:16\nEOF\n`,
    );
    await chmod(helm, 0o755);

    // WHEN images are discovered with that helm
    const { images, warnings } = await discoverImages(root, { helmBinary: helm });

    // THEN rendered images and values images are found, sources naming the template
    expect(images.map((i) => i.image)).toEqual(["docker.io/library/nginx:1.25", "docker.io/library/postgres:16", "docker.io/rendered/sidecar:0.3"]);
    expect(images.find((i) => i.image.includes("postgres"))!.sources).toEqual(["charts/web/charts/db/templates/sts.yaml (helm template)"]);
    expect(images.find((i) => i.image.includes("nginx"))!.sources).toEqual(["charts/web/values.yaml", "charts/web/templates/deployment.yaml (helm template)"]);
    expect(await readFile(args, "utf8")).toBe(`template sealant ${join(root, "charts/web")}\n`);
    expect(warnings).toEqual([]);
  });

  it("falls back to values.yaml with a warning when helm template fails", async () => {
    await put("charts/web/Chart.yaml", `apiVersion: v2\nname: web\nversion: 0.1.0\n`);
    await put("charts/web/values.yaml", `image:\n  repository: nginx\n  tag: "1.25"\n`);
    const helm = await put("bin/helm", `#!/bin/sh\necho "Error: template: boom" >&2\nexit 1\n`);
    await chmod(helm, 0o755);

    const { images, warnings } = await discoverImages(root, { helmBinary: helm });

    expect(images.map((i) => i.image)).toEqual(["docker.io/library/nginx:1.25"]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^charts\/web: helm template .* failed: Error: template: boom/);
  });
});

describe("discoverImages: applications", () => {
  it("sets appName for images from application/apps/<name>/ and for listed app directories", async () => {
    // GIVEN a raw-manifest app, a chart app, and an app listed by directory elsewhere
    await put("application/apps/shop/deploy.yaml", `kind: Deployment\nspec: {template: {spec: {containers: [{image: shop/web:3}]}}}\n`);
    await put("application/apps/db/Chart.yaml", `apiVersion: v2\nname: db\nversion: 1.0.0\nappVersion: "16.1"\n`);
    await put("application/apps/db/values.yaml", `image:\n  repository: postgres\n`);
    await put("application/extra/metrics/pod.yaml", `kind: Pod\nspec: {containers: [{image: prom/prometheus:v2.45.0}]}\n`);
    await put("manifests/shared.yaml", `kind: Pod\nspec: {containers: [{image: shop/web:3}]}\n`);

    // WHEN images are discovered with one app listed explicitly
    const { images } = await discoverImages(root, { helmBinary: null, apps: [{ name: "metrics", dir: "application/extra/metrics" }] });

    // THEN each image carries its app
    const byImage = Object.fromEntries(images.map((i) => [i.image, i]));
    expect(byImage["docker.io/library/postgres:16.1"]!.appName).toBe("db");
    expect(byImage["docker.io/prom/prometheus:v2.45.0"]!.appName).toBe("metrics");
    expect(byImage["docker.io/shop/web:3"]!.appName).toBe("shop");
    expect(byImage["docker.io/shop/web:3"]!.sources.sort()).toEqual(["application/apps/shop/deploy.yaml", "manifests/shared.yaml"]);
  });
});

describe("discoverImages: image lists", () => {
  it("reads imageList files with comments, extra lists, and removes the ignored list after normalisation", async () => {
    // GIVEN sealer's imageList files, an extra list, an ignored list, and a manifest; duplicates in different spellings
    await put("imageList", `# core images\nnginx:1.25\n\n  docker.io/library/redis:7   # cache\n'quay.io/coreos/etcd:v3.5.9'\n`);
    await put("manifests/imageList", `index.docker.io/library/nginx:1.25\nbusybox\n`);
    await put("manifests/app.yaml", `kind: Pod\nspec: {containers: [{image: "docker.io/library/nginx:1.25"}]}\n`);
    const extra = await put("lists/extra.txt", `# extra\nghcr.io/example/tool:1@${DIGEST}\n`);
    const ignored = await put("lists/ignored.txt", `# never cache these\nbusybox:latest\nredis:7\n`);

    // WHEN images are discovered
    const { images } = await discoverImages(root, { helmBinary: null, imageListFiles: [extra], ignoredImageListFiles: [ignored] });

    // THEN duplicates collapse into one entry with every source, ignored ones are gone
    expect(images.map((i) => i.image)).toEqual(["docker.io/library/nginx:1.25", `ghcr.io/example/tool:1@${DIGEST}`, "quay.io/coreos/etcd:v3.5.9"]);
    expect(images[0]!.sources).toEqual(["manifests/app.yaml", "imageList", "manifests/imageList"]);
    expect(images[1]!.sources).toEqual([extra]);
  });

  it("fails on an invalid line, naming the file and line", async () => {
    // GIVEN an imageList with an invalid reference on line 3
    await put("imageList", `# list\nnginx:1.25\nNot/A Valid:Ref\n`);

    // WHEN / THEN discovery fails with file:line
    const err = await discoverImages(root, { helmBinary: null }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageListError);
    expect((err as Error).message).toMatch(/^imageList:3: invalid image reference "Not\/A Valid:Ref"/);
  });

  it("fails when an extra image list file does not exist", async () => {
    await expect(discoverImages(root, { helmBinary: null, imageListFiles: [join(root, "missing.txt")] })).rejects.toThrow(/image list .*missing\.txt/);
  });

  it("parseImageList keeps tag and digest together", () => {
    expect(parseImageList(`repo/app:1.0@${DIGEST}\napp@${DIGEST}\n`, "x")).toEqual([
      { image: `docker.io/repo/app:1.0@${DIGEST}`, line: 1 },
      { image: `docker.io/library/app@${DIGEST}`, line: 2 },
    ]);
  });
});
