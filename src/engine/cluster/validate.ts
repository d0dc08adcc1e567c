import { extractedSize, layersFor, missingLayers } from "./host/distribute";
import { platformFor } from "./host/image";
import { pluginProblems } from "./host/plugins";
import type { OpenCluster } from "./open";
import type { CurrentCluster, Plan } from "./plan";
import { DISTRIBUTE } from "./plan/kinds";
import type { ClusterRecord } from "./state/record";

/** Hosts that cannot take the plan, each with every reason: found before anything is changed. */
export class ValidationError extends Error {
  constructor(readonly problems: { host?: string; problem: string }[]) {
    super(`the cluster cannot be applied as specified:\n${problems.map((p) => `  ${p.host ? `${p.host}: ` : ""}${p.problem}`).join("\n")}`);
    this.name = "ValidationError";
  }
}

const MiB = 1 << 20;
/** Room kept free beyond the image itself (logs, rendered files, the runtime's own data). */
const DISK_MARGIN = 64 * MiB;
const MAX_CLOCK_SKEW_MS = 30_000;

/**
 * Validate: the architecture of every host the plan touches has an image, host names are
 * unique across the cluster, the data root has room for what will be sent, and the plugins
 * fit the runtime. Clock skew is a warning (certificates and leases care; sealant does not).
 */
export async function validateHosts(ctx: OpenCluster, plan: Plan, current: CurrentCluster | undefined): Promise<void> {
  const problems: { host?: string; problem: string }[] = [
    ...pluginProblems(ctx.spec.plugins, ctx.runtime.kind),
    ...(ctx.runtime.settingsProblems?.(ctx.spec.runtime) ?? []),
  ].map((problem) => ({ problem }));
  // A running cluster moving to another runtime version (only then: a resumed apply is past this).
  const runningVersion = (current as ClusterRecord | undefined)?.runtimeVersion;
  const change =
    current && current.imageDigest !== ctx.image.digest ? ctx.runtime.changeProblem?.(runningVersion, ctx.image.metadata.runtime?.version) : undefined;
  if (change) problems.push({ problem: change });
  const distributing = new Set(plan.phases.flatMap((p) => p.steps.filter((s) => s.kind === DISTRIBUTE).map((s) => s.host)));
  const available = [...ctx.image.platforms.keys()].join(", ");

  for (const ip of distributing) {
    const facts = ctx.facts.get(ip)!;
    const pf = platformFor(ctx.image, facts.arch);
    if (!pf) {
      problems.push({ host: ip, problem: `architecture ${facts.arch} has no image in ${ctx.image.ref} (it has: ${available})` });
      continue;
    }
    const missing = missingLayers(layersFor(pf, ctx.registry?.servers.includes(ip) ?? false), facts);
    let need = 0;
    for (const l of missing) need += await extractedSize(ctx.session.store, l);
    if (need > 0 && facts.freeBytes < need + DISK_MARGIN) {
      problems.push({
        host: ip,
        problem: `not enough free disk for the image under ${ctx.layout.root}: needs ${mib(need + DISK_MARGIN)} MiB (${mib(need)} MiB of layers + ${mib(DISK_MARGIN)} MiB headroom), ${mib(facts.freeBytes)} MiB free`,
      });
    }
  }

  // Host names: the hosts asked now, and the names the record keeps for the others.
  const names = new Map<string, string[]>();
  const desired = new Set(ctx.desired.hosts.map((h) => h.ip));
  for (const h of ctx.desired.hosts) {
    const name = ctx.facts.get(h.ip)?.hostname ?? current?.hosts.find((r) => r.ip === h.ip)?.hostname;
    if (name) names.set(name, [...(names.get(name) ?? []), h.ip]);
  }
  for (const [name, ips] of names) {
    if (ips.length > 1 && ips.some((ip) => desired.has(ip))) {
      problems.push({
        problem: `hosts ${ips.join(", ")} all have the host name "${name}": every host needs its own name (set one with a HOSTNAME plugin or on the hosts)`,
      });
    }
  }

  // No master of the spec has the cluster's record, yet a host holds its files: the hosts
  // belong to a running cluster whose recorded masters were left out. Creating anew there
  // would set up a second control plane beside the first.
  if (!current) {
    const holding = ctx.desired.hosts.filter((h) => (ctx.facts.get(h.ip)?.images.size ?? 0) > 0).map((h) => h.ip);
    if (holding.length > 0) {
      problems.push({
        problem: `${holding.join(", ")} already ${holding.length === 1 ? "holds" : "hold"} files of cluster ${ctx.spec.name} under ${ctx.layout.root}, but no master in the spec has the cluster's record: keep at least one of the cluster's current masters in the spec (a running cluster's masters cannot all be replaced at once), or reset ${holding.length === 1 ? "that host" : "those hosts"} first`,
      });
    }
  }

  for (const [ip, f] of ctx.facts) {
    if (Math.abs(f.clockSkewMs) > MAX_CLOCK_SKEW_MS)
      ctx.emit({ type: "warning", host: ip, text: `clock is ${Math.round(f.clockSkewMs / 1000)} s off this machine's` });
  }
  if (problems.length > 0) throw new ValidationError(problems);
}

function mib(bytes: number): number {
  return Math.round(bytes / MiB);
}
