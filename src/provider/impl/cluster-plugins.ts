/**
 * The Cluster's MODULE plugins on the provider's side: the modules the program resolved
 * (`pluginModules`, see ../plugin-modules.ts) checked against the plugins, handed to the engine
 * as pre-resolved files with their digests, compared by what pins them (not where they are),
 * and the plan's plugin lines with secret config kept out of them. No Pulumi import here.
 */
import { isAbsolute, resolve } from "node:path";
import { loadPlugins, type LoadedPlugin } from "../../engine/cluster/plugins/load";
import type { ClusterSpec } from "../../engine/cluster/spec";
import type { Plan } from "../../engine/cluster/plan";
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

/** One problem per MODULE plugin the program did not resolve (or could not), as check failures on `plugins`. */
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
    if (reason) out.push({ property: "plugins", reason });
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
  const secretValues = new Map<string, string[]>();
  for (const p of spec.plugins) if (modules?.[p.name]?.secretConfig) secretValues.set(p.name, leaves(p.config));
  const lines: string[] = [];
  for (const phase of plan.phases) {
    // Plugin phases, and the upgrade-host steps inside a rolling upgrade's batches.
    const steps = phase.steps.filter((s) => s.kind.startsWith(PLUGIN_PREFIX));
    if (steps.length === 0) continue;
    lines.push(`${phase.title}:`);
    for (const s of steps) {
      const secrets = secretValues.get(parsePluginKind(s.kind)?.name ?? "");
      lines.push(`  ${secrets ? redact(s.description, secrets) : s.description}`);
    }
  }
  return [...plan.summary, ...lines];
}

function redact(line: string, secrets: readonly string[]): string {
  return secrets.reduce((l, s) => l.split(s).join(REDACTED), line);
}
