/** The cluster image as hosts get it (kept at this path for the providers, which import it). */
export { resolveClusterImage, platformFor, ociArchitecture, type ClusterImage, type ClusterImageLayer, type PlatformImage } from "./host/image";
