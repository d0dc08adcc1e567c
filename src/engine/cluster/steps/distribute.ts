import { distributeTo, layersFor } from "../host/distribute";
import { DISTRIBUTE } from "../plan/kinds";
import type { StepKindDef } from "./kind";

/** The image's layers the host lacks sent to it, and its rootfs assembled (see host/distribute.ts). */
export const distribute: StepKindDef = {
  kind: DISTRIBUTE,
  async run(ctx, _step, host, signal) {
    const { cluster, opts } = ctx;
    const conn = await cluster.pool.get(host, signal);
    const facts = cluster.facts.get(host.ip)!;
    const servesRegistry = opts.registry?.servers.includes(host.ip) ?? false;
    const bytes = await distributeTo(conn, {
      store: cluster.session.store,
      layout: cluster.layout,
      imageDigest: cluster.image.digest,
      layers: layersFor(ctx.platformOf(host), servesRegistry),
      facts,
      emit: cluster.emit,
      ...(signal ? { signal } : {}),
    });
    opts.sent.set(host.ip, (opts.sent.get(host.ip) ?? 0) + bytes);
  },
};
