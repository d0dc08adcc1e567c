import { removeDockerFor } from "../host/docker-mirrors";
import { shellQuote } from "../../ssh";
import { aliasesBlock, setHostsBlock } from "../host/etc-hosts";
import { removeExternalRegistryClients } from "../host/external-registry-clients";
import { removePullThrough } from "../host/pull-through";
import { removeRegistry } from "../host/registry";
import { CLEANUP } from "../plan/kinds";
import type { StepKindDef } from "./kind";

/** sealant's files removed from a host that leaves (registry, host aliases, the data root); then the record forgets it. */
export const cleanup: StepKindDef = {
  kind: CLEANUP,
  async run(ctx, _step, host, signal) {
    const { cluster, opts } = ctx;
    const conn = await cluster.pool.get(host, signal);
    const sig = signal ? { signal } : {};
    if (opts.registry) await removeDockerFor(conn, opts.registry, signal);
    if (opts.registry) await removePullThrough(conn, opts.registry.dataRoot, sig);
    if (opts.registry) await removeRegistry(conn, opts.registry, sig);
    else if (cluster.spec.registry.external) await removeExternalRegistryClients(conn, cluster.layout.root, sig);
    await setHostsBlock(conn, aliasesBlock(cluster.layout.root), [], signal);
    await conn.run(`rm -rf ${shellQuote(cluster.layout.root)}`, { sudo: true, timeoutMs: ctx.commandMs, ...sig });
  },
  record(host, record) {
    record.hosts = record.hosts.filter((h) => h !== host);
  },
};
