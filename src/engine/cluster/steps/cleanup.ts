import { shellQuote } from "../../ssh";
import { aliasesBlock, setHostsBlock } from "../host/etc-hosts";
import { removeLeftoverRegistry } from "../host/registry-leftovers";
import { removeAuthorizations } from "../host/relay";
import { CLEANUP } from "../plan/kinds";
import type { StepKindDef } from "./kind";

/** sealant's files removed from a host that leaves (registry, host aliases, the data root); then the record forgets it. */
export const cleanup: StepKindDef = {
  kind: CLEANUP,
  async run(ctx, _step, host, signal) {
    const { cluster } = ctx;
    const conn = await cluster.pool.get(host, signal);
    const sig = signal ? { signal } : {};
    // Whatever registry mode the host last had (the spec's may have changed in this very apply): the
    // cluster registry's removal takes the external registry's configuration too (same marker, same login block).
    const r = cluster.spec.registry;
    await removeLeftoverRegistry(conn, { mode: "own", dataRoot: cluster.layout.root, domain: r.domain, port: r.port, tls: !r.insecure }, signal);
    await setHostsBlock(conn, aliasesBlock(cluster.layout.root), [], signal);
    // An apply that died while relaying leaves its keys authorised (its relay directory goes with the data root).
    await removeAuthorizations(conn, cluster.spec.name, signal);
    await conn.run(`rm -rf ${shellQuote(cluster.layout.root)}`, { sudo: true, timeoutMs: ctx.commandMs, ...sig });
  },
  record(host, record) {
    record.hosts = record.hosts.filter((h) => h !== host);
  },
};
