/**
 * The cluster spec: sealant's own (zod schemas; the `Cluster` resource's inputs) and sealer's
 * Clusterfile v2 read unchanged, both normalised into one `ClusterSpec`. Pure (text/objects in,
 * typed spec or every problem out), except `loadClusterfile`/`resolveKeyFiles`, which read the
 * Clusterfile and the private key files it names.
 */
export { parseClusterfile, readClusterfile, parseClusterSpec, validateClusterSpec, SEALANT_API_VERSION, SEALER_API_GROUPS, KUBEADM_KINDS } from "./clusterfile";
export type { ParsedClusterfile, ClusterfileReading, ParseClusterfileOptions, ParseClusterSpecOptions, Locate } from "./clusterfile";
export { convertClusterfile } from "./convert";
export type { ConvertedClusterfile } from "./convert";
export { loadClusterfile, resolveKeyFiles } from "./load";
export type { LoadClusterfileOptions, KeyFileOptions } from "./load";
export {
  clusterSpecSchema,
  clusterSpecBodyShape,
  hostGroupSchema,
  sshSchema,
  sshOverrideSchema,
  bastionSchema,
  registrySchema,
  externalRegistrySchema,
  pluginSchema,
  configSchema,
  appsSchema,
  appConfigSchema,
  upgradeSchema,
  timeoutsSchema,
  envSchema,
  defaultDataRoot,
  HOST_KEY_POLICIES,
  CONFIG_STRATEGIES,
  CONFIG_PROCESSORS,
  APP_FILE_STRATEGIES,
  UPGRADE_STRATEGIES,
} from "./schema";
export { distributionSchema, DISTRIBUTION_MODES } from "./distribution";
export type {
  ClusterSpec,
  ClusterSpecInput,
  HostGroup,
  SshConfig,
  SshOverride,
  Bastion,
  RegistryConfig,
  ExternalRegistryConfig,
  PluginSpec,
  ConfigSpec,
  AppsSpec,
  AppConfig,
  HostKeyPolicy,
  ConfigProcessor,
} from "./schema";
export { ClusterSpecError, formatProblem, REDACTED, SECRET_FIELDS } from "./errors";
export type { SpecProblem } from "./errors";
export { effectiveEnv, parseEnvList, parseEnvMap, formatEnvList } from "./env";
export type { Env, EnvProblem } from "./env";
export { resolveHosts, hostsWithRole } from "./hosts";
export type { ResolvedHost, HostSsh } from "./hosts";
export { renderTemplate, renderedName, TemplateError } from "./template";
export type { RenderOptions } from "./template";
export { applyConfig, processConfigData, deepMerge, ConfigApplyError } from "./config-apply";
export type { ConfigChange } from "./config-apply";
export { specDigest, configDigest } from "./digest";
export type { SpecDigestOptions } from "./digest";
export { PLUGIN_ACTIONS, HOST_PLUGIN_ACTIONS, CLUSTER_PLUGIN_ACTIONS, LEGACY_PLUGIN_ACTIONS, PLUGIN_TYPES, isClusterAction } from "./plugins";
export type { PluginAction, PluginType } from "./plugins";
export { parseTaint, formatTaint, TAINT_EFFECTS, canonicalIp, POSIX_ENV_NAME } from "./validators";
export type { Taint, TaintEffect } from "./validators";
export { YamlScalar, loadYamlDocuments, dumpYamlDocuments, YamlSyntaxError } from "./yaml";
