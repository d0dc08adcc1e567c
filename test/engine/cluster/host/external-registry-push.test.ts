import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../../src/engine/build";
import { externalClient, pushImageRegistry } from "../../../../src/engine/cluster/host/external-registry";
import { resolveClusterImage, type ClusterImage } from "../../../../src/engine/cluster/host/image";
import { staticCredentials } from "../../../../src/engine/image/credentials";
import { Session } from "../../../../src/engine/session";
import { Readable } from "node:stream";
import { gunzipSync } from "node:zlib";
import { sha256 } from "../../../../src/engine/image/digest";
import { MediaType } from "../../../../src/engine/image/media-types";
import { RegistryClient } from "../../../../src/engine/image/registry";
import { tarGzBytes } from "../../../support/hostile-archive";
import { startRegistry, type TestRegistry } from "../../../support/registry";
import { startExampleUpstream } from "../../../support/upstream";

/**
 * Pushing a cluster image's container images into an external registry (a real docker-registry
 * with TLS from a private CA and htpasswd), without hosts: a push broken off part way resumes
 * with what the registry has, and the registry's refusals are said in the user's terms.
 */
const PASSWORD = "Push-Test-pw-7";

describe("pushing the image's container images to an external registry", () => {
  let home: string;
  let session: Session;
  let harbor: TestRegistry;
  let image: ClusterImage;

  beforeAll(async () => {
    const upstream = await startExampleUpstream();
    const multi = await startRegistry();
    try {
      await pushTwoPlatforms(multi.host);
      home = await mkdtemp(join(tmpdir(), "sealant-ext-push-"));
      session = await Session.open({ home, mirrors: upstream.mirrors, env: {} });
      const context = join(home, "ctx");
      await mkdir(join(context, "manifests"), { recursive: true });
      await writeFile(join(context, "Kubefile"), "FROM scratch\nCOPY manifests manifests\n");
      await writeFile(
        join(context, "manifests/pods.yaml"),
        ["busybox:1.36", "docker.io/library/nginx:1.25", "redis:7.2", `${multi.host}/multi/app:1.0`]
          .map((i, n) => `---\napiVersion: v1\nkind: Pod\nmetadata: {name: p${n}}\nspec: {containers: [{name: c, image: "${i}"}]}\n`)
          .join(""),
      );
      const r = await build(session, { context, tag: "example/ext-push:1" });
      image = await resolveClusterImage(session, `example/ext-push:1@${r.digest}`);
    } finally {
      await upstream.stop();
      await multi.stop();
    }
    harbor = await startRegistry({ auth: "htpasswd", tls: true, privateCa: true, users: [{ username: "robot", password: PASSWORD }] });
  }, 240_000);
  afterAll(async () => {
    session?.close();
    await harbor?.stop();
    await rm(home, { recursive: true, force: true });
  });

  const target = (over: { password?: string; ca?: string | undefined } = {}) =>
    externalClient(
      { domain: "127.0.0.1", port: Number(harbor.host.split(":")[1]), ...("ca" in over ? (over.ca ? { ca: over.ca } : {}) : { ca: harbor.tlsCert! }) },
      staticCredentials({ username: "robot", password: over.password ?? PASSWORD }),
    );

  it("GIVEN a push stopped after its first upload WHEN pushed again THEN what the registry has is skipped and the rest completes", async () => {
    const client = await target();
    const stop = new AbortController();
    const first = await pushImageRegistry({
      store: session.store,
      image,
      client,
      ext: { namespace: "team" },
      log: (line) => {
        if (line.startsWith("uploaded")) stop.abort();
      },
      signal: stop.signal,
    }).then(
      () => "finished",
      (err: Error) => err.name,
    );
    expect(first).toBe("AbortError");
    const tagsBefore = await client.listTags("team/docker.io/library/busybox");
    const r = await pushImageRegistry({ store: session.store, image, client, ext: { namespace: "team" } });
    expect(r.images).toBe(4);
    expect(r.blobsPresent).toBeGreaterThanOrEqual(1);
    expect(r.blobsUploaded).toBeGreaterThanOrEqual(1);
    for (const [repo, tag] of [
      ["busybox", "1.36"],
      ["nginx", "1.25"],
      ["redis", "7.2"],
    ])
      expect(await client.listTags(`team/docker.io/library/${repo}`), repo).toEqual([tag]);
    expect(tagsBefore).toEqual([]);
    const again = await pushImageRegistry({ store: session.store, image, client, ext: { namespace: "team" } });
    expect(again).toMatchObject({ images: 4, blobsUploaded: 0, blobsMounted: 0, manifestsPut: 0 });
    client.close();
  }, 120_000);

  it("GIVEN a wrong password WHEN pushed THEN the error names the registry and the fields to check, not the password", async () => {
    const client = await target({ password: "Not-the-pw-9" });
    const err = await pushImageRegistry({ store: session.store, image, client, ext: {} }).then(
      () => undefined,
      (e: Error) => e,
    );
    client.close();
    expect(err?.message).toContain(`pushing the image's container images to ${harbor.host}: the registry refused the login (401)`);
    expect(err?.message).toContain("registry.external.username and password");
    expect(err?.message).not.toContain("Not-the-pw-9");
  }, 60_000);

  it("GIVEN no CA for the registry's private one WHEN pushed THEN TLS verification refuses it, naming the registry", async () => {
    const client = await target({ ca: undefined });
    const err = await pushImageRegistry({ store: session.store, image, client, ext: {} }).then(
      () => undefined,
      (e: Error) => e,
    );
    client.close();
    expect(err?.message).toContain(harbor.host);
    expect(err?.message).toMatch(/certificate|self.signed|issuer/i);
  }, 60_000);

  it("GIVEN an upstream index of two platforms, the image carrying one WHEN pushed THEN the tag is an index of that one, said in the log", async () => {
    const client = await target();
    const lines: string[] = [];
    await pushImageRegistry({ store: session.store, image, client, ext: { namespace: "plat" }, log: (l) => lines.push(l) });
    const repo = `plat/${image.metadata.containerImages
      .find((c) => c.image.endsWith("/multi/app:1.0"))!
      .image.split("/")[0]!
      .replace(":", "_")}/multi/app`;
    const index = JSON.parse((await client.getManifest(repo, "1.0")).bytes.toString("utf8")) as { manifests: { platform: { architecture: string } }[] };
    client.close();
    expect(index.manifests.map((m) => m.platform.architecture)).toEqual(["amd64"]);
    expect(lines.some((l) => /the image carries 1 of its 2 platforms; pushed as an index of those/.test(l))).toBe(true);
  }, 60_000);
});

/** `multi/app:1.0` on a plain loopback registry: an OCI index of a linux/amd64 and a linux/arm64 image, one layer each. */
async function pushTwoPlatforms(host: string): Promise<void> {
  const c = new RegistryClient(host);
  const manifests = [];
  for (const architecture of ["amd64", "arm64"]) {
    const layer = tarGzBytes([{ type: "file", name: "arch", content: architecture }]);
    const diffId = sha256(gunzipSync(layer));
    const config = Buffer.from(JSON.stringify({ architecture, os: "linux", rootfs: { type: "layers", diff_ids: [diffId] } }));
    await c.pushBlob("multi/app", { digest: sha256(layer), size: layer.length }, () => Readable.from([layer]));
    await c.pushBlob("multi/app", { digest: sha256(config), size: config.length }, () => Readable.from([config]));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, digest: sha256(config), size: config.length },
        layers: [{ mediaType: MediaType.ociLayerGzip, digest: sha256(layer), size: layer.length }],
      }),
    );
    const digest = await c.putManifest("multi/app", sha256(manifest), manifest, MediaType.ociManifest);
    manifests.push({ mediaType: MediaType.ociManifest, digest, size: manifest.length, platform: { architecture, os: "linux" } });
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }));
  await c.putManifest("multi/app", "1.0", index, MediaType.ociIndex);
  c.close();
}
