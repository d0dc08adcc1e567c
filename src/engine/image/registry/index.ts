export { RegistryClient } from "./client";
export type { ManifestResponse, OpenBlobOptions, PushBlobOptions, PushBlobResult, RegistryClientOptions } from "./options";
export { BrokenBodyError, RegistryError, parseErrorBody } from "./errors";
export type { RegistryErrorEntry } from "./errors";
export { parseChallenges, repositoryScope } from "./auth";
export type { Challenge } from "./auth";
export { BlobSourceError, SizeMismatchError, VerifyingStream } from "./streams";
export { DIRECT, TunnelAgent, fixedProxy, noProxyMatcher, parseProxyUrl, proxyFromEnv, proxyLabel, proxiedRequest } from "./proxy";
export type { ProxyRule } from "./proxy";
