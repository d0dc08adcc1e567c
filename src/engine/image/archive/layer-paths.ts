/**
 * Checking the paths of a stack of layers as a host will apply them: every layer is unpacked
 * with the host's own `tar -x` into a directory of its own, then the layers are assembled in
 * order — whiteouts first (`rm -rf` of the named path), then `cp -al`. A whiteout or an entry
 * under a link made by an earlier layer is followed there by `rm` (tried: `esc -> /some/dir`
 * then `esc/.wh.victim` in a later layer removed /some/dir/victim on the host), and one under
 * a link of its own layer is written through it by some tars. So no name in the stack may pass
 * through a link, whatever the link's target; a hard link's source may not either, nor leave
 * the layer's directory.
 */
import { createGunzip } from "node:zlib";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import type { Digest } from "../digest";
import type { ImageStore } from "../store";

export interface StackedLayer {
  digest: Digest;
  mediaType: string;
  /** How errors name the layer, e.g. `layer 2 of docker.io/library/app:1`. */
  label: string;
}

/** A stack that a host would apply outside its directory; names the layer, the entry and the link. */
export class LayerPathError extends Error {
  constructor(
    readonly layer: string,
    readonly entry: string,
    reason: string,
  ) {
    super(`${layer}: entry ${JSON.stringify(entry)} ${reason}`);
    this.name = "LayerPathError";
  }
}

interface Link {
  target: string;
  label: string;
}

/** Reads every layer's tar headers in order (the content is skipped) and refuses the first entry that would pass through a link. */
export async function checkLayerStack(store: ImageStore, layers: readonly StackedLayer[]): Promise<void> {
  const links = new Map<string, Link>();
  for (const layer of layers) {
    // tar, tar+gzip (OCI) and tar.gzip (Docker); other blobs (zstd, artifacts) are not unpacked on hosts by sealant.
    if (!/\.tar([+.]gzip)?$/.test(layer.mediaType)) continue;
    const extract = tar.extract();
    const reading = (async () => {
      for await (const entry of extract) {
        checkEntry(entry.header, layer.label, links);
        entry.resume();
      }
    })();
    const blob = store.openBlob(layer.digest);
    const feeding = /gzip/.test(layer.mediaType) ? pipeline(blob, createGunzip(), extract) : pipeline(blob, extract);
    feeding.catch(() => undefined); // awaited below, after the entries
    try {
      await reading;
    } catch (err) {
      extract.destroy();
      blob.destroy();
      await feeding.catch(() => undefined);
      throw err;
    }
    await feeding.catch((err: Error) => {
      throw new Error(`${layer.label} (${layer.digest}) is not a readable tar: ${err.message}`);
    });
  }
}

function checkEntry(header: tar.Header, label: string, links: Map<string, Link>): void {
  const fail = (why: string): never => {
    throw new LayerPathError(label, header.name, why);
  };
  const path = cleanPath(header.name, fail);
  if (path === "") return;
  notThroughLink(path, links, fail);
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "" : path.slice(0, slash);
  const base = path.slice(slash + 1);
  if (base === ".wh..wh..opq") return forgetUnder(links, dir, false);
  if (base.startsWith(".wh.")) return forgetUnder(links, dir === "" ? base.slice(4) : `${dir}/${base.slice(4)}`, true);
  if (header.type === "link") {
    const source = cleanPath(header.linkname ?? "", (why) => fail(`is a hard link to ${JSON.stringify(header.linkname ?? "")}, which ${why}`));
    notThroughLink(source, links, (why) => fail(`is a hard link to ${JSON.stringify(source)}, which ${why}`));
  }
  // Whatever comes at a path replaces what was there; only a link stays a link.
  links.delete(path);
  if (header.type === "symlink") links.set(path, { target: header.linkname ?? "", label });
}

/** `..` components and absolute names leave the directory a host unpacks the layer into. */
function cleanPath(name: string, fail: (why: string) => never): string {
  if (name.startsWith("/")) fail("has an absolute name");
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) fail('has a ".." component');
  return parts.join("/");
}

function notThroughLink(path: string, links: Map<string, Link>, fail: (why: string) => never): void {
  if (links.size === 0) return;
  const parts = path.split("/");
  for (let i = 1; i < parts.length; i++) {
    const above = parts.slice(0, i).join("/");
    const link = links.get(above);
    if (link) fail(`is under ${JSON.stringify(above)}, a symlink to ${JSON.stringify(link.target)} from ${link.label}: a host would follow it`);
  }
}

function forgetUnder(links: Map<string, Link>, path: string, itself: boolean): void {
  if (links.size === 0) return;
  for (const p of [...links.keys()]) {
    if ((itself && p === path) || path === "" || p.startsWith(`${path}/`)) links.delete(p);
  }
}
