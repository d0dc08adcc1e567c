import { performance } from "node:perf_hooks";
import { shellQuote, type Connection } from "../../ssh";
import type { HostFacts } from "./context";
import { ociArchitecture } from "./image";
import type { HostLayout } from "./layout";
import { parseRecord } from "../state/record";

/**
 * Connect & gather facts: one command per host reports its architecture, name, clock, free
 * disk where the data root lives, the layers and images it already holds, and the cluster
 * record if it keeps one. Read-only, so `plan` and `apply --dry-run` run it too.
 */
export async function gatherFacts(conn: Connection, layout: HostLayout, signal?: AbortSignal): Promise<HostFacts> {
  const root = shellQuote(layout.root);
  const script = [
    `r=${root}`,
    `echo "arch=$(uname -m)"`,
    `echo "hostname=$(hostname 2>/dev/null || cat /etc/hostname)"`,
    `echo "time=$(date +%s%3N)"`,
    // The data root may not exist yet: measure the file system of its nearest existing parent.
    `p="$r"; while [ ! -d "$p" ]; do p=$(dirname "$p"); done`,
    `echo "free=$(df -Pk "$p" | awk 'NR==2 {print $4}')"`,
    `echo "layers=$(ls -1 "$r/layers" 2>/dev/null | grep -v '^\\.' | tr '\\n' ' ')"`,
    `echo "images=$(for d in "$r"/images/*/; do [ -d "$d/rootfs" ] && basename "$d"; done 2>/dev/null | tr '\\n' ' ')"`,
    `[ -f "$r/state.json" ] && echo "state=$(base64 -w0 "$r/state.json")"`,
    `true`,
  ].join("\n");
  const sent = performance.now();
  const res = await conn.run(script, { sudo: true, timeoutMs: 60_000, ...(signal ? { signal } : {}) });
  const midpoint = Date.now() - (performance.now() - sent) / 2;
  const kv = new Map<string, string>();
  for (const line of res.stdout.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  const words = (k: string): Set<string> => new Set((kv.get(k) ?? "").split(/\s+/).filter((w) => w !== ""));
  const state = kv.get("state");
  const record = parseRecord(conn.host, state === undefined ? undefined : Buffer.from(state, "base64").toString("utf8"));
  return {
    arch: ociArchitecture(kv.get("arch") ?? "unknown"),
    hostname: kv.get("hostname") ?? "",
    freeBytes: Number(kv.get("free") ?? "0") * 1024,
    clockSkewMs: Number(kv.get("time") ?? "0") - midpoint,
    layers: words("layers"),
    images: words("images"),
    ...(record ? { record } : {}),
  };
}
