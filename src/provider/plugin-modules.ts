/**
 * The Cluster's MODULE plugins resolved in the program's process, where the program's
 * node_modules are: each module found from the program's directory the way Node finds it, and
 * pinned by its package version and a digest of its files. What is found goes into the
 * resource's inputs (`pluginModules`), so a plugin upgrade — a new package version, a changed
 * file — is a change `pulumi preview --diff` shows, and the provider loads exactly the file that
 * was previewed (the engine refuses it if its digest changed since).
 */
import { relative } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { moduleDigest, resolvePluginModule } from "../engine/cluster/plugins/load";
import type { ClusterArgs, PluginArgs } from "./cluster-args";
import type { PluginModuleInputs } from "./impl/cluster-plugins";

/** What the program reads of a plugin: not its config, so a secret there does not make the pins secret. */
interface PluginRef {
  name?: string;
  type?: string;
  module?: string;
  /** Whether the plugin's config holds a secret (its plan lines are then redacted). */
  secretConfig: boolean;
}

/** Neither an Output nor a Promise: a value whose fields can be read now. */
function isPlain<T extends object>(v: pulumi.Input<T>): v is T {
  return !pulumi.Output.isInstance(v) && !(v instanceof Promise);
}

function refOf(p: pulumi.Input<PluginArgs>): pulumi.Output<PluginRef> {
  if (!isPlain(p)) {
    // A whole plugin given as one output: its name and module are read from it (never its config's values).
    return pulumi.output(p).apply(async (u) => ({
      name: u.name,
      type: u.type,
      module: u.module,
      secretConfig: await pulumi.isSecret(pulumi.output(p)),
    }));
  }
  const config = p.config === undefined ? pulumi.output(false) : pulumi.output(pulumi.isSecret(pulumi.output(p.config as pulumi.Input<unknown>)));
  return pulumi.all([p.name, p.type, p.module, config]).apply(([name, type, module, secretConfig]) => ({ name, type, module, secretConfig }));
}

/**
 * `pluginModules` for the resource's inputs, or undefined when no plugin is a MODULE. A module
 * that cannot be resolved is kept as its error: the provider's check reports it, naming the
 * plugin and the module, so `pulumi preview` fails with that message (not a stack trace).
 * `path` is relative to `base` (the program's directory, which is also the provider's): the
 * state names the same file on every machine the program is checked out on.
 */
export function pluginModulesOf(plugins: ClusterArgs["plugins"], base: string = process.cwd()): pulumi.Output<Record<string, PluginModuleInputs>> | undefined {
  if (plugins === undefined) return undefined;
  const refs = isPlain(plugins)
    ? pulumi.all(plugins.map(refOf))
    : // The list as one output: secret or not as a whole.
      pulumi.output(plugins).apply(async (ps) => {
        const secretConfig = await pulumi.isSecret(pulumi.output(plugins));
        return ps.map((p) => ({ name: p.name, type: p.type, module: p.module, secretConfig }));
      });
  // Names, modules and digests are not secrets, even when a plugin was given whole as a secret for its config.
  return pulumi.unsecret(refs).apply(async (list) => {
    const modules = list.filter((r) => r.type === "MODULE" && typeof r.name === "string" && typeof r.module === "string");
    const out: Record<string, PluginModuleInputs> = {};
    for (const r of modules) out[r.name!] = await resolveOne(r.name!, r.module!, base, r.secretConfig);
    return out;
  });
}

async function resolveOne(name: string, module: string, base: string, secretConfig: boolean): Promise<PluginModuleInputs> {
  const secret = secretConfig ? { secretConfig: true } : {};
  try {
    const resolved = resolvePluginModule(name, module, base);
    const digest = await moduleDigest(resolved);
    return { module, ...(resolved.version !== undefined ? { version: resolved.version } : {}), digest, path: relative(base, resolved.path), ...secret };
  } catch (err) {
    return { module, error: (err as Error).message, ...secret };
  }
}
