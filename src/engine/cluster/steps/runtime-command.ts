import { shellQuote, type Connection } from "../../ssh";
import type { ClusterContext } from "../host/context";
import type { ClusterHost } from "../host/connect";
import { commandEnv, runStreamed } from "../host/commands";
import { externalEndpoint } from "../host/external-registry";
import { launchCommands } from "../host/launch";
import type { RegistrySetup } from "../host/registry";
import { isMaster } from "../plan/roles";
import type { FirstMasterCommand, RuntimeCommand, RuntimeContext, RuntimeHost } from "../runtime";

/** An image label naming apps (comma- or space-separated) its runtime installs with the cluster, like its CNI. */
export const BOOTSTRAP_APPS_LABEL = "io.sealant.bootstrap-apps";

/** What every runtime command of this cluster is generated with (the step's own action, hosts added/removed and rootfs aside). */
export function runtimeContextOf(ctx: ClusterContext, registry: RegistrySetup | undefined): Omit<RuntimeContext, "action" | "added" | "removed" | "rootfs"> {
  const { spec } = ctx;
  const desiredHosts = spec.hosts.flatMap((g) => g.ips.map((ip) => ctx.hosts.get(ip)!)).filter(Boolean);
  const version = ctx.image.metadata.runtime?.version;
  const meta = ctx.image.metadata;
  const named = (meta.labels[BOOTSTRAP_APPS_LABEL] ?? "").split(/[\s,]+/).filter(Boolean);
  const bootstrapApps = [
    ...meta.applications.filter((a) => a.role === "cni").map((a) => a.name),
    ...named.filter((n) => !meta.applications.some((a) => a.name === n && a.role === "cni")),
  ];
  return {
    cluster: spec.name,
    hosts: desiredHosts.map((h) => ({ ip: h.ip, roles: h.roles })),
    env: { ...ctx.image.metadata.env, ...spec.env },
    dataRoot: ctx.layout.root,
    ...(version ? { runtimeVersion: version } : {}),
    ...(spec.registry.external
      ? { registry: externalEndpoint(spec.registry.external) }
      : registry
        ? { registry: `${spec.registry.domain}:${spec.registry.port}` }
        : {}),
    settings: spec.runtime,
    ...(bootstrapApps.length > 0 ? { bootstrapApps: launchCommands(meta, { launch: bootstrapApps }) } : {}),
  };
}

/** A cluster host as a runtime's command sees it: its roles and settings, never its SSH credentials. */
export function runtimeHost(h: ClusterHost): RuntimeHost {
  return { ip: h.ip, roles: h.roles, env: h.env, labels: h.labels, taints: h.taints };
}

/** The cluster's first master in spec order (where runtime preparations and follow-ups run). */
export function firstMasterOf(ctx: ClusterContext): ClusterHost {
  const m = ctx.spec.hosts.flatMap((g) => g.ips.map((ip) => ctx.hosts.get(ip)!)).find((h) => h !== undefined && isMaster(h));
  if (!m) throw new Error("the cluster has no master");
  return m;
}

/**
 * A runtime's preparation on the first master (a join token, a drain): not streamed (its
 * output may hold secrets); the last line of its stdout, a JSON object of strings, is returned.
 */
export async function beforeOnFirstMaster(ctx: ClusterContext, c: FirstMasterCommand, stepId: string, signal?: AbortSignal): Promise<Record<string, string>> {
  const fm = firstMasterOf(ctx);
  const r = await (
    await ctx.pool.get(fm, signal)
  ).run(c.command, { sudo: true, env: commandEnv(c.env), timeoutMs: ctx.spec.timeouts.command * 1000, ...(signal ? { signal } : {}) });
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
    await runStreamed(await ctx.pool.get(firstMasterOf(ctx), signal), {
      ...withGiven(cmd.after.command, given),
      env: cmd.after.env,
      step: `${stepId} (on the first master)`,
      timeoutMs,
      emit: ctx.emit,
      secrets,
      ...sig,
    });
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

/** The shell prefix that makes the image `digest` the host's current one (hooks run there, so an upgrade never pulls files from under a running host). */
export function useImage(current: string, digest: string): string {
  return `ln -sfn ${shellQuote(`images/${digest.replace(/^sha256:/, "")}/rootfs`)} ${shellQuote(`${current}.new`)} && mv -T ${shellQuote(`${current}.new`)} ${shellQuote(current)} && `;
}
