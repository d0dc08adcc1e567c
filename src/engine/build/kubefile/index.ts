/**
 * The Kubefile parser: pure, sealer-compatible. Text in, a typed `Kubefile` or a list of errors
 * (file + 1-based line) out.
 */
export { parseKubefile, parseKubefileOrThrow, checkBaseAppRefs } from "./parse";
export type { ParseKubefileOptions, ParseKubefileResult } from "./parse";
export { KubefileSyntaxError, formatKubefileError } from "./errors";
export type { KubefileError, KubefileWarning } from "./errors";
export { KUBEFILE_INSTRUCTIONS, LABEL_SUPPORTED_KUBE_VERSION, LABEL_KUBE_CNI_PREFIX, LABEL_KUBE_CSI_PREFIX } from "./instructions";
export type * from "./instructions";
export { expand, SubstitutionError } from "./substitute";
export { isSecretName } from "./state";
export type { Lookup, ExpandOptions } from "./substitute";
