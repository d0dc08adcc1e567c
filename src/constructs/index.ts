/**
 * CDK-style constructs: ComponentResources that compose sealant's resources (and cloud
 * resources) into one cluster. `new X(name, props, opts)`; children are parented to the
 * construct; props are validated before any resource exists.
 */
export { KubernetesCluster, InvalidPropsError, KUBERNETES_API_PORT, apiEndpoint } from "./kubernetes-cluster";
export type { KubernetesClusterProps, KubernetesClusterImage, HostSettings } from "./kubernetes-cluster";
export type { KubernetesAccess } from "./kubernetes-provider";
export { AlicloudCluster, ALICLOUD_ACCESS, parseCidr } from "./alicloud-cluster";
export type { AlicloudClusterProps, AlicloudAccess, AlicloudHostKeyPolicy } from "./alicloud-cluster";
