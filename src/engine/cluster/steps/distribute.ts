import { distributeTo, layersFor, missingLayers } from "../host/distribute";
import { LayerRelay } from "../host/layer-relay";
import { DISTRIBUTE } from "../plan/kinds";
import type { StepContext, StepKindDef } from "./kind";

/**
 * The image's layers the host lacks sent to it, and its rootfs assembled (see host/distribute.ts).
 * Under relay distribution (a plan whose distribute steps name `via` hosts) the layers are
 * relayed first (host/layer-relay.ts) and the direct send then brings whatever is still missing.
 */
export const distribute: StepKindDef = {
  kind: DISTRIBUTE,
  async run(ctx, _step, host, signal) {
    const { cluster, opts } = ctx;
    const relay = relayOf(ctx);
    let bytes = 0;
    try {
      if (relay) bytes += await relay.deliver(host.ip, signal);
      const conn = await cluster.pool.get(host, signal);
      bytes += await distributeTo(conn, {
        store: cluster.session.store,
        layout: cluster.layout,
        imageDigest: cluster.image.digest,
        layers: layersFor(ctx.platformOf(host), servesRegistry(ctx, host.ip)),
        facts: cluster.facts.get(host.ip)!,
        emit: cluster.emit,
        ...(signal ? { signal } : {}),
      });
    } finally {
      opts.sent.set(host.ip, (opts.sent.get(host.ip) ?? 0) + bytes);
      await relay?.finished(host.ip);
    }
  },
};

function servesRegistry(ctx: StepContext, ip: string): boolean {
  return ctx.opts.registry?.servers.includes(ip) ?? false;
}

/**
 * The apply's relay, made by the first distribute step that runs (before any layer moves, so
 * every host's missing layers are read from the facts as they were), or none when the plan's
 * distribute steps name no source.
 */
function relayOf(ctx: StepContext): LayerRelay | undefined {
  return ctx.shared("layer-relay", () => {
    const steps = ctx.opts.plan.phases.flatMap((p) => p.steps.filter((s) => s.kind === DISTRIBUTE));
    if (!steps.some((s) => s.via)) return undefined;
    return new LayerRelay(
      ctx.cluster,
      steps.map((s) => {
        const host = ctx.cluster.hosts.get(s.host)!;
        const facts = ctx.cluster.facts.get(s.host)!;
        return { host, ...(s.via ? { via: s.via } : {}), missing: missingLayers(layersFor(ctx.platformOf(host), servesRegistry(ctx, s.host)), facts) };
      }),
    );
  });
}
