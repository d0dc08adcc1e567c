import type { ClusterImageMetadata } from "../../image/metadata";
import { hooksRuntime } from "./hooks";
import { kubernetesRuntime } from "./kubernetes/runtime";
import type { Runtime } from "./types";

const RUNTIMES: Record<string, Runtime> = { hooks: hooksRuntime, kubernetes: kubernetesRuntime };

/** The runtime an image asks for, when this sealant has it (plans made without the image's metadata get none). */
export function findRuntime(meta: Pick<ClusterImageMetadata, "runtime">): Runtime | undefined {
  const kind = meta.runtime?.type;
  return kind ? RUNTIMES[kind] : undefined;
}

/**
 * The runtime an image asks for (sealant's `io.sealant.runtime` label, or sealer's
 * `cluster.alpha.sealer.io/cluster-runtime-type`), or a clear error naming what exists.
 */
export function selectRuntime(meta: Pick<ClusterImageMetadata, "runtime">, image: string): Runtime {
  const kind = meta.runtime?.type;
  if (!kind) {
    throw new Error(`image ${image} declares no runtime: label it io.sealant.runtime=hooks (available: ${Object.keys(RUNTIMES).join(", ")})`);
  }
  const runtime = RUNTIMES[kind];
  if (!runtime) throw new Error(`image ${image} asks for runtime "${kind}", which this sealant does not have (available: ${Object.keys(RUNTIMES).join(", ")})`);
  return runtime;
}
