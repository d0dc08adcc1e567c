/**
 * The plugin API: what a user's own module exports for sealant to run at a cluster's lifecycle
 * phases (sealer's out-of-tree plugins, as a TypeScript module or an npm package). This file
 * is the whole contract (`sealant/plugin`); it imports nothing of the engine at run time, so a
 * plugin package depends on sealant for its types only.
 */
import type { PluginAction } from "../spec/plugins";

/** sealer's phase names: host phases run on each host in scope, cluster phases once (on the first master). */
export type PluginPhase = PluginAction;

/** One host the plugin may work on, over sealant's own SSH connection to it (host key verified, sudo as configured). */
export interface PluginHost {
  readonly ip: string;
  /** Roles as the spec gives them (`master`, `node`, custom ones). */
  readonly roles: readonly string[];
  /** The host's name as it reported it, once sealant has connected. */
  readonly hostname?: string;
  /** The host's environment (image env, spec env, host env); secret-named values "***" unless the document sets `secrets: true`. */
  readonly env: Readonly<Record<string, string>>;
  /** Runs a shell command as root; resolves whatever its exit code. Output is logged under the plugin's step. */
  exec(command: string, opts?: PluginExecOptions): Promise<PluginExecResult>;
  /** Like exec, but a non-zero exit fails with the host, the command's exit code and its stderr's tail. */
  run(command: string, opts?: PluginExecOptions): Promise<PluginExecResult>;
  /** Writes a file atomically (a temp name beside it, then renamed); parent directories are created. */
  upload(path: string, content: string | Uint8Array, opts?: { mode?: number }): Promise<void>;
}

export interface PluginExecOptions {
  /** Fed to the command's stdin (secrets belong here or in env, never in the command line). */
  stdin?: string | Uint8Array;
  /** Exported to the command (sent over stdin: no value shows in a process list). */
  env?: Record<string, string>;
  /** @default the cluster's command timeout */
  timeoutMs?: number;
}

export interface PluginExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface PluginLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** What a plugin knows about the cluster. Secrets (SSH and registry passwords, keys, secret-named env values) read "***" unless the Plugin document sets `secrets: true`. */
export interface PluginClusterInfo {
  readonly name: string;
  /** The image reference the cluster is applied with. */
  readonly image: string;
  /** What this apply does: create, scale-up, scale-down, upgrade, reset, ... */
  readonly action: string;
  /** The cluster's env (image env under spec env). */
  readonly env: Readonly<Record<string, string>>;
  /** The cluster's spec, normalised (hosts, ssh, registry, plugins, ...). */
  readonly spec: Readonly<Record<string, unknown>>;
}

export interface PluginContext<Config = unknown> {
  /** The Plugin document's name (a module can be used by several documents). */
  readonly name: string;
  readonly phase: PluginPhase;
  /** The Plugin document's `config` (YAML or a Pulumi input), as given. */
  readonly config: Config;
  readonly cluster: PluginClusterInfo;
  /** The host this step runs on: each host in scope for a host phase, the first master for a cluster phase. */
  readonly host: PluginHost;
  /** Every host in the plugin's scope at this phase (for a cluster phase: every host of the cluster in scope). */
  readonly hosts: readonly PluginHost[];
  /** 1 the first time this step runs; 2, 3, ... when an earlier attempt failed. */
  readonly attempt: number;
  /** What earlier, failed attempts of this step saved with `checkpoint` (empty on the first). */
  readonly checkpoints: Readonly<Record<string, unknown>>;
  /** Saves a JSON value in the cluster's record before it resolves: a re-run after a failure sees it in `checkpoints`. */
  checkpoint(key: string, value: unknown): Promise<void>;
  readonly log: PluginLogger;
  /** Aborted when the plugin's timeout passes or the apply is cancelled; commands it runs are killed with it. */
  readonly signal: AbortSignal;
  /** Fails the step with this message (no stack trace shown). */
  fail(message: string): never;
}

/** What `describe` sees: no connection, nothing it can change. */
export interface PluginPlanContext<Config = unknown> {
  readonly name: string;
  readonly phase: PluginPhase;
  readonly config: Config;
  readonly cluster: { readonly name: string };
  readonly host: { readonly ip: string; readonly roles: readonly string[] };
}

export interface PluginDefinition<Config = unknown> {
  /** The plugin's own name (messages say it beside the document's name). */
  name: string;
  /** Phases it runs at when the Plugin document names none; a document may name only these. */
  phases: readonly PluginPhase[];
  /** Roles or IPs its host phases run on when the Plugin document gives no scope. @default every host */
  scope?: readonly string[];
  /**
   * Whether running it again after a failed or interrupted attempt is safe. A plugin that is not
   * idempotent must record what it did with `checkpoint` and look at `checkpoints` on the next
   * attempt; sealant refuses to run it again when a failed attempt saved none.
   */
  idempotent: boolean;
  /** Longest one step may run, ms or a duration ("90s", "5m"). @default "10m" */
  timeout?: number | string;
  /** One line for the plan and `--dry-run` (what it will do on this host); it must not change anything. */
  describe?(ctx: PluginPlanContext<Config>): string | undefined;
  run(ctx: PluginContext<Config>): Promise<void> | void;
}

/** Marks a definition as a sealant plugin, across copies of the package (a plugin may bring its own). */
export const PLUGIN_BRAND = Symbol.for("sealant.plugin/v1");

/** A plugin as a module exports it (default export or `plugin`). */
export type SealantPlugin<Config = unknown> = PluginDefinition<Config> & { readonly [PLUGIN_BRAND]: true };

/**
 * Defines a plugin. The module exports it as its default export (or as `plugin`):
 *
 *     export default definePlugin({ name: "notify", phases: ["post-install"], idempotent: true, async run(ctx) { ... } });
 */
export function definePlugin<Config = unknown>(definition: PluginDefinition<Config>): SealantPlugin<Config> {
  return Object.freeze({ ...definition, [PLUGIN_BRAND]: true as const });
}
