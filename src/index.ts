/**
 * sealant: cluster images as code. The engine (no Pulumi) is exported here; the Pulumi
 * resources and constructs arrive with their own modules.
 */
export * as image from "./engine/image";
export { build, buildImage, BuildInputError, parseKubefile, parseKubefileOrThrow, KubefileSyntaxError } from "./engine/build";
export type { BuildRequest, BuildResult, BuildEvent } from "./engine/build";
export { Session } from "./engine/session";
export type { SessionOptions } from "./engine/session";
