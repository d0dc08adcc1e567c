import type { Digest } from "../image/digest";
import { shellQuote, type Connection } from "../ssh";
import type { ClusterContext } from "./context";
import type { ClusterHost } from "./connect";
import { platformFor, type PlatformImage } from "./image";
import type { Action, Plan, PlanStep } from "./plan";
import { runStreamed } from "./phases/commands";
import { aliasesBlock, setHostsBlock } from "./phases/etc-hosts";
import { distributeTo, layersFor } from "./phases/distribute";
import { launchCommands } from "./phases/launch";
import { pluginCommand } from "./phases/plugins";
import { configureRegistryClients, removeRegistry, startRegistry, prepareRegistryTls, type RegistrySetup, type RegistryTls } from "./phases/registry";
import { configPath, readImageFiles, renderFiles, writeRendered, type ImageFiles } from "./phases/render";
import { LIFECYCLE, type FirstMasterCommand, type LifecycleStep, type RuntimeCommand, type RuntimeContext } from "./runtime";

/** What the step runner needs beyond the shared context. */
export interface StepRunnerOptions {
  plan: Plan;
  /** IPs joining / leaving in this apply (the hooks' SEALANT_ADDED / SEALANT_REMOVED). */
  added: string[];
  removed: string[];
  /** Registry settings, when the cluster runs one. */
  registry?: RegistrySetup;
  /** Bytes sent per host by distribute. */
  sent: Map<string, number>;
  /** Labels and taints each host had applied, as the record says (what a host-settings step changes from). */
  previousSettings?: ReadonlyMap<string, { labels?: Record<string, string>; taints?: string[] }>;
  /** Hosts being removed that cannot be reached (forced): only the cluster-side part of their steps runs. */
  unreachable?: ReadonlySet<string>;
}

/** An image label naming apps (comma- or space-separated) its runtime installs with the cluster, like its CNI. */
export const BOOTSTRAP_APPS_LABEL = "io.sealant.bootstrap-apps";

/** What every runtime command of this cluster is generated with (the step's own action, hosts added/removed and rootfs aside). */
export function runtimeContextOf(ctx: ClusterContext, registry: RegistrySetup | undefined): Omit<RuntimeContext, "action" | "added" | "removed" | "rootfs"> {
  const { spec } = ctx;
  const desiredHosts = spec.hosts.flatMap((g) => g.ips.map((ip) => ctx.hosts.get(ip)!)).filter(Boolean);
  const version = ctx.image.metadata.runtime?.version;
  const meta = ctx.image.metadata;
  const named = (meta.labels[BOOTSTRAP_APPS_LABEL] ?? "").split(/[\s,]+/).filter(Boolean);
  const bootstrapApps = [...meta.applications.filter((a) => a.role === "cni").map((a) => a.name), ...named.filter((n) => !meta.applications.some((a) => a.name === n && a.role === "cni"))];
  return {
    cluster: spec.name,
    hosts: desiredHosts.map((h) => ({ ip: h.ip, roles: h.roles })),
    env: { ...ctx.image.metadata.env, ...spec.env },
    dataRoot: ctx.layout.root,
    ...(version ? { runtimeVersion: version } : {}),
    ...(registry || spec.registry.external ? { registry: `${spec.registry.domain}:${spec.registry.port}` } : {}),
    settings: spec.runtime,
    ...(bootstrapApps.length > 0 ? { bootstrapApps: launchCommands(meta, { launch: bootstrapApps }) } : {}),
  };
}

function firstMasterOf(ctx: ClusterContext): ClusterHost {
  const m = ctx.spec.hosts.flatMap((g) => g.ips.map((ip) => ctx.hosts.get(ip)!)).find((h) => h?.roles.includes("master"));
  if (!m) throw new Error("the cluster has no master");
  return m;
}

/**
 * A runtime's preparation on the first master (a join token, a drain): not streamed (its
 * output may hold secrets); the last line of its stdout, a JSON object of strings, is returned.
 */
async function beforeOnFirstMaster(ctx: ClusterContext, c: FirstMasterCommand, stepId: string, signal?: AbortSignal): Promise<Record<string, string>> {
  const fm = firstMasterOf(ctx);
  const r = await (await ctx.pool.get(fm, signal)).run(c.command, { sudo: true, env: c.env, timeoutMs: ctx.spec.timeouts.command * 1000, ...(signal ? { signal } : {}) });
  const last = r.stdout.trim().split("\n").pop() ?? "";
  if (!last.startsWith("{")) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(last);
  } catch {
    throw new Error(`${stepId}: the runtime's preparation on ${fm.ip} printed a line that is not JSON (its content is not shown: it may hold secrets)`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) if (typeof v === "string") out[k] = v;
  return out;
}

/** A runtime command on `conn`'s host, with its preparation and follow-up on the first master; what the preparation gives stays secret. */
export async function runRuntimeCommand(ctx: ClusterContext, conn: Connection, cmd: RuntimeCommand, stepId: string, signal?: AbortSignal): Promise<void> {
  const sig = signal ? { signal } : {};
  const timeoutMs = ctx.spec.timeouts.command * 1000;
  const given = cmd.before ? await beforeOnFirstMaster(ctx, cmd.before, stepId, signal) : {};
  const secrets = Object.values(given);
  await runStreamed(conn, { ...withGiven(cmd.command, given), env: cmd.env, step: stepId, timeoutMs, emit: ctx.emit, secrets, ...sig });
  if (cmd.after) {
    await runStreamed(await ctx.pool.get(firstMasterOf(ctx), signal), { ...withGiven(cmd.after.command, given), env: cmd.after.env, step: `${stepId} (on the first master)`, timeoutMs, emit: ctx.emit, secrets, ...sig });
  }
}

/**
 * What a preparation gave, for a command: on its stdin, read into exported variables before it
 * runs — never on a command line, which other processes on the host could read while it runs.
 */
function withGiven(command: string, given: Record<string, string>): { command: string; stdin?: string } {
  const names = Object.keys(given).filter((k) => /^[A-Z_][A-Z0-9_]*$/.test(k) && !given[k]!.includes("\n"));
  if (names.length === 0) return { command };
  return {
    command: `${names.map((n) => `IFS= read -r ${n}`).join("; ")}; export ${names.join(" ")}; exec < /dev/null\n${command}`,
    stdin: `${names.map((n) => given[n]).join("\n")}\n`,
  };
}

/**
 * Runs one plan step on its host: the dispatch from step kinds to the phase implementations.
 * Everything here is idempotent: a step re-run after a failure converges.
 */
export function stepRunner(ctx: ClusterContext, opts: StepRunnerOptions): (step: PlanStep, signal?: AbortSignal) => Promise<void> {
  const { spec, layout } = ctx;
  const commandMs = spec.timeouts.command * 1000;
  const imageFiles = new Map<string, Promise<ImageFiles>>();
  let tls: Promise<RegistryTls | undefined> | undefined;

  const platformOf = (host: ClusterHost): PlatformImage => {
    const facts = ctx.facts.get(host.ip);
    const pf = facts && platformFor(ctx.image, facts.arch);
    if (!pf) throw new Error(`no image for this host's architecture ${facts?.arch ?? "(unknown)"}`);
    return pf;
  };
  const filesFor = (pf: PlatformImage): Promise<ImageFiles> => {
    let p = imageFiles.get(pf.manifestDigest);
    if (!p) {
      p = readImageFiles(ctx.session.store, pf, new Set([...spec.configs.map(configPath), ...(ctx.runtime.imageFiles ?? [])]));
      imageFiles.set(pf.manifestDigest, p);
    }
    return p;
  };
  const actionOf = (kind: string): Action => {
    const a = opts.plan.actions;
    if (kind === "hook:bootstrap" || kind.endsWith(":pre-install") || kind.endsWith(":post-install")) return "create";
    if (kind === "hook:join" || kind.includes("scaleup")) return "scale-up";
    if (kind === "hook:leave" || kind === "hook:reset" || kind === "cleanup") return a.includes("reset") ? "reset" : "scale-down";
    if (kind === "hook:upgrade") return a.includes("upgrade") ? "upgrade" : "reconfigure";
    return a.find((x) => x !== "scale-down") ?? a[0] ?? "create";
  };
  const runtimeContext = (action: Action, rootfs: string, imageFiles?: ReadonlyMap<string, string>): RuntimeContext => ({
    ...runtimeContextOf(ctx, opts.registry),
    action,
    added: opts.added,
    removed: opts.removed,
    rootfs,
    ...(imageFiles ? { imageFiles } : {}),
  });
  /** The image's files the runtime generates its commands from, rendered with the spec's configs for this host. */
  const runtimeFiles = async (host: ClusterHost): Promise<ReadonlyMap<string, string> | undefined> => {
    const wanted = ctx.runtime.imageFiles ?? [];
    if (wanted.length === 0) return undefined;
    const rendered = renderFiles(await filesFor(platformOf(host)), spec.configs, host.env);
    const files = new Map<string, string>();
    for (const path of wanted) {
      const text = rendered.get(path) ?? (await filesFor(platformOf(host))).get(path);
      if (text !== undefined) files.set(path, text);
    }
    return files;
  };
  /** The rootfs a host runs its steps in: the new image's, made current first; leaving hosts keep theirs. */
  const useImage = (digest: Digest): string =>
    `ln -sfn ${shellQuote(`images/${digest.replace(/^sha256:/, "")}/rootfs`)} ${shellQuote(`${layout.current}.new`)} && mv -T ${shellQuote(`${layout.current}.new`)} ${shellQuote(layout.current)} && `;

  return async (step, signal) => {
    const host = ctx.hosts.get(step.host);
    if (!host) throw new Error(`step ${step.id} is for ${step.host}, which is not a host of this cluster`);
    if (opts.unreachable?.has(host.ip)) {
      // Forced removal of a host that is gone: what the cluster does about it, on the first master.
      if (step.kind === "hook:leave") {
        const cmd = ctx.runtime.command("leave", { ip: host.ip, roles: host.roles, env: host.env, labels: host.labels, taints: host.taints }, { ...runtimeContext(actionOf(step.kind), layout.current), hostUnreachable: true });
        if (cmd.before) await beforeOnFirstMaster(ctx, cmd.before, step.id, signal);
        if (cmd.after) await runStreamed(await ctx.pool.get(firstMasterOf(ctx), signal), { ...cmd.after, step: `${step.id} (on the first master)`, timeoutMs: commandMs, emit: ctx.emit, ...(signal ? { signal } : {}) });
      }
      return;
    }
    if (step.kind === "host-settings") {
      const cmd = ctx.runtime.hostSettings?.({ ip: host.ip, roles: host.roles, env: host.env, labels: host.labels, taints: host.taints }, opts.previousSettings?.get(host.ip) ?? {}, runtimeContext(actionOf(step.kind), layout.current));
      if (cmd) await runRuntimeCommand(ctx, await ctx.pool.get(host, signal), cmd, step.id, signal);
      return;
    }
    const conn = await ctx.pool.get(host, signal);
    const sig = signal ? { signal } : {};
    const kind = step.kind;

    if (kind === "distribute") {
      const facts = ctx.facts.get(host.ip)!;
      const servesRegistry = opts.registry?.servers.includes(host.ip) ?? false;
      const bytes = await distributeTo(conn, { store: ctx.session.store, layout, imageDigest: ctx.image.digest, layers: layersFor(platformOf(host), servesRegistry), facts, emit: ctx.emit, ...sig });
      opts.sent.set(host.ip, (opts.sent.get(host.ip) ?? 0) + bytes);
      return;
    }
    if (kind === "render") {
      const rendered = renderFiles(await filesFor(platformOf(host)), spec.configs, host.env);
      await writeRendered(conn, layout, ctx.image.digest, rendered, signal);
      await setHostsBlock(conn, aliasesBlock(layout.root), spec.hostAliases.map((a) => `${a.ip} ${a.hostnames.join(" ")}`), signal);
      return;
    }
    if (kind === "registry" || kind === "mirrors") {
      const reg = opts.registry!;
      if (reg.tls) {
        tls ??= (async () => prepareRegistryTls(await ctx.pool.get(ctx.hosts.get(reg.servers[0]!)!, signal), reg, signal))();
      }
      const t = reg.tls ? await tls : undefined;
      if (kind === "registry") await startRegistry(conn, host.ip, layout.rootfs(ctx.image.digest), reg, t, signal);
      else await configureRegistryClients(conn, host.ip, reg, t, sig);
      return;
    }
    if (kind === "cleanup") {
      if (opts.registry) await removeRegistry(conn, opts.registry, sig);
      await setHostsBlock(conn, aliasesBlock(layout.root), [], signal);
      await conn.run(`rm -rf ${shellQuote(layout.root)}`, { sudo: true, timeoutMs: commandMs, ...sig });
      return;
    }
    if (kind === "launch") {
      const rootfs = layout.rootfs(ctx.image.digest);
      for (const command of launchCommands(ctx.image.metadata, spec.apps)) {
        await runStreamed(conn, { command: `cd ${shellQuote(rootfs)} && ${command}`, env: host.env, step: step.id, timeoutMs: commandMs, emit: ctx.emit, ...sig });
      }
      return;
    }
    if (kind.startsWith("plugin:")) {
      const [, name] = kind.split(":");
      const plugin = spec.plugins.find((p) => p.name === name);
      if (!plugin) throw new Error(`plugin ${name} is not in the spec`);
      const action = kind.split(":")[2] ?? "";
      // Clean-up phases run where the host's image is; the others after distribute, in the new image.
      const rootfs = /clean|uninstall/.test(action) ? layout.current : layout.rootfs(ctx.image.digest);
      const command = pluginCommand(plugin, host);
      if (command === undefined) return;
      const env = { ...host.env, SEALANT_CLUSTER: spec.name, SEALANT_HOST_IP: host.ip, SEALANT_ROLES: host.roles.join(","), SEALANT_PLUGIN_ACTION: action };
      await runStreamed(conn, { command: `cd ${shellQuote(rootfs)} 2>/dev/null || cd /; ${command}`, env, step: step.id, timeoutMs: commandMs, emit: ctx.emit, ...sig });
      return;
    }
    if (kind.startsWith("hook:")) {
      const name = kind.slice("hook:".length) as LifecycleStep;
      if (!(LIFECYCLE as readonly string[]).includes(name)) throw new Error(`unknown lifecycle step ${name}`);
      const leaving = name === "leave" || name === "reset";
      const rootfs = leaving ? layout.current : layout.rootfs(ctx.image.digest);
      const files = leaving ? undefined : await runtimeFiles(host);
      const cmd = ctx.runtime.command(name, { ip: host.ip, roles: host.roles, env: host.env, labels: host.labels, taints: host.taints }, runtimeContext(actionOf(kind), rootfs, files));
      // A reset of a host that never got the image has nothing to run.
      const command = leaving ? `if [ -d ${shellQuote(layout.current)} ]; then ${cmd.command}; fi` : `${useImage(ctx.image.digest)}${cmd.command}`;
      await runRuntimeCommand(ctx, conn, { ...cmd, command }, step.id, signal);
      return;
    }
    throw new Error(`unknown step kind ${kind}`);
  };
}
