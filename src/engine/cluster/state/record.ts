import type { Connection } from "../../ssh";
import { shellQuote } from "../../ssh";
import type { HostLayout } from "../host/layout";
import type { CurrentCluster } from "../plan/types";

/**
 * The cluster's own record, kept in state.json on every master: what `apply` plans from and
 * what `pulumi refresh` reads, so both see the cluster as it is, not as a local file thinks.
 */
export interface ClusterRecord extends CurrentCluster {
  version: 1;
  /** Bumped on every write; readers take the highest among the masters they reach. */
  generation: number;
  /** The image reference the cluster was last applied with. */
  image: string;
  specDigest: string;
  /** The runtime that manages the cluster (from the image's labels). */
  runtime: string;
  /** The runtime's version the cluster runs (the image's label, e.g. Kubernetes v1.31.4). */
  runtimeVersion?: string;
  updatedAt: string;
}

export class StateRecordError extends Error {
  constructor(host: string, reason: string) {
    super(`${host}: the cluster's state record is unreadable: ${reason}`);
    this.name = "StateRecordError";
  }
}

/** Parses state.json text (as facts read it); undefined for no record. */
export function parseRecord(host: string, text: string | undefined): ClusterRecord | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new StateRecordError(host, (err as Error).message);
  }
  const r = v as Partial<ClusterRecord>;
  if (r.version !== 1 || typeof r.name !== "string" || !Array.isArray(r.hosts) || typeof r.generation !== "number") {
    throw new StateRecordError(host, "not a sealant state record (version 1)");
  }
  return r as ClusterRecord;
}

/** The newest of the records the masters hold (they can differ after an interrupted write). */
export function newestRecord(records: (ClusterRecord | undefined)[]): ClusterRecord | undefined {
  let best: ClusterRecord | undefined;
  for (const r of records) if (r && (!best || r.generation > best.generation)) best = r;
  return best;
}

/** Writes state.json atomically on one host: a temp file, flushed, renamed over the old one. */
export async function writeRecord(conn: Connection, layout: HostLayout, record: ClusterRecord, signal?: AbortSignal): Promise<void> {
  const dir = shellQuote(layout.root);
  const target = shellQuote(layout.state);
  const tmp = shellQuote(`${layout.state}.tmp`);
  await conn.run(`mkdir -p ${dir} && umask 077 && cat > ${tmp} && sync ${tmp} 2>/dev/null; mv -f ${tmp} ${target}`, {
    sudo: true,
    stdin: `${JSON.stringify(record, null, 2)}\n`,
    timeoutMs: 60_000,
    ...(signal ? { signal } : {}),
  });
}
