import { externalClient, pushImageRegistry } from "../host/external-registry";
import { PUSH } from "../plan/kinds";
import type { StepKindDef } from "./kind";

/**
 * The image's container images pushed into the external registry (`registry.external`) from
 * this machine — the step is the first master's in the plan and the record, but it runs here,
 * where the image is (see host/external-registry.ts). What the registry has is skipped.
 */
export const push: StepKindDef = {
  kind: PUSH,
  async run(ctx, _step, _host, signal) {
    const { cluster } = ctx;
    const ext = cluster.spec.registry.external;
    if (!ext) throw new Error("a push step without registry.external");
    const client = await externalClient(ext, cluster.session.credentials, { timeoutMs: cluster.spec.timeouts.apply * 1000 });
    try {
      const r = await pushImageRegistry({
        store: cluster.session.store,
        image: cluster.image,
        client,
        ext,
        log: (text) => cluster.emit({ type: "info", text }),
        ...(signal ? { signal } : {}),
      });
      cluster.emit({
        type: "info",
        text:
          `${client.registry}: ${r.images} images; ${r.blobsUploaded} blobs uploaded (${r.bytesUploaded} bytes), ` +
          `${r.blobsMounted} mounted, ${r.blobsPresent} already there; ${r.manifestsPut} manifests written`,
      });
    } finally {
      client.close();
    }
  },
};
