import { posix } from "node:path";
import { digestHex, parseDigest, type Digest } from "../../image/digest";

/**
 * Where a cluster's files live on each host, under its data root:
 *
 *   layers/<hex>/            one extracted image layer (present = complete: renamed into place)
 *   layers/<hex>.noregistry/ the same layer without registry/ (hosts that serve no registry)
 *   images/<hex>/rootfs/     an image's rootfs, assembled from hard links to its layers
 *   rootfs -> images/<hex>/rootfs   the image this host runs now
 *   state.json               the cluster's record (on masters)
 *   lock/                    held by a running apply (on the first master)
 *   run/                     pid files and logs of what sealant starts
 *
 * Layers are shared by images, so an upgrade sends only layers the host does not hold.
 */
export class HostLayout {
  readonly root: string;

  constructor(dataRoot: string) {
    this.root = dataRoot.length > 1 ? dataRoot.replace(/\/+$/, "") : dataRoot;
  }

  get layers(): string {
    return posix.join(this.root, "layers");
  }

  /** The directory one layer is extracted to; `withRegistry: false` is the copy without registry/. */
  layer(digest: Digest, withRegistry: boolean): string {
    return posix.join(this.layers, layerDirName(digest, withRegistry));
  }

  get images(): string {
    return posix.join(this.root, "images");
  }

  image(digest: Digest): string {
    return posix.join(this.images, digestHex(parseDigest(digest)));
  }

  /** The rootfs of one image version: hooks run here, so an upgrade never pulls files from under a running host. */
  rootfs(digest: Digest): string {
    return posix.join(this.image(digest), "rootfs");
  }

  /** Symlink to the rootfs of the image the host runs now. */
  get current(): string {
    return posix.join(this.root, "rootfs");
  }

  get state(): string {
    return posix.join(this.root, "state.json");
  }

  get lock(): string {
    return posix.join(this.root, "lock");
  }

  get run(): string {
    return posix.join(this.root, "run");
  }
}

export function layerDirName(digest: Digest, withRegistry: boolean): string {
  return `${digestHex(parseDigest(digest))}${withRegistry ? "" : ".noregistry"}`;
}
