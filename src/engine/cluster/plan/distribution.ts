import type { Distribution, PlanStep } from "./types";

/**
 * The relay tree over the hosts that get the image, in plan order: the first `fanout` hosts
 * (the seeds) get it from the operator, and every host passes it on to up to `fanout` hosts
 * after them — host i (i >= fanout) from host floor((i - fanout) / fanout). A source always
 * comes earlier in the order, so with steps started in order a host never waits for one that
 * has not started; the tree is log_fanout(n) deep and the operator sends each layer `fanout`
 * times instead of n.
 */
export function relaySources(ips: readonly string[], fanout: number): Map<string, string | undefined> {
  const width = Math.max(1, Math.floor(fanout));
  return new Map(ips.map((ip, i) => [ip, i < width ? undefined : ips[Math.floor((i - width) / width)]]));
}

/**
 * The distribute steps with the host each one relays from (`via`, said in the description too),
 * when the distribution is relay and there are more hosts than seeds; as they are otherwise.
 */
export function withRelaySources(steps: PlanStep[], distribution: Distribution | undefined): PlanStep[] {
  if (distribution?.mode !== "relay" || steps.length <= distribution.fanout) return steps;
  const sources = relaySources(
    steps.map((s) => s.host),
    distribution.fanout,
  );
  return steps.map((s) => {
    const via = sources.get(s.host);
    return via ? { ...s, via, description: `${s.description} via ${via}` } : s;
  });
}
