import { BOOTSTRAP, HOST_SETTINGS, JOIN, kindOfId } from "./kinds";
import { planCluster, PlanError, shortDigest } from "./planner";
import { isMaster } from "./roles";
import type { Action, CurrentCluster, DesiredCluster, Plan, PlanPhase } from "./types";

/**
 * Upgrades across several minor versions. kubeadm's skew policy allows one minor version at a
 * time and never down, and each step needs that minor's own kubeadm and kubelet, which only an
 * image of that minor holds: the spec names those images (`upgrade.through`), the path below
 * picks one per minor between the running version and the target, and the whole change is
 * planned as consecutive one-minor steps, each planned from the record the step before leaves.
 */

/** A runtime version as images declare it (e.g. "v1.31.4"). */
export interface RuntimeVersion {
  major: number;
  minor: number;
  patch: number;
  /** As written, with a leading "v". */
  text: string;
}

/** Semantic version with an optional pre-release/build suffix of its own characters only: it lands in commands on hosts. */
const VERSION = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?$/;

export function parseRuntimeVersion(text: string, where: string): RuntimeVersion {
  const m = VERSION.exec(text.trim());
  if (!m) throw new PlanError(`${where}: ${JSON.stringify(text)} is not a Kubernetes version (expected vMAJOR.MINOR.PATCH, e.g. v1.31.4)`);
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return { major, minor, patch, text: text.trim().startsWith("v") ? text.trim() : `v${text.trim()}` };
}

export function compareRuntimeVersions(a: RuntimeVersion, b: RuntimeVersion): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/** An image a cluster can run: the target, or one the spec offers for an intermediate step. */
export interface PathImage {
  ref: string;
  digest: string;
  /** Its runtime version label. */
  version: string;
}

/**
 * The images a cluster running `running` goes through before `target`, in order: none when the
 * target is at most one minor version ahead. A downgrade, another major version, or a minor
 * with no image in `through` is refused here, before anything changes — one error naming every
 * missing minor. Images in `through` outside the path are left alone (a spec keeps its list
 * across upgrades); of several for one minor, the newest patch is taken.
 */
export function upgradePath(running: string | undefined, target: PathImage, through: PathImage[]): PathImage[] {
  if (running === undefined) return [];
  const from = parseRuntimeVersion(running, "the cluster's running Kubernetes version");
  const to = parseRuntimeVersion(target.version, `the image ${target.ref}'s Kubernetes version`);
  if (compareRuntimeVersions(to, from) < 0)
    throw new PlanError(`Kubernetes ${from.text} cannot be downgraded to ${to.text} (${target.ref}): kubeadm only upgrades; restore a backup to go back`);
  if (to.major !== from.major) throw new PlanError(`Kubernetes ${from.text} cannot be upgraded to ${to.text} (${target.ref}): another major version`);
  if (to.minor <= from.minor + 1) return [];
  const offered = through.map((i) => ({ image: i, v: parseRuntimeVersion(i.version, `upgrade.through: ${i.ref}'s Kubernetes version`) }));
  const hops: PathImage[] = [];
  const missing: string[] = [];
  for (let minor = from.minor + 1; minor < to.minor; minor++) {
    const fits = offered.filter((o) => o.v.major === from.major && o.v.minor === minor).sort((a, b) => b.v.patch - a.v.patch);
    if (fits[0]) hops.push(fits[0].image);
    else missing.push(`v${from.major}.${minor}`);
  }
  if (missing.length > 0) {
    const has = offered.length > 0 ? offered.map((o) => `${o.image.ref} (${o.v.text})`).join(", ") : "nothing";
    throw new PlanError(
      `Kubernetes ${from.text} -> ${to.text} goes one minor version at a time (kubeadm's version skew policy), and each step needs an image of that minor: ` +
        `none for ${missing.map((m) => `${m}.x`).join(", ")}. Name ${missing.length === 1 ? "one" : "them"} in upgrade.through ` +
        `(e.g. upgrade: {through: ["sealant/kubernetes:${missing[0]}.N"]}); upgrade.through has ${has}`,
    );
  }
  return hops;
}

/** One step of a multi-minor upgrade: the cluster as it must be after it, and the versions it goes between. */
export interface PathStage {
  desired: DesiredCluster;
  /** The image as the spec names it, for the plan. @default desired.image */
  image?: string;
  from: string;
  to: string;
}

/**
 * The plan of a change through intermediate images: each stage planned from the record the
 * stage before leaves (as a finished apply writes it), its phases titled with the step, its
 * summary saying from, to, which image and on which hosts. The last stage is the spec's own
 * change (scale-up, removals, configuration): intermediate stages only move the members.
 */
export function planUpgradePath(stages: PathStage[], current: CurrentCluster): Plan {
  let record = current;
  const phases: PlanPhase[] = [];
  const summary: string[] = [];
  const actions = new Set<Action>();
  const warnings = new Set<string>();
  stages.forEach((s, i) => {
    const plan = planCluster(s.desired, record);
    const step = `upgrade step ${i + 1}/${stages.length}: Kubernetes ${s.from} -> ${s.to}`;
    summary.push(
      `${step} with image ${s.image ?? s.desired.image} (${shortDigest(s.desired.imageDigest)}); every host checked (node Ready on ${s.to}, its control plane healthy) before the next step`,
      ...plan.summary.map((line) => `  ${line}`),
    );
    phases.push(...plan.phases.map((p) => ({ ...p, title: `[${step}] ${p.title}` })));
    for (const a of plan.actions) actions.add(a);
    for (const w of plan.warnings ?? []) warnings.add(w);
    record = afterStage(record, s.desired, plan);
  });
  return {
    cluster: stages[0]?.desired.name ?? current.name,
    actions: [...actions],
    phases,
    summary,
    ...(warnings.size > 0 ? { warnings: [...warnings] } : {}),
  };
}

const SETTLING = new Set<string>([BOOTSTRAP, JOIN, HOST_SETTINGS]);

/** The record a finished apply of `plan` leaves: every desired host a member on its image and configuration, old versions' step ids dropped. */
export function afterStage(current: CurrentCluster, desired: DesiredCluster, plan: Plan): CurrentCluster {
  const img = shortDigest(desired.imageDigest);
  const stepsOf = (ip: string) => plan.phases.flatMap((p) => p.steps.filter((s) => s.host === ip).map((s) => s.id));
  return {
    name: desired.name,
    imageDigest: desired.imageDigest,
    configDigest: desired.configDigest,
    hosts: desired.hosts.map((h) => {
      const was = current.hosts.find((r) => r.ip === h.ip);
      const ran = stepsOf(h.ip);
      const done = [...new Set([...(was?.done ?? []), ...ran])].filter((id) => !id.includes("@") || id.includes(`@${img}`));
      // What a join or a settings step records (steps/host-settings.ts): the masters a worker follows.
      const settled = ran.some((id) => SETTLING.has(kindOfId(id)));
      const follows = settled && desired.workersFollowMasters && !isMaster(h) ? desired.hosts.filter(isMaster).map((m) => m.ip) : was?.follows;
      return { ...h, member: true, imageDigest: desired.imageDigest, configDigest: desired.configDigest, done, ...(follows ? { follows } : {}) };
    }),
  };
}
