import { distributeTo, layersFor, missingLayers } from "../host/distribute";
import { LayerRelay, type RelayHost } from "../host/layer-relay";
import { relayBlockers } from "../host/relay-probe";
import { removeDeadWireCopies } from "../host/wire-leftovers";
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
    await ctx.shared("wire-leftovers", () => removeDeadWireCopies());
    const relaying = await relayOf(ctx, signal);
    const relay = relaying?.members.has(host.ip) ? relaying.relay : undefined;
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

/** The apply's relay and the hosts taking part in it (relaying to or from another). */
interface Relaying {
  relay: LayerRelay;
  members: Set<string>;
}

/**
 * The apply's relay, made by the first distribute step that runs (before any layer moves, so
 * every host's missing layers are read from the facts as they were), or none when the plan's
 * distribute steps name no source. Each planned hop is asked first whether it can work
 * (host/relay-probe.ts); a host whose hop cannot gets the image from the operator — said as an
 * info line when the spec's mode is auto (it chose relaying, and direct is as good an answer),
 * as a warning when the spec asked for relay.
 */
function relayOf(ctx: StepContext, signal?: AbortSignal): Promise<Relaying | undefined> {
  return ctx.shared("layer-relay", async () => {
    const steps = ctx.opts.plan.phases.flatMap((p) => p.steps.filter((s) => s.kind === DISTRIBUTE));
    if (!steps.some((s) => s.via)) return undefined;
    const { cluster } = ctx;
    const hosts: RelayHost[] = steps.map((s) => {
      const host = cluster.hosts.get(s.host)!;
      const facts = cluster.facts.get(s.host)!;
      return { host, ...(s.via ? { via: s.via } : {}), missing: missingLayers(layersFor(ctx.platformOf(host), servesRegistry(ctx, s.host)), facts) };
    });
    const blocked = await relayBlockers(
      (h) => cluster.pool.get(h, signal),
      hosts.filter((h) => h.via).map((h) => ({ sender: cluster.hosts.get(h.via!)!, receiver: h.host })),
      signal,
    );
    const auto = cluster.spec.distribution.mode === "auto";
    for (const h of hosts) {
      const why = blocked.get(h.host.ip);
      if (!why) continue;
      const text = `relaying the image from ${h.via} cannot work (${why}): the operator sends it directly`;
      cluster.emit(auto ? { type: "info", text: `${h.host.ip}: ${text}` } : { type: "warning", host: h.host.ip, text });
      delete h.via;
    }
    // Only hosts on a hop take part; the others are sent the image the direct way, as without relaying.
    const sources = new Set(hosts.flatMap((h) => (h.via ? [h.via] : [])));
    const members = hosts.filter((h) => h.via || sources.has(h.host.ip));
    if (members.length === 0) return undefined;
    return { relay: new LayerRelay(cluster, members), members: new Set(members.map((h) => h.host.ip)) };
  });
}
