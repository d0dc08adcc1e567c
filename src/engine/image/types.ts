import type { Digest } from "./digest";

/** OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The OCI image configuration (only the fields sealant reads or writes are typed). */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: {
    Env?: string[];
    Cmd?: string[];
    Entrypoint?: string[];
    WorkingDir?: string;
    Labels?: Record<string, string>;
  };
  rootfs: { type: "layers"; diff_ids: Digest[] };
  history?: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean }>;
}

export function platformString(p: Pick<Platform, "os" | "architecture" | "variant">): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/** Parses `linux/amd64`, `linux/arm64/v8` or a bare `amd64` (linux implied, as sealer does). */
export function parsePlatform(value: string): Platform {
  const parts = value.trim().split("/");
  if (parts.length === 1 && parts[0]) return { os: "linux", architecture: normaliseArch(parts[0]) };
  if (parts.length >= 2 && parts.length <= 3 && parts.every((p) => p.length > 0)) {
    const [os, arch, variant] = parts as [string, string, string | undefined];
    return variant ? { os, architecture: normaliseArch(arch), variant } : { os, architecture: normaliseArch(arch) };
  }
  throw new Error(`invalid platform "${value}": expected os/arch[/variant], e.g. linux/amd64`);
}

function normaliseArch(arch: string): string {
  if (arch === "x86_64") return "amd64";
  if (arch === "aarch64") return "arm64";
  return arch;
}

/** The platform of the machine sealant runs on, in OCI terms. */
export function hostPlatform(): Platform {
  const arch = process.arch === "x64" ? "amd64" : process.arch === "ia32" ? "386" : process.arch;
  return { os: "linux", architecture: arch };
}
