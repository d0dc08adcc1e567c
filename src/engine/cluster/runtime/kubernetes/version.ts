/**
 * Kubernetes versions as the image declares them (sealer's `cluster.alpha.sealer.io/cluster-runtime-version`
 * or sealant's `io.sealant.runtime.version`, e.g. "v1.31.4"), and the upgrade rule kubeadm
 * imposes: one minor version at a time, never down.
 */
export interface KubeVersion {
  major: number;
  minor: number;
  patch: number;
  /** As written, with a leading "v". */
  text: string;
}

/** Semantic version with an optional pre-release/build suffix of its own characters only: it lands in commands on hosts. */
const VERSION = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?$/;

export function parseKubeVersion(text: string, where: string): KubeVersion {
  const m = VERSION.exec(text.trim());
  if (!m) throw new Error(`${where}: ${JSON.stringify(text)} is not a Kubernetes version (expected vMAJOR.MINOR.PATCH, e.g. v1.31.4)`);
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return { major, minor, patch, text: text.trim().startsWith("v") ? text.trim() : `v${text.trim()}` };
}

export function compareKubeVersions(a: KubeVersion, b: KubeVersion): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/** kubeadm's config API for a Kubernetes version: v1beta4 from 1.31 (v1beta3 still read, but deprecated there). */
export function kubeadmApiVersion(v: KubeVersion): "kubeadm.k8s.io/v1beta3" | "kubeadm.k8s.io/v1beta4" {
  return v.major > 1 || v.minor >= 31 ? "kubeadm.k8s.io/v1beta4" : "kubeadm.k8s.io/v1beta3";
}

/**
 * Why going from `from` to `to` is refused, or undefined when kubeadm allows it: patch
 * upgrades, and the next minor version. Skipping a minor version or going down is refused.
 */
export function upgradeProblem(from: KubeVersion, to: KubeVersion): string | undefined {
  if (compareKubeVersions(to, from) < 0) return `Kubernetes ${from.text} cannot be downgraded to ${to.text}`;
  if (to.major !== from.major) return `Kubernetes ${from.text} cannot be upgraded to ${to.text}: another major version`;
  if (to.minor > from.minor + 1) {
    const next = `v${from.major}.${from.minor + 1}`;
    return `Kubernetes ${from.text} cannot be upgraded to ${to.text} in one step: kubeadm upgrades one minor version at a time (first an image with ${next}.x, then the next)`;
  }
  return undefined;
}
