import { posix } from "node:path";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";
import type { ImageStore } from "../../image/store";
import type { PlatformImage } from "./image";

/** One entry of a tar being read (tar-stream does not export the type). */
type TarEntry = tar.Extract extends AsyncIterable<infer S> ? S : never;

/**
 * A stored layer's tar entries, read without extracting anything, each with its name normalised
 * (`./etc/x/` → `etc/x`). The caller reads or skips (`resume`) each entry's body before the next.
 */
export async function* layerEntries(store: ImageStore, layer: PlatformImage["layers"][number]): AsyncGenerator<{ name: string; entry: TarEntry }> {
  const raw = store.openBlob(layer.digest);
  const input: Readable = /gzip/.test(layer.mediaType) ? raw.pipe(createGunzip({ chunkSize: 1 << 20 })) : raw;
  raw.on("error", (err) => input.destroy(err));
  const extract = tar.extract();
  input.pipe(extract);
  for await (const entry of extract) {
    yield { name: posix.normalize(entry.header.name).replace(/^\.\//, "").replace(/\/$/, ""), entry };
  }
}
