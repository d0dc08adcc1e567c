import { desiredCluster } from "./desired";
import { resolveClusterImage, type ClusterImage } from "./host/image";
import { openCluster, readRecord, type ClusterOptions } from "./open";
import { PlanError, type Plan } from "./plan";
import { planUpgradePath, upgradePath, type PathStage } from "./plan/upgrade-path";
import { resolveHosts, type ClusterSpec } from "./spec";
import type { ClusterRecord } from "./state/record";

/** What each one-minor apply returns that the whole change adds up. */
interface StageResult {
  plan: Plan;
  sent: Record<string, number>;
}

/**
 * An apply whose image is several minor versions ahead of the running cluster, made of one apply
 * per minor: through the spec's `upgrade.through` images (only the members move; hosts joining,
 * leaving or changing do so in the last, the spec's own), then the spec as given. Each step is a
 * full apply — its upgrade and checks (nodes Ready on that version, control planes healthy)
 * done before the next one starts — and an interrupted change resumes from the record, which
 * keeps the last version finished. The plan returned is the whole change's, every step planned
 * from the record the step before leaves; a dry run validates the first step's hosts.
 */
export async function throughUpgradePath<R extends StageResult>(
  opts: ClusterOptions & { dryRun?: boolean },
  applyOnce: (spec: ClusterSpec) => Promise<R>,
): Promise<R> {
  const through = opts.spec.upgrade.through ?? [];
  if (through.length === 0) return applyOnce(opts.spec);
  const target = await resolveClusterImage(opts.session, opts.spec.image, opts.signal);
  const targetVersion = target.metadata.runtime?.version;
  const current = targetVersion ? await recordOf(opts) : undefined;
  if (!current || current.creating || !targetVersion) return applyOnce(opts.spec);

  const members = new Set(current.hosts.filter((h) => h.member).map((h) => h.ip));
  const path = await upgradeStages(opts.spec, target, current.runtimeVersion, members, (ref) => resolveClusterImage(opts.session, ref, opts.signal));
  if (!path) return applyOnce(opts.spec);
  const { specs, stages } = path;
  const plan = planUpgradePath(stages, current);
  if (opts.dryRun) return { ...(await applyOnce(specs[0]!)), plan };

  const sent: Record<string, number> = {};
  let last: R | undefined;
  for (const spec of specs) {
    last = await applyOnce(spec);
    for (const [ip, bytes] of Object.entries(last.sent)) sent[ip] = (sent[ip] ?? 0) + bytes;
  }
  return { ...last!, plan, sent };
}

/** The one-minor applies a change is made of: each stage's spec and what it plans. */
export interface UpgradeStages {
  specs: ClusterSpec[];
  stages: PathStage[];
}

/**
 * The stages from a cluster running `running` (members `members`) to `spec` with image
 * `target`, through the spec's `upgrade.through` images (found by `resolve`: pulled for an
 * apply, from the local store for a preview); undefined when the target is at most one minor
 * ahead. A missing minor, a downgrade or another major is a PlanError (upgrade-path.ts).
 */
export async function upgradeStages(
  spec: ClusterSpec,
  target: ClusterImage,
  running: string | undefined,
  members: Set<string>,
  resolve: (ref: string) => Promise<ClusterImage>,
): Promise<UpgradeStages | undefined> {
  const targetVersion = target.metadata.runtime?.version;
  if (!targetVersion) return undefined;
  const offered = await Promise.all(
    (spec.upgrade.through ?? []).map(async (ref, i) => {
      const image = await resolve(ref);
      const version = image.metadata.runtime?.version;
      if (!version) throw new PlanError(`upgrade.through[${i}]: ${ref} declares no runtime version (label cluster.alpha.sealer.io/cluster-runtime-version)`);
      return { ref, digest: image.digest, version, image };
    }),
  );
  const hops = upgradePath(running, { ref: target.ref, digest: target.digest, version: targetVersion }, offered) as typeof offered;
  if (hops.length === 0) return undefined;
  const specs = [...hops.map((h) => stageSpec(spec, h.ref, members)), spec];
  const images = [...hops.map((h) => h.image), target];
  const versions = [running!, ...hops.map((h) => h.version), targetVersion];
  const stages = specs.map((s, i) => ({ desired: desiredFor(s, images[i]!), image: s.image, from: versions[i]!, to: versions[i + 1]! }));
  return { specs, stages };
}

/** The cluster's record, read from its masters (nothing changed, no lock: each step's apply takes it). */
async function recordOf(opts: ClusterOptions): Promise<ClusterRecord | undefined> {
  const ctx = await openCluster(opts, "read");
  try {
    return await readRecord(ctx);
  } finally {
    await ctx.close();
  }
}

/** An intermediate step's spec: the step's image, on the hosts that are members now. */
function stageSpec(spec: ClusterSpec, image: string, members: Set<string>): ClusterSpec {
  const hosts = spec.hosts.map((g) => ({ ...g, ips: g.ips.filter((ip) => members.has(ip)) })).filter((g) => g.ips.length > 0);
  return { ...spec, image, hosts };
}

function desiredFor(spec: ClusterSpec, image: ClusterImage) {
  return desiredCluster(spec, image, resolveHosts(spec, image.metadata.env));
}
