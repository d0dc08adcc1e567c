export { discoverImages, type DiscoveredImage, type DiscoveryOptions, type DiscoveryResult } from "./discover";
export { ImageListError, parseImageList, readImageList, type ImageListEntry } from "./image-list";
export {
  findHelm,
  helmTemplate,
  imagesFromChartValues,
  imagesFromRawTemplates,
  loadChartArchive,
  loadChartDir,
  type ChartFiles,
  type ValuesImage,
} from "./helm";
export { findImageFields, parseYamlDocuments, type Candidate } from "./yaml";
