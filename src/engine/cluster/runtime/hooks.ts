import { shellQuote } from "../../ssh/shell";
import type { PlannedHost } from "../plan/types";
import type { LifecycleStep, Runtime, RuntimeCommand, RuntimeContext } from "./types";

/**
 * The hooks runtime: the image carries one executable per lifecycle step under `hooks/`
 * (init-host, bootstrap, join, leave, upgrade, check, reset); a missing hook is a step with
 * nothing to do. Each runs on its host with the working directory set to the image's rootfs
 * and the environment `hookEnv` builds — the contract image authors write against.
 */
export const hooksRuntime: Runtime = {
  kind: "hooks",
  command(step: LifecycleStep, host: PlannedHost & { env?: Record<string, string> }, ctx: RuntimeContext): RuntimeCommand {
    const path = `hooks/${step}`;
    return {
      command: `cd ${shellQuote(ctx.rootfs)} && if [ -x ${path} ]; then exec ./${path}; elif [ -e ${path} ]; then exec sh ./${path}; fi`,
      env: hookEnv(step, host, ctx),
    };
  },
};

/**
 * SEALANT_* variables (documented in the README) plus the cluster's env with the host's on
 * top. Lists are space-separated IPs, ordered as in the cluster spec.
 */
export function hookEnv(step: LifecycleStep, host: PlannedHost & { env?: Record<string, string> }, ctx: RuntimeContext): Record<string, string> {
  const ips = (pred: (h: PlannedHost) => boolean) => ctx.hosts.filter(pred).map((h) => h.ip).join(" ");
  const masters = ctx.hosts.filter((h) => h.roles.includes("master"));
  return {
    ...ctx.env,
    ...(host.env ?? {}),
    SEALANT_CLUSTER: ctx.cluster,
    SEALANT_ACTION: ctx.action,
    SEALANT_STEP: step,
    SEALANT_HOST_IP: host.ip,
    SEALANT_ROLES: host.roles.join(","),
    SEALANT_HOSTS: ips(() => true),
    SEALANT_MASTERS: ips((h) => h.roles.includes("master")),
    SEALANT_WORKERS: ips((h) => !h.roles.includes("master")),
    SEALANT_FIRST_MASTER: masters[0]?.ip ?? "",
    SEALANT_ADDED: ctx.added.join(" "),
    SEALANT_REMOVED: ctx.removed.join(" "),
    SEALANT_ROOTFS: ctx.rootfs,
    SEALANT_DATA_ROOT: ctx.dataRoot,
  };
}
