/**
 * The `Cluster` dynamic provider's implementation: plain functions over the engine (no
 * Pulumi import). The provider object in ../cluster.ts only `require`s this module, so
 * nothing here is ever serialised into Pulumi state.
 *
 * Preview opens no SSH connection: `check` plans from the old and new inputs alone (the old
 * inputs as if applied), which is the plan `update` then runs unless the cluster drifted — and
 * `update` plans again from the cluster's own record, so it never acts on a stale view.
 *
 * Refresh (`read`) observes the hosts (one command per member) and returns the inputs as they
 * hold: a host reset out of band leaves the inputs' hosts, so the next preview plans its join
 * from the refreshed inputs and shows the change, and `up` performs it.
 */
import { z } from "zod";
import { applyCluster, ApplyError, observeCluster, openCluster, readRecord, resetCluster, type ClusterEvent, type ClusterRecord } from "../../engine/cluster";
import { desiredCluster } from "../../engine/cluster/desired";
import { clusterCertificates } from "../../engine/cluster/certificates";
import { runtimeWarnings } from "../../engine/cluster/runtime-warnings";
import { resolveClusterImage, type ClusterImage } from "../../engine/cluster/image";
import { isMaster, planCluster, type CurrentCluster, type DesiredCluster, type Plan } from "../../engine/cluster/plan";
import type { RuntimeOutputs } from "../../engine/cluster/runtime";
import { resolveHosts, validateClusterSpec, type ClusterSpec, formatProblem } from "../../engine/cluster/spec";
import { emptyMetadata } from "../../engine/image/metadata";
import { ImageNotFoundError } from "../../engine/image/store";
import { parseReference } from "../../engine/image/reference";
import { Session } from "../../engine/session";
import { specInputOf, type ClusterInputs } from "./cluster-inputs";
import { describeValue, failuresOf, orUnknown } from "./inputs";
import { containsUnknown } from "./unknown";
import { upgradePathPreview } from "./cluster-upgrade-preview";
import { inputsOf } from "./cluster-diff";
import { enginePluginModules, forDestroy, planLines, pluginModuleFailures, pluginStepsOf, previewModules } from "./cluster-plugins";
import { parsePluginKind } from "../../engine/cluster/plan/kinds";
import { describePlugins } from "../../engine/cluster/plugins/describe";
import { PluginError } from "../../engine/cluster/plugins/errors";
import { withModuleDefaults, type LoadedPlugin } from "../../engine/cluster/plugins/load";

export { diff, networkRanges } from "./cluster-diff";

export interface CheckFailure {
  property: string;
  reason: string;
}

/**
 * The property a check failure names. Pulumi prints the named input's whole value next to the
 * failure, so inputs that hold secrets are never named (the reason carries the field's path).
 */
function reportedProperty(property: string): string {
  return SECRET_INPUTS.has(property) ? "" : property;
}
const SECRET_INPUTS = new Set(["ssh", "registry", "hosts"]);

/** What `delete` and a removal do with hosts they cannot reach: the inputs that are not the cluster spec's. */
const oneOf = (allowed: readonly string[]) =>
  orUnknown(
    z.enum(allowed as [string, ...string[]], {
      error: (iss) => `${describeValue(iss.input)} is not allowed (expected one of ${allowed.map((a) => JSON.stringify(a)).join(", ")})`,
    }),
  ).nullish();
const providerOptions = z.looseObject({ unreachableOnDelete: oneOf(["skip", "fail"]), unreachableOnRemove: oneOf(["fail", "force"]) });

function parseInputs(inputs: ClusterInputs): { spec?: ClusterSpec; failures: CheckFailure[] } {
  const options = providerOptions.safeParse(inputs);
  const optionFailures = options.success
    ? []
    : failuresOf(options.error.issues).map((f) => ({ property: f.property, reason: `Cluster inputs: ${f.property}: ${f.reason}` }));
  const r = validateClusterSpec(specInputOf(inputs), { source: "Cluster inputs" });
  const moduleFailures = r.spec ? pluginModuleFailures(r.spec, inputs.pluginModules) : [];
  if (r.spec && optionFailures.length === 0 && moduleFailures.length === 0) return { spec: r.spec, failures: [] };
  return {
    failures: [
      ...r.problems.map((p) => ({ property: reportedProperty(String(p.path || "hosts").split(/[.[]/)[0] ?? ""), reason: formatProblem(p) })),
      ...optionFailures,
      ...moduleFailures,
    ],
  };
}

/**
 * The image as far as preview knows it without pulling: from the local store, else undefined.
 * `seen` is one check's lookups: it plans the old and the new inputs, usually with the same image.
 */
function previewImage(spec: ClusterSpec, session: Session, seen: Map<string, Promise<ClusterImage | undefined>>): Promise<ClusterImage | undefined> {
  let found = seen.get(spec.image);
  if (!found) {
    found = lookUpImage(spec, session);
    seen.set(spec.image, found);
  }
  return found;
}

async function lookUpImage(spec: ClusterSpec, session: Session): Promise<ClusterImage | undefined> {
  try {
    return await resolveClusterImage(session, spec.image, undefined, { pull: false });
  } catch (err) {
    if (err instanceof ImageNotFoundError) return undefined;
    throw err;
  }
}

/**
 * The cluster as preview plans it. `modules`: the MODULE plugins, loaded (never run) so that
 * their phases, scope and describe() lines are in the plan; `describe` is false for the old
 * inputs (only their phases matter there).
 */
async function previewDesired(
  given: ClusterSpec,
  session: Session,
  seen: Map<string, Promise<ClusterImage | undefined>>,
  modules: ReadonlyMap<string, LoadedPlugin>,
  describe = true,
): Promise<DesiredCluster> {
  const spec = withModuleDefaults(given, modules);
  const image = await previewImage(spec, session, seen);
  let desired: DesiredCluster;
  if (image) {
    desired = desiredCluster(spec, image, resolveHosts(spec, image.metadata.env));
    const warnings = await runtimeWarnings(session.store, spec, image, desired);
    if (warnings.length > 0) desired = { ...desired, warnings };
  } else {
    const digest = parseReference(spec.image).digest ?? `sha256:${"0".repeat(64)}`;
    const empty: ClusterImage = { ref: spec.image, digest: digest as ClusterImage["digest"], metadata: emptyMetadata("kube-installer"), platforms: new Map() };
    desired = desiredCluster(spec, empty, resolveHosts(spec));
  }
  if (describe) describePlugins(desired, modules, (name) => spec.plugins.find((p) => p.name === name)?.config);
  return desired;
}

/** A cluster as a completed apply of `desired` leaves it: every planned step done. */
function asApplied(desired: DesiredCluster): CurrentCluster {
  const plan = planCluster(desired, undefined);
  const done = new Map<string, string[]>();
  for (const p of plan.phases) for (const s of p.steps) done.set(s.host, [...(done.get(s.host) ?? []), s.id]);
  return {
    name: desired.name,
    imageDigest: desired.imageDigest,
    configDigest: desired.configDigest,
    hosts: desired.hosts.map((h) => ({ ...h, member: true, imageDigest: desired.imageDigest, done: done.get(h.ip) ?? [], ...followsOf(desired, h) })),
  };
}

/** What an apply records for a worker whose runtime keeps its masters (see apply's membership): the same here, or every preview would plan re-pointing it. */
function followsOf(desired: DesiredCluster, h: DesiredCluster["hosts"][number]): { follows?: string[] } {
  if (!desired.workersFollowMasters || isMaster(h)) return {};
  return { follows: desired.hosts.filter(isMaster).map((m) => m.ip) };
}

/** What preview (no SSH) can say of removals under `unreachableOnRemove: "force"`; `up` says which hosts it found unreachable. */
const FORCED =
  "removal by force: a removed host that cannot be reached when up runs leaves without its own steps (only the cluster's side runs on the first master — Kubernetes: its etcd member and Node deleted — and its files stay); a change of masters is checked against etcd's quorum before anything runs";

function describePlan(plan: Plan, spec: ClusterSpec, inputs: ClusterInputs): string {
  return [...planLines(plan, spec, inputs.pluginModules), ...(plan.warnings ?? []).map((w) => `warning: ${w}`)].join("\n");
}

/**
 * Stands in for an image only known after apply (typically an ImageBuild's digest): planned as
 * another image than the old one, and named so in the plan.
 */
const PENDING_HEX = "f".repeat(64);
const PENDING_IMAGE = `image.known-after-apply.invalid/pending@sha256:${PENDING_HEX}`;

export async function check(olds: ClusterInputs | undefined, news: ClusterInputs): Promise<{ inputs: ClusterInputs; failures?: CheckFailure[] }> {
  const { image, ...rest } = news;
  const pendingImage = containsUnknown(image) && !containsUnknown(rest);
  if (containsUnknown(news) && !pendingImage) return { inputs: { ...news, plan: "(known after apply: some inputs are not known yet)" } };
  const { spec, failures } = parseInputs(pendingImage ? { ...news, image: PENDING_IMAGE } : news);
  if (!spec) return { inputs: news, failures };
  const modules = await previewModules(spec, news.pluginModules).catch((err: unknown) => err as Error);
  if (modules instanceof Error) return { inputs: news, failures: [{ property: "", reason: modules.message }] };
  const session = await Session.open();
  let desired: DesiredCluster;
  let current: CurrentCluster | undefined;
  let path: Plan | string | undefined;
  try {
    const seen = new Map<string, Promise<ClusterImage | undefined>>();
    desired = await previewDesired(spec, session, seen, modules);
    if (olds && olds.name !== undefined && !containsUnknown(olds)) {
      const old = parseInputs(olds).spec;
      if (old && old.name === spec.name) {
        current = asApplied(await previewDesired(old, session, seen, modules, false));
        // Several minors ahead: the one-minor steps `up` runs (the CLI's plan), or the error it would stop with.
        const lookUp = (ref: string) => previewImage({ ...spec, image: ref }, session, seen);
        const found = await upgradePathPreview(spec, await previewImage(spec, session, seen), await previewImage(old, session, seen), current, lookUp).catch(
          (err: unknown) => err as Error,
        );
        if (found instanceof Error) return { inputs: news, failures: [{ property: "image", reason: found.message }] };
        path = found;
      }
    }
  } catch (err) {
    // A plugin's describe() that throws: the plugin, phase and host named.
    if (err instanceof PluginError) return { inputs: news, failures: [{ property: "", reason: err.message }] };
    throw err;
  } finally {
    session.close();
  }
  try {
    const planned = typeof path === "object" ? path : planCluster(desired, current);
    const note =
      (typeof path === "string" ? `\n${path}` : "") +
      (news.unreachableOnRemove === "force" && planned.summary.some((l) => l.startsWith("remove ")) ? `\n${FORCED}` : "");
    const plan = (describePlan(planned, spec, news) + note).replaceAll(PENDING_HEX.slice(0, 12), "(known after apply)");
    const pluginSteps = pluginStepsOf(planned, desired.plugins, spec, news.pluginModules);
    return { inputs: { ...news, plan, ...(Object.keys(pluginSteps).length > 0 ? { pluginSteps } : {}) } };
  } catch (err) {
    return { inputs: news, failures: [{ property: reportedProperty("hosts"), reason: (err as Error).message }] };
  }
}

/** What progress the engine reports goes to the provider's log (pulumi shows it while running). */
function logger(): (e: ClusterEvent) => void {
  return (e) => {
    if (e.type === "phase") console.log(`${e.title} (${e.steps} step${e.steps === 1 ? "" : "s"})`);
    else if (e.type === "step" && e.status === "failed") console.log(`  ${e.host}: ${e.description} failed: ${e.error ?? ""}`);
    else if (e.type === "warning") console.log(`warning: ${e.host ? `${e.host}: ` : ""}${e.text}`);
    // What a plugin says (ctx.log, "[<plugin>] ..."), under its step; its commands' output stays out, as other steps' does.
    else if (e.type === "output" && e.line.startsWith(`[${parsePluginKind(e.step)?.name}] `)) console.log(`  ${e.host}: ${e.line}`);
  };
}

function previousRuntimeOutputs(props: Record<string, unknown>): RuntimeOutputs {
  const out: RuntimeOutputs = {};
  for (const k of ["endpoint", "kubeconfig", "caCertificate"] as const) if (typeof props[k] === "string" && props[k] !== "") out[k] = props[k];
  if (Array.isArray(props["certificates"])) out.certificates = props["certificates"] as RuntimeOutputs["certificates"];
  return out;
}

/** Outputs: the inputs (secrets among them are made secret by the resource), the cluster as recorded, the plan run. */
function outputsOf(
  inputs: ClusterInputs,
  record: ClusterRecord | undefined,
  lastPlan: string[] | undefined,
  runtime: RuntimeOutputs = {},
): Record<string, unknown> {
  const { plan: _plan, pluginSteps: _steps, ...rest } = inputs;
  return {
    ...JSON.parse(JSON.stringify(rest)),
    endpoint: runtime.endpoint ?? "",
    kubeconfig: runtime.kubeconfig ?? "",
    caCertificate: runtime.caCertificate ?? "",
    certificates: runtime.certificates ? JSON.parse(JSON.stringify(runtime.certificates)) : [],
    imageDigest: record?.imageDigest ?? "",
    nodes: (record?.hosts ?? []).map((h) => ({ ip: h.ip, roles: h.roles, member: h.member, hostname: h.hostname ?? "" })),
    record: record ? JSON.parse(JSON.stringify(record)) : {},
    lastPlan: lastPlan ?? [],
  };
}

async function run(inputs: ClusterInputs, id: string | undefined): Promise<{ id: string; outs: Record<string, unknown> }> {
  const { spec, failures } = parseInputs(inputs);
  if (!spec) throw new Error(failures.map((f) => f.reason).join("\n"));
  const session = await Session.open();
  try {
    // Pulumi users expect `up` to converge on reality: every member is asked whether it still holds its files.
    const result = await applyCluster({
      session,
      spec,
      verifyHosts: true,
      forceRemoval: inputs.unreachableOnRemove === "force",
      onEvent: logger(),
      command: "pulumi up (sealant Cluster)",
      ...pluginOptions(inputs),
    });
    return { id: spec.name, outs: outputsOf(inputs, result.record, planLines(result.plan, spec, inputs.pluginModules), result.outputs) };
  } catch (err) {
    if (!(err instanceof ApplyError)) throw err;
    // Partly applied: the resource exists with what was reached; the next `pulumi up` resumes.
    const record = await currentRecord(spec, inputs).catch(() => undefined);
    const properties = {
      ...outputsOf(inputs, record, undefined),
      unfinished: err.message,
      __provider: (inputs as unknown as Record<string, unknown>)["__provider"],
    };
    throw Object.assign(new Error(err.message), { id: id ?? spec.name, properties, reasons: [err.message] });
  } finally {
    session.close();
  }
}

/** The engine's options for the plugin modules the program resolved: each one's file and the digest it must still have. */
function pluginOptions(inputs: ClusterInputs): { pluginModules?: Record<string, { path: string; digest: string }> } {
  const pluginModules = enginePluginModules(inputs.pluginModules);
  return pluginModules ? { pluginModules } : {};
}

async function currentRecord(spec: ClusterSpec, inputs: ClusterInputs): Promise<ClusterRecord | undefined> {
  const session = await Session.open();
  const ctx = await openCluster({ session, spec, ...pluginOptions(inputs) }, "read");
  try {
    return await readRecord(ctx);
  } finally {
    await ctx.close();
    session.close();
  }
}

export function create(inputs: ClusterInputs): Promise<{ id: string; outs: Record<string, unknown> }> {
  return run(inputs, undefined);
}

export function update(id: string, _olds: Record<string, unknown>, news: ClusterInputs): Promise<{ outs: Record<string, unknown> }> {
  return run(news, id);
}

/**
 * Refresh: the cluster as its hosts say — its record, with every member asked whether it still
 * holds the cluster's image (a member that cannot be reached is logged and kept as recorded).
 * `inputs` (which Pulumi diffs the program against afterwards) and `props` keep only the hosts
 * that really are members: a host reset out of band drops out, so preview plans its join and
 * `up` performs it. `nodes`, `record` and `imageDigest` are the observed record. A cluster with
 * no record is gone (id "").
 */
export async function read(
  id: string,
  props: Record<string, unknown>,
): Promise<{ id: string; props: Record<string, unknown>; inputs?: Record<string, unknown> }> {
  const inputs = inputsOf(props) as unknown as ClusterInputs;
  const { spec } = parseInputs(inputs);
  if (!spec) return { id, props };
  const record = await observedRecord(spec);
  if (!record) return { id: "", props: {} };
  // The certificates are read again (their expiry is what a refresh is for); the kubeconfig stays as the last apply left it.
  const runtime = { ...previousRuntimeOutputs(props), ...(await observedCertificates(spec)) };
  const members = new Set(record.hosts.filter((h) => h.member).map((h) => h.ip));
  const observed: ClusterInputs = { ...inputs, hosts: Object.fromEntries(Object.entries(inputs.hosts).filter(([ip]) => members.has(ip))) };
  return {
    id,
    // What the runtime offered at the last apply stays, but for the certificates read now.
    props: { ...props, ...outputsOf(observed, record, undefined, runtime), lastPlan: props["lastPlan"] ?? [] },
    // The SDK adds `__provider` to returned inputs anyway; kept so they are whole on their own.
    inputs: { ...(observed as unknown as Record<string, unknown>), ...(props["__provider"] !== undefined ? { __provider: props["__provider"] } : {}) },
  };
}

async function observedRecord(spec: ClusterSpec): Promise<ClusterRecord | undefined> {
  const session = await Session.open();
  try {
    return await observeCluster({ session, spec, onEvent: logger() });
  } finally {
    session.close();
  }
}

/** The masters' certificates as they are now (none when they cannot be read: the refresh goes on, the reason logged). */
async function observedCertificates(spec: ClusterSpec): Promise<RuntimeOutputs> {
  const session = await Session.open();
  try {
    const { observed, reports } = await clusterCertificates({ session, spec, onEvent: logger() });
    return observed ? { certificates: reports } : {};
  } catch (err) {
    console.log(`warning: the certificates could not be read: ${(err as Error).message}`);
    return {};
  } finally {
    session.close();
  }
}

/** Destroy: every host reset; hosts that no longer exist are skipped unless `unreachableOnDelete: "fail"`. */
export async function remove(_id: string, props: Record<string, unknown>): Promise<void> {
  const inputs = inputsOf(props) as unknown as ClusterInputs;
  const { spec, failures } = parseInputs(inputs);
  if (!spec) throw new Error(failures.map((f) => f.reason).join("\n"));
  const session = await Session.open();
  try {
    await resetCluster({
      session,
      spec,
      force: inputs.unreachableOnDelete !== "fail",
      onEvent: logger(),
      command: "pulumi destroy (sealant Cluster)",
      ...pluginOptions(inputs),
    });
  } catch (err) {
    throw forDestroy(err);
  } finally {
    session.close();
  }
}
