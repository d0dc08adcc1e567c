/**
 * The file names under an image's `scripts/` (`containerd.sh`, `docker.sh`, `init-kube.sh`), read
 * from its layers without extracting anything, whiteouts applied: what tells, before any host is
 * touched, whether the image's hosts run Docker (see docker-mirrors.ts runsDocker). Each layer's
 * names are remembered in the store, so a layer is read once.
 */
import { posix } from "node:path";
import type { Digest } from "../../image/digest";
import type { ImageStore } from "../../image/store";
import type { PlatformImage } from "./image";
import { layerEntries } from "./layer-entries";

const DIR = "scripts";
const WHITEOUT_DIR = `.wh.${DIR}`;

type LayerScripts = { digests: Digest[]; names: string[]; whiteouts: string[] };

export async function imageScriptNames(store: ImageStore, image: PlatformImage): Promise<string[]> {
  const names = new Set<string>();
  for (const layer of image.layers) {
    if (layer.registryOnly) continue;
    const key = `scripts:${layer.digest}`;
    let found = await store.readPin<LayerScripts>(key);
    if (!found) {
      found = await scanLayer(store, layer);
      await store.pin(key, found);
    }
    // The layer's whiteouts hide what the layers under it had: scripts/ itself, all of it (opaque), or one file.
    for (const w of found.whiteouts) {
      const base = posix.basename(w);
      if (w === WHITEOUT_DIR || base === ".wh..wh..opq") names.clear();
      else names.delete(base.slice(".wh.".length));
    }
    for (const n of found.names) names.add(n);
  }
  return [...names].sort();
}

async function scanLayer(store: ImageStore, layer: PlatformImage["layers"][number]): Promise<LayerScripts> {
  const out: LayerScripts = { digests: [layer.digest], names: [], whiteouts: [] };
  for await (const { name, entry } of layerEntries(store, layer)) {
    const base = posix.basename(name);
    // A whiteout of scripts/ itself, or of a file in it (scripts/.wh.docker.sh, scripts/.wh..wh..opq).
    if (base.startsWith(".wh.") && (name === WHITEOUT_DIR || posix.dirname(name) === DIR)) out.whiteouts.push(name);
    else if (posix.dirname(name) === DIR && (entry.header.type === "file" || entry.header.type === "symlink")) out.names.push(base);
    entry.resume();
  }
  return out;
}
