/**
 * sealant: cluster images as code. The Pulumi resources, and the engine (no Pulumi) for
 * programs that drive it directly.
 */
export { ImageBuild } from "./provider/image-build";
export type { ImageBuildArgs, ImageBuildLayer, RegistryAuthArgs } from "./provider/image-build";
export { ClusterImage } from "./provider/cluster-image";
export type { ClusterImageArgs } from "./provider/cluster-image";
export { Cluster } from "./provider/cluster";
export { ClusterBackup, type ClusterBackupArgs } from "./provider/cluster-backup";
export { ClusterRestore, type ClusterRestoreArgs } from "./provider/cluster-restore";
export type {
  AppConfigArgs,
  AppFileArgs,
  AppsArgs,
  BastionArgs,
  ClusterArgs,
  ClusterHostArgs,
  ClusterNode,
  ClusterRegistryArgs,
  ConfigArgs,
  DistributionArgs,
  EnvArgs,
  ExternalRegistryArgs,
  HostAliasArgs,
  HostSettingsArgs,
  PluginArgs,
  PullThroughUpstreamArgs,
  RegistriesArgs,
  RegistryHostConfigArgs,
  RegistryMirrorArgs,
  SshArgs,
  TimeoutsArgs,
  UpgradeArgs,
} from "./provider/cluster";
export { KubernetesCluster, AlicloudCluster, InvalidPropsError } from "./constructs";
export type { KubernetesClusterProps, KubernetesClusterImage, HostSettings, AlicloudClusterProps, AlicloudAccess, AlicloudHostKeyPolicy } from "./constructs";
export * as image from "./engine/image";
export { build, buildImage, BuildInputError, parseKubefile, parseKubefileOrThrow, KubefileSyntaxError } from "./engine/build";
export type { BuildRequest, BuildResult, BuildEvent } from "./engine/build";
export { Session } from "./engine/session";
export type { SessionOptions } from "./engine/session";
export { definePlugin } from "./engine/cluster/plugins/api";
export type {
  PluginContext,
  PluginDefinition,
  PluginExecOptions,
  PluginExecResult,
  PluginHost,
  PluginLogger,
  PluginPhase,
  PluginPlanContext,
  SealantPlugin,
} from "./engine/cluster/plugins/api";
