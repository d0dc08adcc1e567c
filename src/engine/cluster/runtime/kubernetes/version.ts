import { compareRuntimeVersions, parseRuntimeVersion, type RuntimeVersion } from "../../plan/upgrade-path";

/**
 * Kubernetes versions as the image declares them (sealer's `cluster.alpha.sealer.io/cluster-runtime-version`
 * or sealant's `io.sealant.runtime.version`, e.g. "v1.31.4"), and the upgrade rule kubeadm
 * imposes: one minor version at a time, never down (several minors: plan/upgrade-path.ts).
 */
export type KubeVersion = RuntimeVersion;
export const parseKubeVersion = parseRuntimeVersion;
export const compareKubeVersions = compareRuntimeVersions;

/**
 * kubeadm's config API for a Kubernetes version: v1beta4 from 1.31 (where it appeared; 1.31
 * still reads v1beta3, deprecated), v1beta3 before (1.22-1.30 read it; they know no v1beta4).
 */
export function kubeadmApiVersion(v: KubeVersion): "kubeadm.k8s.io/v1beta3" | "kubeadm.k8s.io/v1beta4" {
  return v.major > 1 || v.minor >= 31 ? "kubeadm.k8s.io/v1beta4" : "kubeadm.k8s.io/v1beta3";
}

/**
 * Why one apply cannot go from `from` to `to`, or undefined when kubeadm allows it: patch
 * upgrades, and the next minor version. Skipping a minor version (without the intermediate
 * images of `upgrade.through`, which make it several applies of one minor each) or going down
 * is refused.
 */
export function upgradeProblem(from: KubeVersion, to: KubeVersion): string | undefined {
  if (compareKubeVersions(to, from) < 0) return `Kubernetes ${from.text} cannot be downgraded to ${to.text}`;
  if (to.major !== from.major) return `Kubernetes ${from.text} cannot be upgraded to ${to.text}: another major version`;
  if (to.minor > from.minor + 1) {
    const next = `v${from.major}.${from.minor + 1}`;
    return `Kubernetes ${from.text} cannot be upgraded to ${to.text} in one step: kubeadm upgrades one minor version at a time (name an image with ${next}.x in upgrade.through, e.g. upgrade: {through: ["sealant/kubernetes:${next}.N"]}: each minor is then its own step)`;
  }
  return undefined;
}
