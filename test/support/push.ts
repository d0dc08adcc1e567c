import { Readable } from "node:stream";
import { sha256, type Digest } from "../../src/engine/image/digest";
import { MediaType } from "../../src/engine/image/media-types";
import type { RegistryClient } from "../../src/engine/image/registry";
import type { Manifest } from "../../src/engine/image/types";

/**
 * Pushes a one-layer OCI image with the client under test: the layer blob (streamed by
 * `open`, so callers can choose chunking), a config naming its diff id, then the manifest.
 */
export async function pushOneLayerImage(
  c: RegistryClient,
  repo: string,
  tag: string,
  layer: { digest: Digest; size: number; diffId: Digest; open: () => Readable },
  labels?: Record<string, string>,
): Promise<{ manifest: Buffer; digest: Digest; config: Buffer; layerResult: string }> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      ...(labels ? { config: { Labels: labels } } : {}),
      rootfs: { type: "layers", diff_ids: [layer.diffId] },
    }),
  );
  const layerResult = await c.pushBlob(repo, { digest: layer.digest, size: layer.size }, layer.open);
  await c.pushBlob(repo, { digest: sha256(config), size: config.length }, () => Readable.from([config]));
  const doc: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256(config), size: config.length },
    layers: [{ mediaType: MediaType.ociLayerGzip, digest: layer.digest, size: layer.size }],
  };
  const manifest = Buffer.from(JSON.stringify(doc));
  const digest = await c.putManifest(repo, tag, manifest, MediaType.ociManifest);
  return { manifest, digest, config, layerResult };
}
