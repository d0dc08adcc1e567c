import type { Distribution, PlanStep } from "./types";

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

/**
 * The distribute steps with the host each one relays from (`via`, said in the description too),
 * when the distribution is relay and there is more than one host; as they are otherwise.
 */
export function withRelaySources(steps: PlanStep[], distribution: Distribution | undefined): PlanStep[] {
  if (distribution?.mode !== "relay" || steps.length <= 1) return steps;
  const sources = relaySources(
    steps.map((s) => s.host),
    distribution.fanout,
  );
  return steps.map((s) => {
    const via = sources.get(s.host);
    return via ? { ...s, via, description: `${s.description} via ${via}` } : s;
  });
}
