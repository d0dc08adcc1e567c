import { createHash } from "node:crypto";
import {
  BOOTSTRAP,
  CHECK,
  CLEANUP,
  DISTRIBUTE,
  HOST_SETTINGS,
  INIT_HOST,
  JOIN,
  LAUNCH,
  LEAVE,
  MIRRORS,
  PULL_THROUGH,
  PUSH,
  REGISTRY,
  REGISTRY_REMOVAL,
  RENDER,
  RESET,
  UPGRADE,
  pluginKind,
  pluginStepWords,
} from "./kinds";
import { rollingBatches } from "./batches";
import { userRegistriesPhase } from "./user-registries";
import { registryRemoval } from "./registry-switch";
import { relaySummary, withRelaySources } from "./distribution";
import { describeHosts, rolelessNote, rollStepWords } from "./format";
import { hasRole, isMaster } from "./roles";
import { withCertificates } from "./certificates";
import { checkMasterChange } from "./masters";
import type { Action, CurrentCluster, DesiredCluster, Plan, PlanPhase, PlanStep, PlannedHost, RecordedHost, StepKind } from "./types";

import { PlanError } from "./errors";

export { PlanError };

/**
 * Desired vs current → the ordered phases that make the cluster so. Pure and deterministic:
 * the same inputs give the same plan, which is what `sealant plan` prints, `pulumi preview`
 * shows and `apply` executes. Steps a host has already completed (per the cluster's state
 * record) are left out, which is how an interrupted apply resumes.
 */
export function planCluster(desired: DesiredCluster, current: CurrentCluster | undefined): Plan {
  checkDesired(desired);
  if (current && current.name !== desired.name) {
    throw new PlanError(`the cluster on these hosts is "${current.name}", not "${desired.name}": renaming a cluster replaces it (reset it first)`);
  }
  const recorded = new Map((current?.hosts ?? []).map((h) => [h.ip, h]));
  const members = (current?.hosts ?? []).filter((h) => h.member);
  const memberIps = new Set(members.map((h) => h.ip));
  const desiredIps = new Set(desired.hosts.map((h) => h.ip));

  for (const h of desired.hosts) {
    const was = recorded.get(h.ip);
    if (was?.member && !sameRoles(was.roles, h.roles)) {
      throw new PlanError(
        `${h.ip} is a ${was.roles.join("+")} and would become a ${h.roles.join("+")}: changing a host's roles in place is not supported; remove it, apply, then add it back`,
      );
    }
  }

  // A create that failed part way (some hosts joined) is resumed as a create, not a scale-up.
  const creating = members.length === 0 || current?.creating === true;
  const added = desired.hosts.filter((h) => !memberIps.has(h.ip));
  const kept = desired.hosts.filter((h) => memberIps.has(h.ip));
  // Recorded hosts no longer wanted: members leave first; a host whose join never finished only needs its files removed.
  const removed = (current?.hosts ?? []).filter((h) => !desiredIps.has(h.ip));
  // A host without a role never joined (see roles.ts): it has nothing to leave.
  const removedMembers = removed.filter((h) => h.member && hasRole(h));
  checkMasterChange(desired, current, creating);
  const img = shortDigest(desired.imageDigest);
  const cfg = shortDigest(desired.configDigest);
  const version = `${img}.${cfg}`;
  // A host can differ from the cluster: an upgrade that failed halfway, then reverted.
  const hostImageDiffers = (h: PlannedHost): boolean => {
    const r = recorded.get(h.ip);
    return r !== undefined && r.imageDigest !== "" && r.imageDigest !== desired.imageDigest;
  };
  const hostConfigDiffers = (h: PlannedHost): boolean => {
    const r = recorded.get(h.ip);
    if (r?.configDigest !== undefined && r.configDigest !== desired.configDigest) return true;
    // Files rendered for another version (a reconfigure that stopped before this host's restart).
    return (r?.done ?? []).some((id) => id.startsWith(`${RENDER}@`) && id !== `${RENDER}@${version}`);
  };
  const clusterImageChanged = !creating && current!.imageDigest !== desired.imageDigest;
  const clusterConfigChanged = !creating && current!.configDigest !== desired.configDigest;
  // The kept hosts to roll: all of them for a new image or config, else those that drifted.
  const stale = clusterImageChanged || clusterConfigChanged ? kept : kept.filter((h) => hostImageDiffers(h) || hostConfigDiffers(h));
  const imageChanged = clusterImageChanged || stale.some(hostImageDiffers);
  const configChanged = stale.length > 0 && !imageChanged;
  const firstMaster = desired.hosts.find((h) => isMaster(h))!;

  const done = (ip: string): Set<string> => new Set(recorded.get(ip)?.done ?? []);
  const phases: PlanPhase[] = [];
  const summary: string[] = [];
  const actions: Action[] = [];
  const phase = (name: string, title: string, mode: PlanPhase["mode"], steps: PlanStep[]): void => {
    const todo = steps.filter((s) => !done(s.host).has(s.id));
    if (todo.length > 0) phases.push({ name, title, mode, steps: todo });
  };
  const step = (host: PlannedHost, kind: StepKind, description: string, stepVersion?: string): PlanStep => ({
    id: stepVersion ? `${kind}@${stepVersion}` : kind,
    kind,
    host: host.ip,
    description,
  });
  /**
   * A plugin's phase. Host phases run on the phase's hosts (within the plugin's scope);
   * cluster phases on the hosts of the scope, or the first master when it has none.
   */
  const plugins = (action: string, phaseHosts: PlannedHost[] | "cluster", stepVersion?: string): void => {
    for (const p of desired.plugins ?? []) {
      if (p.action !== action) continue;
      const base = phaseHosts === "cluster" ? (p.scope ? desired.hosts : [firstMaster]) : phaseHosts;
      const on = p.scope ? base.filter((h) => p.scope!.includes(h.ip)) : base;
      phase(
        `plugin:${action}`,
        `Plugin ${p.name} (${action})`,
        "parallel",
        on.map((h) => step(h, pluginKind(p.name, action), pluginStepWords(p, h.ip), stepVersion)),
      );
    }
  };

  // Scale-down first: removed members leave while the cluster still has them to hand over.
  if (removed.length > 0) {
    actions.push("scale-down");
    summary.push(`remove ${describeHosts(removed)}`);
    phase(
      "runtime:leave",
      "Leave the cluster",
      "serial",
      removedMembers.map((h) => step(h, LEAVE, `${h.ip} leaves the cluster`)),
    );
    plugins("pre-clean-host", removed);
    phase(
      "runtime:reset",
      "Reset removed hosts",
      "parallel",
      removed.map((h) => step(h, RESET, `reset ${h.ip}`)),
    );
    plugins("post-clean-host", removed);
    phase(
      CLEANUP,
      "Remove sealant's files from removed hosts",
      "parallel",
      removed.map((h) => step(h, CLEANUP, `delete the data root on ${h.ip}`)),
    );
  }

  // Everything a host needs before its runtime steps, for new hosts and (new image) all.
  const refresh = [...added, ...stale];
  if (refresh.length > 0) {
    phase(
      DISTRIBUTE,
      "Distribute the image",
      "parallel",
      withRelaySources(
        refresh.map((h) => step(h, DISTRIBUTE, `send image ${img} to ${h.ip}`, img)).filter((s) => !done(s.host).has(s.id)),
        desired.distribution,
      ),
    );
    phase(
      RENDER,
      "Render configuration",
      "parallel",
      refresh.map((h) => step(h, RENDER, `render templates and configs on ${h.ip}`, version)),
    );
  }
  // A registry mode the cluster left (own <-> external): what it put on the hosts goes before the new one's steps.
  const removal = registryRemoval(desired, current);
  if (removal) {
    summary.push(removal.summary);
    for (const batch of removal.batches)
      phase(
        REGISTRY_REMOVAL,
        removal.title,
        "parallel",
        batch.map((h) => step(h, REGISTRY_REMOVAL, removal.describe(h), removal.mode)),
      );
  }
  if (desired.registry) {
    // Versioned by the server list too: a changed set of servers re-points every host.
    const regVersion = `${version}.${shortHash(desired.registry.servers.join(","))}`;
    const servers = desired.hosts.filter((h) => desired.registry!.servers.includes(h.ip));
    phase(REGISTRY, "Serve the cluster's registry", "parallel", [
      ...servers.map((h) => step(h, REGISTRY, `serve the image's registry on ${h.ip}`, regVersion)),
      ...desired.hosts.map((h) => step(h, MIRRORS, `point ${h.ip}'s container runtime at the cluster's registry`, regVersion)),
    ]);
    // After the mirrors: for an upstream's domain, its hosts.toml replaces the registry's.
    // None left but some cached before: the step stops them and gives the hosts the registry's files back.
    const upstreams = desired.registry.pullThrough ?? 0;
    const cachedBefore = desired.hosts.some((h) => [...done(h.ip)].some((id) => id.startsWith(`${PULL_THROUGH}@`)));
    if (upstreams > 0 || cachedBefore)
      phase(
        PULL_THROUGH,
        upstreams > 0 ? `Cache ${upstreams} upstream registr${upstreams === 1 ? "y" : "ies"} beside the cluster's registry` : "Stop the pull-through caches",
        "parallel",
        desired.hosts.map((h) =>
          step(
            h,
            PULL_THROUGH,
            servers.includes(h) ? `run the pull-through caches on ${h.ip} and point it at them` : `point ${h.ip} at the pull-through caches`,
            regVersion,
          ),
        ),
      );
  }
  if (desired.externalRegistry) {
    // No registry of the cluster's own: the images go to the external one (from this machine,
    // recorded on the first master), and every host's container runtime is pointed at it.
    const ext = desired.externalRegistry;
    const n = `${ext.images} container image${ext.images === 1 ? "" : "s"}`;
    phase(PUSH, `Push the container images to ${ext.endpoint}`, "serial", [step(firstMaster, PUSH, `push ${n} to ${ext.endpoint}`, `${img}.${ext.version}`)]);
    phase(
      MIRRORS,
      `Point the hosts at ${ext.endpoint}`,
      "parallel",
      desired.hosts.map((h) => step(h, MIRRORS, `point ${h.ip}'s container runtime at ${ext.endpoint}`, `${version}.${ext.version}`)),
    );
  }
  const own = userRegistriesPhase(desired, done, version);
  if (own) phase(MIRRORS, own.title, "parallel", own.steps);
  if (added.length > 0) {
    plugins("pre-init-host", added);
    phase(
      "runtime:init-host",
      "Prepare hosts",
      "parallel",
      added.map((h) => step(h, INIT_HOST, `prepare ${h.ip}`)),
    );
    plugins("post-init-host", added);
  }

  /** Masters change membership one at a time; other hosts join in parallel. */
  const joins = (hosts: PlannedHost[]): void => {
    phase(
      "runtime:join-masters",
      "Join masters",
      "serial",
      hosts.filter((h) => isMaster(h)).map((h) => step(h, JOIN, `${h.ip} joins as master`)),
    );
    phase(
      "runtime:join",
      "Join hosts",
      "parallel",
      hosts.filter((h) => !isMaster(h) && hasRole(h)).map((h) => step(h, JOIN, `${h.ip} joins as ${h.roles.join("+")}`)),
    );
  };
  if (creating) {
    actions.push("create");
    summary.push(`create cluster ${desired.name} on ${describeHosts(desired.hosts)} with image ${img}`, ...rolelessNote(desired.hosts));
    plugins("pre-install", "cluster");
    if (desired.bootstrap === "first-master") {
      phase("runtime:bootstrap", "Bootstrap the cluster", "serial", [step(firstMaster, BOOTSTRAP, `bootstrap ${firstMaster.ip}`)]);
      joins(desired.hosts.filter((h) => h !== firstMaster));
    } else {
      phase(
        "runtime:bootstrap",
        "Bootstrap the cluster",
        "parallel",
        desired.hosts.filter(hasRole).map((h) => step(h, BOOTSTRAP, `bootstrap ${h.ip}`)),
      );
    }
  } else if (added.length > 0) {
    actions.push("scale-up");
    const joining = added.filter(hasRole);
    summary.push(...(joining.length > 0 ? [`join ${describeHosts(joining)}`] : []), ...rolelessNote(added));
    const joinVersion = shortHash(added.map((h) => h.ip).join(","));
    plugins("pre-scaleup", "cluster", joinVersion);
    joins(added);
  }
  if (added.length > 0) {
    phase(
      "runtime:check",
      "Check new hosts",
      "parallel",
      added.filter(hasRole).map((h) => step(h, CHECK, `check ${h.ip}`)),
    );
  }
  if (creating) plugins("post-install", "cluster");
  else if (added.length > 0) plugins("post-scaleup", "cluster", shortHash(added.map((h) => h.ip).join(",")));

  if (stale.length > 0) {
    const what = !imageChanged
      ? `apply changed configuration ${cfg}`
      : clusterImageChanged
        ? `upgrade image ${shortDigest(current!.imageDigest)} -> ${img}`
        : `bring hosts left on another image back to ${img}`;
    actions.push(imageChanged ? "upgrade" : "reconfigure");
    const batches = rollingBatches(stale, desired.upgrade.maxUnavailable);
    summary.push(`${what} on ${stale.length} host${stale.length === 1 ? "" : "s"} (${batches.length} batch${batches.length === 1 ? "" : "es"})`);
    const hostPlugins = (desired.plugins ?? []).filter((p) => p.action === "upgrade-host");
    batches.forEach((batch, i) => {
      const steps = batch.flatMap((h) => [
        ...hostPlugins
          .filter((p) => !p.scope || p.scope.includes(h.ip))
          .map((p) => step(h, pluginKind(p.name, "upgrade-host"), pluginStepWords(p, h.ip), version)),
        // A host without a role gets the new files (distribute, render) and its plugins; the runtime never had it.
        ...(hasRole(h) ? [step(h, UPGRADE, rollStepWords(desired, h, imageChanged), version), step(h, CHECK, `check ${h.ip}`, version)] : []),
      ]);
      phase(`runtime:upgrade`, `Rolling upgrade, batch ${i + 1}/${batches.length}: ${batch.map((h) => h.ip).join(", ")}`, "serial", steps);
    });
    plugins("upgrade", "cluster", version);
  }

  // Members whose labels or taints changed, and (runtimes whose workers follow the masters)
  // workers whose masters changed: their settings applied again, nothing else touched.
  const masterIps = desired.hosts.filter((h) => isMaster(h)).map((h) => h.ip);
  const follows = (h: PlannedHost) => (desired.workersFollowMasters && !isMaster(h) && hasRole(h) ? masterIps : []);
  const settingsOf = (h: PlannedHost) => JSON.stringify([Object.entries(h.labels ?? {}).sort(), [...(h.taints ?? [])].sort()]);
  const relabel = kept.filter(
    (h) => hasRole(h) && (h.labels !== undefined || h.taints !== undefined) && settingsOf(h) !== settingsOf(recorded.get(h.ip) ?? { ip: h.ip, roles: [] }),
  );
  const repoint = kept.filter(
    (h) => follows(h).join(",") !== (desired.workersFollowMasters && !isMaster(h) && hasRole(h) ? (recorded.get(h.ip)?.follows ?? []).join(",") : ""),
  );
  const resettle = kept.filter((h) => relabel.includes(h) || repoint.includes(h));
  if (relabel.length > 0) summary.push(`set labels and taints on ${relabel.map((h) => h.ip).join(", ")}`);
  if (repoint.length > 0) summary.push(`point ${repoint.map((h) => h.ip).join(", ")} at masters ${masterIps.join(", ")}`);
  if (resettle.length > 0) {
    phase(
      HOST_SETTINGS,
      "Set host labels, taints and masters",
      "parallel",
      resettle.map((h) => step(h, HOST_SETTINGS, `settings of ${h.ip}`, shortHash(settingsOf(h) + follows(h).join(",")))),
    );
  }

  // Apps are the cluster's, not a host's: launched at create and again for a new image or config.
  if (desired.launch && (creating || imageChanged || configChanged)) {
    phase(LAUNCH, "Launch apps", "serial", [step(firstMaster, LAUNCH, `launch the image's apps from ${firstMaster.ip}`, version)]);
  }
  if (phases.length === 0) summary.push(`no changes to cluster ${desired.name}`);
  else if (summary.length === 0) summary.push(`resume cluster ${desired.name}: ${phases.length} unfinished phase${phases.length === 1 ? "" : "s"}`);
  // How each host gets the image, when hosts relay it (every other host: straight from the operator).
  const relayLine = relaySummary(phases.find((p) => p.name === DISTRIBUTE)?.steps ?? [], desired.distribution);
  if (relayLine) summary.push(relayLine);
  const plan: Plan = { cluster: desired.name, actions, phases, summary, ...(desired.warnings?.length ? { warnings: desired.warnings } : {}) };
  return withCertificates(plan, desired, current);
}

/** Everything a reset does: each host's reset hook, then sealant's files (plugins at their phases). */
export function planReset(current: CurrentCluster, plugins: DesiredCluster["plugins"] = []): Plan {
  const hosts = current.hosts;
  const firstMaster = hosts.find((h) => isMaster(h)) ?? hosts[0];
  const step = (h: RecordedHost, kind: StepKind, description: string): PlanStep => ({ id: kind, kind, host: h.ip, description });
  const phases: PlanPhase[] = [];
  const pluginPhase = (action: string, on: RecordedHost[]): void => {
    for (const p of plugins ?? []) {
      if (p.action !== action) continue;
      const targets = p.scope ? hosts.filter((h) => p.scope!.includes(h.ip)) : on;
      if (targets.length > 0) {
        phases.push({
          name: `plugin:${action}`,
          title: `Plugin ${p.name} (${action})`,
          mode: "parallel",
          steps: targets.map((h) => step(h, pluginKind(p.name, action), pluginStepWords(p, h.ip))),
        });
      }
    }
  };
  pluginPhase("pre-uninstall", firstMaster ? [firstMaster] : []);
  pluginPhase("pre-clean-host", hosts);
  phases.push({ name: "runtime:reset", title: "Reset hosts", mode: "parallel", steps: hosts.map((h) => step(h, RESET, `reset ${h.ip}`)) });
  pluginPhase("post-clean-host", hosts);
  pluginPhase("post-uninstall", firstMaster ? [firstMaster] : []);
  phases.push({
    name: CLEANUP,
    title: "Remove sealant's files",
    mode: "parallel",
    steps: hosts.map((h) => step(h, CLEANUP, `delete the data root on ${h.ip}`)),
  });
  return { cluster: current.name, actions: ["reset"], phases, summary: [`reset cluster ${current.name} on ${describeHosts(hosts)}`] };
}

function checkDesired(desired: DesiredCluster): void {
  const seen = new Set<string>();
  for (const h of desired.hosts) {
    if (seen.has(h.ip)) throw new PlanError(`host ${h.ip} is listed twice`);
    seen.add(h.ip);
  }
  if (!desired.hosts.some((h) => isMaster(h))) throw new PlanError(`cluster ${desired.name} has no host with role "master"`);
}

function sameRoles(a: string[], b: string[]): boolean {
  return [...a].sort().join(",") === [...b].sort().join(",");
}

export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, "").slice(0, 12);
}

function shortHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 8);
}
