import { APISERVER_SANS, CERTIFICATE_RENEWAL } from "../plan/kinds";
import type { Runtime } from "../runtime";
import type { StepKindDef } from "./kind";
import { planAction } from "./kind";
import { runRuntimeCommand, runtimeHost } from "./runtime-command";

function certificatesOf(runtime: Runtime, kind: string): NonNullable<Runtime["certificates"]> {
  if (!runtime.certificates) throw new Error(`the ${runtime.kind} runtime has no certificates: a ${kind} step cannot run`);
  return runtime.certificates;
}

/** A master's control-plane certificates renewed (plan/certificates.ts plans it when one has less than the threshold left). */
export const certificateRenewal: StepKindDef = {
  kind: CERTIFICATE_RENEWAL,
  async run(ctx, step, host, signal) {
    const { cluster, opts } = ctx;
    const rctx = ctx.runtimeContext(planAction(opts.plan), cluster.layout.current, await ctx.runtimeFiles(host));
    const cmd = certificatesOf(cluster.runtime, CERTIFICATE_RENEWAL).renew(runtimeHost(host), rctx);
    await runRuntimeCommand(cluster, await cluster.pool.get(host, signal), cmd, step.id, signal);
  },
};

/** A master's API server certificate made again with the spec's SANs. */
export const apiServerSans: StepKindDef = {
  kind: APISERVER_SANS,
  async run(ctx, step, host, signal) {
    const { cluster, opts } = ctx;
    const rctx = ctx.runtimeContext(planAction(opts.plan), cluster.layout.current, await ctx.runtimeFiles(host));
    const cmd = certificatesOf(cluster.runtime, APISERVER_SANS).updateSANs(runtimeHost(host), rctx);
    await runRuntimeCommand(cluster, await cluster.pool.get(host, signal), cmd, step.id, signal);
  },
};
