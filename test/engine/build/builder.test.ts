import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../src/engine/build";
import { readMetadata } from "../../../src/engine/image/metadata";
import { Session } from "../../../src/engine/session";
import type { ImageConfig } from "../../../src/engine/image/types";
import { extractLayer } from "../../../src/engine/build/layer-extract";
import { EXAMPLE_APP, startExampleUpstream, type ExampleUpstream } from "../../support/upstream";

let upstream: ExampleUpstream;
const temps: string[] = [];

async function temp(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

async function session(): Promise<Session> {
  return Session.open({ home: await temp("sealant-home-"), mirrors: upstream.mirrors });
}

async function context(files: Record<string, string>): Promise<string> {
  const dir = await temp("sealant-ctx-");
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

beforeAll(async () => {
  upstream = await startExampleUpstream();
});

afterAll(async () => {
  await upstream?.stop();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

describe("building the example", () => {
  it("gives the same digest in two fresh stores (reproducible layers)", async () => {
    // GIVEN two empty stores WHEN the example is built in each
    const [a, b] = [await session(), await session()];
    const ra = await build(a, { context: EXAMPLE_APP, tag: "example/app:1" });
    const rb = await build(b, { context: EXAMPLE_APP, tag: "example/app:1" });
    // THEN the image digests are identical
    expect(ra.digest).toBe(rb.digest);
    expect(ra.metadata.containerImages.map((c) => c.image)).toEqual([
      "docker.io/library/busybox:1.36",
      "docker.io/library/nginx:1.25",
      "docker.io/library/redis:7.2",
      "quay.io/prometheus/node-exporter:v1.7.0",
    ]);
    a.close();
    b.close();
  });

  it("records apps, launch, env and labels in sealant's and sealer's annotations", async () => {
    const s = await session();
    const r = await build(s, { context: EXAMPLE_APP, tag: "example/app:1", buildArgs: { VERSION: "2.0.0" } });
    const { manifest } = await s.store.manifestFor(r.descriptor);
    const config = await s.store.readJson<ImageConfig>(manifest.config.digest);
    const meta = readMetadata(manifest, config);
    expect(meta.applications).toEqual([{ name: "web", type: "kube", files: ["web-svc.yaml", "web.yaml"], env: { REPLICAS: "2" } }]);
    expect(meta.launch).toEqual({ apps: ["web"] });
    expect(config.config?.Env).toContain("APP_NAMESPACE=demo");
    expect(config.config?.Labels?.["org.opencontainers.image.version"]).toBe("2.0.0");
    const sealer = JSON.parse(manifest.annotations!["sealer.image.extension"]!);
    expect(sealer.launch.app_names).toEqual(["web"]);
    expect(JSON.parse(manifest.annotations!["sealer.image.container.images"]!)).toHaveLength(4);
    s.close();
  });
});

describe("build cache", () => {
  it("reuses every layer on an unchanged rebuild and rebuilds from a changed file on", async () => {
    // GIVEN a built copy of the example
    const ctx = await temp("sealant-ctx-");
    await cp(EXAMPLE_APP, ctx, { recursive: true });
    const s = await session();
    const first = await build(s, { context: ctx, tag: "app:1" });
    // WHEN rebuilt unchanged THEN every layer is reused and the digest is the same
    const again = await build(s, { context: ctx, tag: "app:1" });
    expect(again.digest).toBe(first.digest);
    expect(again.platforms[0]!.layers.every((l) => l.cached)).toBe(true);
    // WHEN one file of the second COPY changes
    await writeFile(join(ctx, "charts/metrics/values.yaml"), "image:\n  registry: quay.io\n  repository: prometheus/node-exporter\n");
    const changed = await build(s, { context: ctx, tag: "app:1" });
    // THEN layers before it are reused, it and everything after are rebuilt
    const flags = changed.platforms[0]!.layers.map((l) => l.cached);
    expect(flags).toEqual([true, false, false, false, false, false]);
    expect(changed.digest).not.toBe(first.digest);
    // AND --no-cache rebuilds everything yet gives the same digest
    const nocache = await build(s, { context: ctx, tag: "app:1", noCache: true });
    expect(nocache.platforms[0]!.layers.every((l) => !l.cached)).toBe(true);
    expect(nocache.digest).toBe(changed.digest);
    s.close();
  });
});

describe("RUN", () => {
  it("turns additions, changes and deletions into a layer with whiteouts", async () => {
    // GIVEN an image with two files WHEN a RUN deletes one and changes the other
    const s = await session();
    const ctx = await context({
      Kubefile: "FROM scratch\nCOPY files/ etc/\nRUN rm etc/old.conf && echo new > etc/keep.conf && mkdir -p bin && echo hi > bin/tool\n",
      "files/old.conf": "old\n",
      "files/keep.conf": "keep\n",
    });
    const r = await build(s, { context: ctx, tag: "run:1" });
    const { manifest } = await s.store.manifestFor(r.descriptor);
    // THEN applying the layers gives the final tree, without the deleted file
    const root = await temp("sealant-rootfs-");
    for (const l of manifest.layers) await extractLayer(s.store, l.digest, root);
    expect(await readFile(join(root, "etc/keep.conf"), "utf8")).toBe("new\n");
    expect(await readFile(join(root, "bin/tool"), "utf8")).toBe("hi\n");
    await expect(readFile(join(root, "etc/old.conf"))).rejects.toThrow(/ENOENT/);
    s.close();
  });

  it("reports the exit code and the stderr tail of a failing command with its line", async () => {
    const s = await session();
    const ctx = await context({ Kubefile: "FROM scratch\nCOPY a a\nRUN echo about to fail >&2 && exit 7\n", a: "x" });
    await expect(build(s, { context: ctx, tag: "fail:1" })).rejects.toThrow(/Kubefile:3: RUN echo about to fail >&2 && exit 7 exited 7:\nabout to fail/);
    await expect(s.store.resolve("fail:1")).rejects.toThrow(/not found/);
    s.close();
  });

  it("gets ARG and ENV values in its environment", async () => {
    const s = await session();
    const ctx = await context({ Kubefile: 'FROM scratch\nARG WHO=world\nENV GREETING=hello\nRUN echo "$GREETING $WHO" > out.txt\n' });
    const r = await build(s, { context: ctx, tag: "env:1", buildArgs: { WHO: "sealant" } });
    const { manifest } = await s.store.manifestFor(r.descriptor);
    const root = await temp("sealant-rootfs-");
    for (const l of manifest.layers) await extractLayer(s.store, l.digest, root);
    expect(await readFile(join(root, "out.txt"), "utf8")).toBe("hello sealant\n");
    s.close();
  });
});

describe("bad input", () => {
  it("refuses a COPY source outside the build context", async () => {
    const s = await session();
    const ctx = await context({ Kubefile: "FROM scratch\nCOPY ../../etc/passwd x\n" });
    await expect(build(s, { context: ctx, tag: "bad:1" })).rejects.toThrow(/Kubefile:2: COPY source "\.\.\/\.\.\/etc\/passwd" is outside the build context/);
    s.close();
  });

  it("refuses a symlink in the context that points outside it", async () => {
    const s = await session();
    const ctx = await context({ Kubefile: "FROM scratch\nCOPY link x\n" });
    const { symlink } = await import("node:fs/promises");
    await symlink("/etc/hostname", join(ctx, "link"));
    await expect(build(s, { context: ctx, tag: "bad:1" })).rejects.toThrow(/COPY source "link" resolves to \/etc\/hostname, outside the build context/);
    s.close();
  });

  it("names the line of a LAUNCH that is not last", async () => {
    const s = await session();
    const ctx = await context({ Kubefile: 'FROM scratch\nAPP web local://web.yaml\nLAUNCH ["web"]\nCOPY web.yaml x\n', "web.yaml": "kind: List\n" });
    await expect(build(s, { context: ctx, tag: "bad:1" })).rejects.toThrow(/Kubefile:3:.*LAUNCH/);
    s.close();
  });

  it("fails with the reference when the base image does not exist", async () => {
    const s = await session();
    const ctx = await context({ Kubefile: "FROM docker.io/library/no-such-base:1\nCOPY a a\n", a: "x" });
    await expect(build(s, { context: ctx, tag: "bad:1" })).rejects.toThrow(
      /Kubefile:1: FROM docker.io\/library\/no-such-base:1: .*(MANIFEST_UNKNOWN|NAME_UNKNOWN|404)/,
    );
    s.close();
  });

  it("fails the build naming an image that cannot be fetched", async () => {
    const s = await session();
    const ctx = await context({ Kubefile: "FROM scratch\nCOPY imageList .\n", imageList: "docker.io/library/missing:0.1\n" });
    await expect(build(s, { context: ctx, tag: "bad:1" })).rejects.toThrow(/docker\.io\/library\/missing:0\.1/);
    await expect(s.store.resolve("bad:1")).rejects.toThrow(/not found/);
    s.close();
  });

  it("refuses an app whose files are neither YAML, shell nor a chart", async () => {
    const s = await session();
    const ctx = await context({ Kubefile: "FROM scratch\nAPP mix local://a.yaml local://b.txt\n", "a.yaml": "kind: List\n", "b.txt": "x" });
    await expect(build(s, { context: ctx, tag: "bad:1" })).rejects.toThrow(/Kubefile:2: APP mix: cannot tell the app type.*b\.txt/);
    s.close();
  });
});

describe("images FROM another cluster image", () => {
  it("inherits the base's layers, apps and container images", async () => {
    const s = await session();
    const base = await build(s, { context: EXAMPLE_APP, tag: "example/base:1" });
    const ctx = await context({ Kubefile: 'FROM example/base:1\nAPP extra local://extra.sh\nLAUNCH ["web", "extra"]\n', "extra.sh": "echo extra\n" });
    const child = await build(s, { context: ctx, tag: "example/child:1" });
    const { manifest } = await s.store.manifestFor(child.descriptor);
    const { manifest: baseManifest } = await s.store.manifestFor(base.descriptor);
    expect(manifest.layers.slice(0, baseManifest.layers.length)).toEqual(baseManifest.layers);
    expect(child.metadata.kind).toBe("app-installer");
    expect(child.metadata.applications.map((a) => `${a.name}:${a.type}`)).toEqual(["web:kube", "extra:shell"]);
    expect(child.metadata.launch).toEqual({ apps: ["web", "extra"] });
    expect(child.metadata.containerImages).toHaveLength(4);
    s.close();
  });
});

describe("multi-platform", () => {
  it("builds an OCI index with one manifest per platform, ${ARCH} substituted", async () => {
    const s = await session();
    const ctx = await context({ Kubefile: "FROM scratch\nCOPY bin/${ARCH}/tool bin/tool\n", "bin/amd64/tool": "amd64\n", "bin/arm64/tool": "arm64\n" });
    const r = await build(s, {
      context: ctx,
      tag: "multi:1",
      platforms: [
        { os: "linux", architecture: "amd64" },
        { os: "linux", architecture: "arm64" },
      ],
    });
    expect(r.descriptor.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    const index = await s.store.readIndexBlob(r.digest);
    expect(index.manifests.map((m) => m.platform?.architecture)).toEqual(["amd64", "arm64"]);
    for (const arch of ["amd64", "arm64"]) {
      const { manifest } = await s.store.manifestFor(r.descriptor, { os: "linux", architecture: arch });
      const root = await temp("sealant-rootfs-");
      for (const l of manifest.layers) await extractLayer(s.store, l.digest, root);
      expect(await readFile(join(root, "bin/tool"), "utf8")).toBe(`${arch}\n`);
    }
    s.close();
  });
});

describe("ADD", () => {
  it("unpacks a local tar.gz archive and adds a file downloaded from a URL as is", async () => {
    // GIVEN a tar.gz in the context and a file served over http on loopback
    const { createServer } = await import("node:http");
    const { execFileSync } = await import("node:child_process");
    const server = createServer((req, res) => {
      if (req.url === "/files/tool.tar.gz") res.end("served-bytes");
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const ctx = await context({ "src/bin/hello": "#!/bin/sh\necho hi\n" });
      execFileSync("tar", ["-czf", join(ctx, "tools.tar.gz"), "-C", join(ctx, "src"), "bin"]);
      await writeFile(join(ctx, "Kubefile"), `FROM scratch\nADD tools.tar.gz opt/\nADD http://127.0.0.1:${port}/files/tool.tar.gz downloads/\n`);
      const s = await session();
      const r = await build(s, { context: ctx, tag: "add:1" });
      const { manifest } = await s.store.manifestFor(r.descriptor);
      const root = await temp("sealant-rootfs-");
      for (const l of manifest.layers) await extractLayer(s.store, l.digest, root);
      // THEN the archive is unpacked and the download kept whole under its URL name
      expect(await readFile(join(root, "opt/bin/hello"), "utf8")).toBe("#!/bin/sh\necho hi\n");
      expect(await readFile(join(root, "downloads/tool.tar.gz"), "utf8")).toBe("served-bytes");
      // AND a URL that answers 404 fails with the line and the status
      await writeFile(join(ctx, "Kubefile"), `FROM scratch\nADD http://127.0.0.1:${port}/missing.bin x\n`);
      await expect(build(s, { context: ctx, tag: "add:2" })).rejects.toThrow(
        /Kubefile:2: ADD http:\/\/127\.0\.0\.1:\d+\/missing\.bin: download failed: HTTP 404/,
      );
      s.close();
    } finally {
      server.close();
    }
  });
});

describe("COPY flags", () => {
  it("applies --chmod and a numeric --chown to the layer's entries, and refuses names", async () => {
    const s = await session();
    const ctx = await context({ Kubefile: "FROM scratch\nCOPY --chmod=0750 --chown=1000:2000 tool bin/tool\n", tool: "#!/bin/sh\n" });
    const r = await build(s, { context: ctx, tag: "flags:1" });
    const { manifest } = await s.store.manifestFor(r.descriptor);
    const tar = await import("tar-stream");
    const { createGunzip } = await import("node:zlib");
    const ex = tar.extract();
    s.store.openBlob(manifest.layers[0]!.digest).pipe(createGunzip()).pipe(ex);
    const headers: Record<string, { mode: number; uid: number; gid: number }> = {};
    for await (const e of ex) {
      headers[e.header.name] = { mode: e.header.mode, uid: e.header.uid, gid: e.header.gid };
      e.resume();
    }
    expect(headers["bin/tool"]).toEqual({ mode: 0o750, uid: 1000, gid: 2000 });
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nCOPY --chown=nginx tool bin/tool\n");
    await expect(build(s, { context: ctx, tag: "flags:2" })).rejects.toThrow(/Kubefile:2: COPY --chown=nginx: expected a numeric uid\[:gid\]/);
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nRUN --network=none true\n");
    await expect(build(s, { context: ctx, tag: "flags:3" })).rejects.toThrow(/Kubefile:2: RUN --network=none: RUN takes no flags/);
    s.close();
  });
});
