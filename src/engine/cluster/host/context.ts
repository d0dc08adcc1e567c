import type { Session } from "../../session";
import type { ConnectionPool } from "../../ssh";
import type { ResolvedHost } from "../spec";
import type { ClusterSpec } from "../spec";
import type { ClusterImage } from "./image";
import type { HostLayout } from "./layout";
import type { Runtime } from "../runtime";
import type { ClusterRecord } from "../state/record";
import type { ClusterHost } from "./connect";
import type { LoadedPlugin } from "../plugins/load";

/** What sealant learnt about a host before changing anything (the connect & facts phase). */
export interface HostFacts {
  /** OCI architecture (`amd64`, `arm64`). */
  arch: string;
  hostname: string;
  /** Free bytes on the file system that holds (or will hold) the data root. */
  freeBytes: number;
  /** Host clock minus this machine's, in ms (round-trip midpoint). */
  clockSkewMs: number;
  /** Layer directories the host holds under layers/ (see HostLayout). */
  layers: Set<string>;
  /** Image directories (hex) under images/ with a complete rootfs. */
  images: Set<string>;
  /** The cluster record the host keeps (masters), if any. */
  record?: ClusterRecord;
}

/** Progress and results as they happen: the CLI prints them, the Pulumi provider logs them. */
export type ClusterEvent =
  | { type: "phase"; name: string; title: string; steps: number }
  | { type: "step"; host: string; id: string; description: string; status: "start" | "done" | "failed"; error?: string; ms?: number }
  | { type: "progress"; host: string; what: string; bytes: number; total: number; mibPerSec: number }
  | { type: "output"; host: string; step: string; stream: "stdout" | "stderr"; line: string }
  | { type: "warning"; host?: string; text: string }
  | { type: "info"; text: string };

/** Everything the phases share during one apply / reset / check. */
export interface ClusterContext {
  spec: ClusterSpec;
  /** Desired hosts in spec order, plus recorded hosts being removed (after them). */
  hosts: Map<string, ClusterHost>;
  image: ClusterImage;
  runtime: Runtime;
  layout: HostLayout;
  session: Session;
  pool: ConnectionPool<ClusterHost>;
  facts: Map<string, HostFacts>;
  /** The spec's MODULE plugins, loaded (by Plugin document name). */
  pluginModules?: ReadonlyMap<string, LoadedPlugin>;
  emit(event: ClusterEvent): void;
  signal?: AbortSignal;
}

export type { ResolvedHost };
