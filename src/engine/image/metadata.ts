/**
 * What a cluster image says about itself, beyond its files: its kind, runtime, applications,
 * launch list, default env and the container images inside. sealant writes its own
 * annotation and also sealer's (`sealer.image.extension`, `sealer.image.container.images`)
 * so that either tool can read the other's images.
 */
import type { ImageConfig, Manifest } from "./types";

export const SEALANT_METADATA = "io.sealant.image.v1";
export const SEALER_EXTENSION = "sealer.image.extension";
export const SEALER_CONTAINER_IMAGES = "sealer.image.container.images";
/** sealer's runtime label on base images; sealant reads it to choose a runtime. */
export const SEALER_RUNTIME_LABEL = "cluster.alpha.sealer.io/cluster-runtime-type";
export const SEALER_RUNTIME_VERSION_LABEL = "cluster.alpha.sealer.io/cluster-runtime-version";
export const SEALANT_RUNTIME_LABEL = "io.sealant.runtime";
export const SEALANT_RUNTIME_VERSION_LABEL = "io.sealant.runtime.version";

export type AppType = "helm" | "kube" | "shell";
export type ImageKind = "kube-installer" | "app-installer";

export interface Application {
  name: string;
  type: AppType;
  /** Paths relative to the app's directory, application/apps/<name>/ in the rootfs. */
  files: string[];
  /** From APPCMDS: replaces the default launch command of the app type. */
  cmds?: string[];
  /** From APPENV. */
  env?: Record<string, string>;
  /** "cni" or "csi" when declared by that instruction. */
  role?: "cni" | "csi";
}

export interface ContainerImageEntry {
  /** Normalised reference, e.g. docker.io/library/nginx:1.25 */
  image: string;
  appName?: string;
  /** The platforms cached for it, e.g. ["linux/amd64"]. */
  platforms?: string[];
}

export interface ClusterImageMetadata {
  schemaVersion: "v1";
  kind: ImageKind;
  runtime?: { type: string; version?: string };
  applications: Application[];
  launch: { apps?: string[]; cmds?: string[] };
  env: Record<string, string>;
  labels: Record<string, string>;
  containerImages: ContainerImageEntry[];
}

export function emptyMetadata(kind: ImageKind = "kube-installer"): ClusterImageMetadata {
  return { schemaVersion: "v1", kind, applications: [], launch: {}, env: {}, labels: {}, containerImages: [] };
}

/** The annotations that carry the metadata, sealant's and sealer's. */
export function metadataAnnotations(meta: ClusterImageMetadata): Record<string, string> {
  const sealer = {
    buildClient: { sealerVersion: "sealant", buildahVersion: "" },
    schemaVersion: "v1alpha1",
    type: meta.kind,
    applications: meta.applications.map((a) => ({
      name: a.name,
      type: a.type,
      files: a.files,
      version: "v1",
      ...(a.env && Object.keys(a.env).length ? { env: a.env } : {}),
      ...(a.cmds && a.cmds.length ? { cmds: a.cmds } : {}),
    })),
    labels: meta.labels,
    env: meta.env,
    launch: { ...(meta.launch.cmds ? { cmds: meta.launch.cmds } : {}), ...(meta.launch.apps ? { app_names: meta.launch.apps } : {}) },
  };
  return {
    [SEALANT_METADATA]: JSON.stringify(meta),
    [SEALER_EXTENSION]: JSON.stringify(sealer),
    [SEALER_CONTAINER_IMAGES]: JSON.stringify(meta.containerImages.map((c) => ({ image: c.image, ...(c.appName ? { appName: c.appName } : {}) }))),
  };
}

/**
 * Reads the metadata of any cluster image: sealant's annotation when present, else sealer's
 * extension and container-image list (from the manifest annotations or config labels).
 */
export function readMetadata(manifest: Pick<Manifest, "annotations">, config?: Pick<ImageConfig, "config">): ClusterImageMetadata {
  const sources = [manifest.annotations ?? {}, config?.config?.Labels ?? {}];
  for (const src of sources) {
    const own = src[SEALANT_METADATA];
    if (own) return withRuntimeFromLabels(parseJson<ClusterImageMetadata>(own, SEALANT_METADATA), config);
  }
  const meta = emptyMetadata();
  for (const src of sources) {
    const ext = src[SEALER_EXTENSION];
    if (ext) {
      const e = parseJson<SealerExtension>(ext, SEALER_EXTENSION);
      meta.kind = e.type === "app-installer" ? "app-installer" : "kube-installer";
      meta.applications = (e.applications ?? []).map((a) => {
        const app: Application = { name: a.name, type: (a.type as AppType) ?? "shell", files: a.files ?? [] };
        if (a.cmds?.length) app.cmds = a.cmds;
        if (a.env && Object.keys(a.env).length) app.env = a.env;
        return app;
      });
      if (e.launch?.cmds?.length) meta.launch.cmds = e.launch.cmds;
      if (e.launch?.app_names?.length) meta.launch.apps = e.launch.app_names;
      meta.env = e.env ?? {};
      meta.labels = e.labels ?? {};
      break;
    }
  }
  for (const src of sources) {
    const list = src[SEALER_CONTAINER_IMAGES];
    if (list) {
      meta.containerImages = (parseJson<Array<{ image: string; appName?: string }>>(list, SEALER_CONTAINER_IMAGES) ?? []).map((c) =>
        c.appName ? { image: c.image, appName: c.appName } : { image: c.image },
      );
      break;
    }
  }
  return withRuntimeFromLabels(meta, config);
}

function withRuntimeFromLabels(meta: ClusterImageMetadata, config?: Pick<ImageConfig, "config">): ClusterImageMetadata {
  if (meta.runtime) return meta;
  const labels = { ...(config?.config?.Labels ?? {}), ...meta.labels };
  const type = labels[SEALANT_RUNTIME_LABEL] ?? labels[SEALER_RUNTIME_LABEL];
  if (type) {
    const version = labels[SEALANT_RUNTIME_VERSION_LABEL] ?? labels[SEALER_RUNTIME_VERSION_LABEL];
    meta.runtime = version ? { type, version } : { type };
  }
  return meta;
}

interface SealerExtension {
  type?: string;
  applications?: Array<{ name: string; type?: string; files?: string[]; env?: Record<string, string>; cmds?: string[] }>;
  launch?: { cmds?: string[]; app_names?: string[] };
  env?: Record<string, string>;
  labels?: Record<string, string>;
}

function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`image annotation ${what} is not valid JSON: ${(err as Error).message}`);
  }
}
