import { hostPlatform, platformString, type Descriptor, type Platform } from "./types";

/**
 * Picking a platform's manifest out of an index: one rule for the store (manifestFor, builds,
 * merges) and the image cache. Same os and architecture; variants compared with their defaults
 * filled in (arm64 = v8, arm = v7), an exact variant preferred. Attestation manifests (platform
 * unknown/unknown) never match.
 */
export function choosePlatform(manifests: Descriptor[], want: Platform): Descriptor | undefined {
  const candidates = manifests.filter((m) => m.platform && !isAttestation(m) && m.platform.os === want.os && m.platform.architecture === want.architecture);
  if (want.variant) {
    return candidates.find((m) => m.platform!.variant === want.variant) ?? candidates.find((m) => normVariant(m.platform!) === normVariant(want));
  }
  return candidates.find((m) => !m.platform!.variant) ?? candidates.find((m) => normVariant(m.platform!) === normVariant(want)) ?? candidates[0];
}

/** Chooses the manifest for a platform from an index (see choosePlatform); a clear error lists what there is. */
export function pickPlatform(manifests: Descriptor[], platform?: Platform): Descriptor {
  const want = platform ?? hostPlatform();
  const hit = choosePlatform(manifests, want);
  if (hit) return hit;
  const candidates = manifests.filter((m) => m.platform);
  if (!platform && manifests.length === 1 && manifests[0]) return manifests[0];
  const available = candidates.map((m) => platformString(m.platform!)).join(", ") || "none";
  throw new Error(`no manifest for platform ${platformString(want)} (available: ${available})`);
}

/** `have` satisfies `want`: same os and architecture, and the same variant (defaults filled in) when `want` names one. */
export function platformMatches(have: Platform, want: Platform): boolean {
  return have.os === want.os && have.architecture === want.architecture && (!want.variant || normVariant(have) === normVariant(want));
}

/** An index entry that is an attestation (provenance, SBOM), not an image. */
export function isAttestation(d: Descriptor): boolean {
  return d.annotations?.["vnd.docker.reference.type"] === "attestation-manifest" || (d.platform?.os === "unknown" && d.platform.architecture === "unknown");
}

function normVariant(p: Platform): string {
  if (p.variant) return p.variant;
  if (p.architecture === "arm64") return "v8";
  if (p.architecture === "arm") return "v7";
  return "";
}
