/**
 * A preview of a change several Kubernetes minors ahead: the one-minor steps `up` will run
 * (through the spec's `upgrade.through` images), planned from the old inputs as applied —
 * what the CLI's plan shows, without SSH. Images are looked up in the local store only.
 */
import type { ClusterImage } from "../../engine/cluster/image";
import type { CurrentCluster, Plan } from "../../engine/cluster/plan";
import { planUpgradePath } from "../../engine/cluster/plan/upgrade-path";
import { selectRuntime } from "../../engine/cluster/runtime";
import type { ClusterSpec } from "../../engine/cluster/spec";
import { upgradeStages } from "../../engine/cluster/upgrade-stages";

/** A `through` image the local store does not hold: the steps are planned when `up` pulls it. */
class ImageNotLocal extends Error {}

/**
 * The whole change's plan when `spec`'s image is more than one minor ahead of `old`'s, else
 * undefined. A missing minor or a downgrade throws the engine's PlanError (the preview fails
 * with it, as `up` would); a `through` image not pulled yet gives a one-line note instead.
 */
export async function upgradePathPreview(
  spec: ClusterSpec,
  target: ClusterImage | undefined,
  old: ClusterImage | undefined,
  current: CurrentCluster,
  lookUp: (ref: string) => Promise<ClusterImage | undefined>,
): Promise<Plan | string | undefined> {
  const running = old?.metadata.runtime?.version;
  if (!target || !old || !running) return undefined;
  if ((spec.upgrade.through ?? []).length === 0) {
    // No steps offered: what apply checks before anything changes (e.g. a skipped minor).
    const problem =
      target.digest === old.digest ? undefined : selectRuntime(target.metadata, target.ref).changeProblem?.(running, target.metadata.runtime?.version);
    if (problem) throw new Error(problem);
    return undefined;
  }
  const members = new Set(current.hosts.filter((h) => h.member).map((h) => h.ip));
  try {
    const path = await upgradeStages(spec, target, running, members, async (ref) => {
      const found = await lookUp(ref);
      if (!found) throw new ImageNotLocal(ref);
      return found;
    });
    return path && planUpgradePath(path.stages, current);
  } catch (err) {
    if (!(err instanceof ImageNotLocal)) throw err;
    return `note: upgrade.through image ${err.message} is not in the local store: its one-minor steps are planned when \`up\` pulls it`;
  }
}
