import type { Distribution, PlanStep } from "./types";

/**
 * Auto distribution relays from this many hosts in a distribute phase up (the reasons, from the
 * benchmarks, are in the spec's `distribution.mode`); below it the operator sends directly.
 */
export const AUTO_RELAY_HOSTS = 3;

/**
 * The relay tree over the hosts that get the image, in plan order: the first host (the seed)
 * gets it from the operator, and every host passes it on to up to `fanout` hosts after it —
 * host i (i >= 1) from host floor((i - 1) / fanout). A source always comes earlier in the order,
 * so with steps started in order a host never waits for one that has not started. The operator
 * sends each layer once: hosts pass a layer on while it arrives (host/relay.ts), so a deeper
 * tree costs a little latency per level, while each extra seed would cost the operator's link
 * a whole copy. The tree is log_fanout(n) deep.
 */
export function relaySources(ips: readonly string[], fanout: number): Map<string, string | undefined> {
  const width = Math.max(1, Math.floor(fanout));
  return new Map(ips.map((ip, i) => [ip, i === 0 ? undefined : ips[Math.floor((i - 1) / width)]]));
}

/** Whether a distribute phase sending the image to `hosts` hosts relays it (no distribution: direct). */
export function relays(distribution: Distribution | undefined, hosts: number): boolean {
  if (hosts <= 1) return false;
  if (distribution?.mode === "relay") return true;
  return distribution?.mode === "auto" && hosts >= AUTO_RELAY_HOSTS;
}

/**
 * The distribute steps with the host each one relays from (`via`, said in the description too),
 * when the phase relays (see relays()); as they are otherwise.
 */
export function withRelaySources(steps: PlanStep[], distribution: Distribution | undefined): PlanStep[] {
  if (!distribution || !relays(distribution, steps.length)) return steps;
  const sources = relaySources(
    steps.map((s) => s.host),
    distribution.fanout,
  );
  return steps.map((s) => {
    const via = sources.get(s.host);
    return via ? { ...s, via, description: `${s.description} via ${via}` } : s;
  });
}

/**
 * The plan summary's line for a relayed distribute phase: every host and where it gets the image,
 * grouped by source (`a from the operator; b, c via a; ...`), or none when the phase sends directly.
 */
export function relaySummary(steps: readonly PlanStep[], distribution: Distribution | undefined): string | undefined {
  if (!steps.some((s) => s.via)) return undefined;
  const bySource = new Map<string, string[]>();
  for (const s of steps) {
    const from = s.via ?? "";
    bySource.set(from, [...(bySource.get(from) ?? []), s.host]);
  }
  const parts = [...bySource].map(([from, hosts]) => `${hosts.join(", ")} ${from === "" ? "from the operator" : `via ${from}`}`);
  const why = distribution?.mode === "auto" ? `auto: ${steps.length} hosts, relayed from ${AUTO_RELAY_HOSTS}` : "relay";
  return `relay the image (${why}; fanout ${distribution?.fanout ?? 1}): ${parts.join("; ")}`;
}
