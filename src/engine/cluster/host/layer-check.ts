import { join } from "node:path";
import { checkLayerStack } from "../../image/archive";
import { exists, writeFileAtomic } from "../../util/fs";
import type { ImageStore } from "../../image/store";
import type { Digest } from "../../image/digest";

/**
 * Hosts assemble an image by removing each layer's whiteouts with `rm -rf` and copying its
 * entries over the layers below, in their own shell: a layer sealant did not write (pulled,
 * loaded, a FROM base passed through) with `esc -> /some/dir` and a later `esc/.wh.victim`
 * would delete the host's /some/dir/victim. So before any layer leaves the operator, the stack
 * is read once as a host will apply it and refused if any name passes through a link.
 * A layer stack is immutable (its manifest digest names it), so a passed check is remembered
 * beside the store and a re-apply reads no layer again.
 */
export async function checkLayersForHosts(
  store: ImageStore,
  ref: string,
  platform: string,
  image: { manifestDigest: Digest; layers: ReadonlyArray<{ digest: Digest; mediaType: string }> },
): Promise<void> {
  const marker = join(store.root, "checked", `layer-paths-${image.manifestDigest.replace(":", "-")}`);
  if (await exists(marker)) return;
  const layers = image.layers.map((l, i) => ({ digest: l.digest, mediaType: l.mediaType, label: `layer ${i + 1} of ${ref} (${platform})` }));
  await checkLayerStack(store, layers);
  await writeFileAtomic(marker, `${new Date().toISOString()}\n`, 0o644, false);
}
