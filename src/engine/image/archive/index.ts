/**
 * OCI archives: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) packed
 * in one tar file — the format of `skopeo copy ... oci-archive:x.tar[:NAME]`, and how cluster
 * images travel to offline sites.
 *
 * save.ts writes one, load.ts reads one (its tar entries vetted in entries.ts, the image graph
 * in graph.ts); how the images in an archive are named, both ways, is explained in naming.ts.
 * layer-paths.ts reads a stack of layers' names as a host will apply them (merge checks with it).
 */
export { saveArchive } from "./save";
export { loadArchive } from "./load";
export { ArchiveError } from "./errors";
export { checkLayerStack, LayerPathError, type StackedLayer } from "./layer-paths";
export { CONTAINERD_IMAGE_NAME_ANNOTATION } from "./naming";
export { DEFAULT_MAX_INDEX_BYTES } from "./options";
export type { ArchiveProgress, LoadArchiveOptions, LoadedImage, SaveArchiveOptions, SavedImage, SaveArchiveResult } from "./options";
