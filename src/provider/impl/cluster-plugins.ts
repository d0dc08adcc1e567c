/**
 * The Cluster's MODULE plugins on the provider's side: the modules the program resolved
 * (`pluginModules`, see ../plugin-modules.ts) checked against the plugins, handed to the engine
 * as pre-resolved files with their digests, compared by what pins them (not where they are),
 * and the plan's plugin lines with secret config kept out of them. No Pulumi import here.
 */
import { isAbsolute, resolve } from "node:path";
import { PluginError } from "../../engine/cluster/plugins/errors";
import { loadPlugins, type LoadedPlugin } from "../../engine/cluster/plugins/load";
import type { ClusterSpec } from "../../engine/cluster/spec";
import type { Plan, PlannedPlugin } from "../../engine/cluster/plan";
import { parsePluginKind, PLUGIN_PREFIX } from "../../engine/cluster/plan/kinds";

/** A MODULE plugin as the program resolved it, under the plugin's name in `pluginModules`. */
export interface PluginModuleInputs {
  /** The module as the plugin names it. */
  module: string;
  /** Its package's version (a package, or a file inside one). */
  version?: string;
  /** sha256 of the module's files: what the provider loads must still have it. */
  digest?: string;
  /** The file Node loads, relative to the program's directory. */
  path?: string;
  /** Why it could not be resolved (check reports it, naming the plugin and the module). */
  error?: string;
  /** The plugin's config holds a secret: its lines in the plan are redacted. */
  secretConfig?: boolean;
}

export type PluginModulesInputs = Record<string, PluginModuleInputs>;

/** What the engine takes: each plugin's file, absolute, and the digest it must still have. */
export type EnginePluginModules = Record<string, { path: string; digest: string }>;

/**
 * One problem per MODULE plugin the program did not resolve (or could not), as check failures.
 * They name no property: Pulumi would print the whole `plugins` value beside the message, which
 * names the plugin and its module already.
 */
export function pluginModuleFailures(spec: ClusterSpec, modules: PluginModulesInputs | undefined): { property: string; reason: string }[] {
  const out: { property: string; reason: string }[] = [];
  for (const p of spec.plugins) {
    if (p.type !== "MODULE") continue;
    const m = modules?.[p.name];
    const reason =
      m === undefined || (m.error === undefined && (m.path === undefined || m.digest === undefined))
        ? `plugin ${p.name} (module ${p.module}): not resolved by the program — sealant's Cluster resolves its MODULE plugins when the program constructs it (give plugins to a Cluster, KubernetesCluster or AlicloudCluster)`
        : m.error !== undefined
          ? m.error
          : m.module !== p.module
            ? `plugin ${p.name} (module ${p.module}): the program resolved module ${m.module} for it`
            : undefined;
    if (reason) out.push({ property: "", reason });
  }
  return out;
}

/** The modules for the engine (`ClusterOptions.pluginModules`): paths made absolute from `base`, the program's directory (the provider runs there too). */
export function enginePluginModules(modules: PluginModulesInputs | undefined, base: string = process.cwd()): EnginePluginModules | undefined {
  const entries = Object.entries(modules ?? {}).filter(([, m]) => m.path !== undefined && m.digest !== undefined);
  if (entries.length === 0) return undefined;
  return Object.fromEntries(entries.map(([name, m]) => [name, { path: isAbsolute(m.path!) ? m.path! : resolve(base, m.path!), digest: m.digest! }]));
}

/** The MODULE plugins loaded as the program resolved them (imported, never run), for preview's plan: a changed or broken module fails it. */
export function previewModules(spec: ClusterSpec, modules: PluginModulesInputs | undefined): Promise<Map<string, LoadedPlugin>> {
  return loadPlugins(spec.plugins, process.cwd(), enginePluginModules(modules) ?? {});
}

/**
 * `pluginModules` as diff compares it: what pins a plugin (module, version, digest), not where
 * the program's directory is — a checkout elsewhere or another node_modules layout with the same
 * files is no change (the state then keeps the old path until the next real change).
 */
export function pinsOf(modules: unknown): unknown {
  if (modules === null || typeof modules !== "object" || Array.isArray(modules)) return modules;
  return Object.fromEntries(
    Object.entries(modules as Record<string, unknown>).map(([name, m]) => {
      if (m === null || typeof m !== "object") return [name, m];
      const { path: _path, ...pins } = m as Record<string, unknown>;
      return [name, pins];
    }),
  );
}

const REDACTED = "[secret]";

/** Every string (and number) in a config value, longest first, for redaction. */
function leaves(v: unknown, out: string[] = []): string[] {
  if (typeof v === "string" && v.length >= 3) out.push(v);
  else if (typeof v === "number" && String(v).length >= 4) out.push(String(v));
  else if (Array.isArray(v)) v.forEach((x) => leaves(x, out));
  else if (v !== null && typeof v === "object") Object.values(v).forEach((x) => leaves(x, out));
  return out.sort((a, b) => b.length - a.length);
}

/**
 * The plan as the resource shows it (`plan`, `lastPlan`): the summary, then each plugin step —
 * where it runs and what the module says it does there. A plugin whose config holds a secret
 * may echo it in its describe() line: every value of its config is replaced by "[secret]" in
 * its lines (the plan is not a secret output; it is shown by `pulumi preview --diff`).
 */
export function planLines(plan: Plan, spec: ClusterSpec, modules: PluginModulesInputs | undefined): string[] {
  const secrets = secretValuesOf(spec, modules);
  const lines: string[] = [];
  for (const phase of plan.phases) {
    // Plugin phases, and the upgrade-host steps inside a rolling upgrade's batches.
    const steps = phase.steps.filter((s) => s.kind.startsWith(PLUGIN_PREFIX));
    if (steps.length === 0) continue;
    lines.push(`${phase.title}:`);
    for (const s of steps) lines.push(`  ${redact(s.description, secrets.get(parsePluginKind(s.kind)?.name ?? ""))}`);
  }
  return [...plan.summary, ...lines];
}

/** Where each plugin step runs and what it does there: by `<plugin> (<phase>)`, then host IP. */
export type PluginSteps = Record<string, Record<string, string>>;

/**
 * The plan's plugin steps as `pulumi preview --diff` shows them whole (it cuts a string after
 * three lines, so `plan` alone would hide them): by plugin and phase, each host the step runs on
 * with what the module's describe() says it does there (redacted as in planLines).
 */
export function pluginStepsOf(
  plan: Plan,
  planned: readonly PlannedPlugin[] | undefined,
  spec: ClusterSpec,
  modules: PluginModulesInputs | undefined,
): PluginSteps {
  const secrets = secretValuesOf(spec, modules);
  const out: PluginSteps = {};
  for (const s of plan.phases.flatMap((p) => p.steps)) {
    const kind = parsePluginKind(s.kind);
    if (!kind) continue;
    const p = planned?.find((x) => x.name === kind.name && x.action === kind.action);
    const line = p?.describe?.[s.host] ?? `run plugin ${kind.name}${p?.module ? ` (module ${p.module})` : ""}`;
    (out[`${kind.name} (${kind.action})`] ??= {})[s.host] = redact(line, secrets.get(kind.name));
  }
  return out;
}

/** By plugin name, the values of its config when the program said the config holds a secret. */
function secretValuesOf(spec: ClusterSpec, modules: PluginModulesInputs | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const p of spec.plugins) if (modules?.[p.name]?.secretConfig) out.set(p.name, leaves(p.config));
  return out;
}

function redact(line: string, secrets: readonly string[] | undefined): string {
  return (secrets ?? []).reduce((l, s) => l.split(s).join(REDACTED), line);
}

/**
 * A destroy runs the plugins' clean phases with the modules the last `pulumi up` pinned (the
 * program does not run): one changed since is refused by the engine; this says what to do in
 * Pulumi's terms.
 */
export function forDestroy(err: unknown): unknown {
  if (!(err instanceof PluginError) || err.code !== "module-changed") return err;
  return new Error(
    `${err.message.replace(/: preview again$/, "")} — pulumi destroy runs the module the last pulumi up pinned: run pulumi up (it pins the module as it is now), then pulumi destroy`,
  );
}
