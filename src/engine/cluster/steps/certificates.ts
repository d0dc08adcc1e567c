import { APISERVER_SANS, CERTIFICATE_RENEWAL } from "../plan/kinds";
import type { RuntimeCommand, RuntimeContext, RuntimeHost } from "../runtime";
import type { RuntimeCertificates } from "../runtime/types";
import type { StepKindDef } from "./kind";
import { planAction } from "./kind";
import { runRuntimeCommand, runtimeHost } from "./runtime-command";

/** A step on one master that runs the command the runtime's certificates give for it. */
function certificateStep(kind: string, command: (certs: RuntimeCertificates, host: RuntimeHost, ctx: RuntimeContext) => RuntimeCommand): StepKindDef {
  return {
    kind,
    async run(ctx, step, host, signal) {
      const { cluster, opts } = ctx;
      const certs = cluster.runtime.certificates;
      if (!certs) throw new Error(`the ${cluster.runtime.kind} runtime has no certificates: a ${kind} step cannot run`);
      const rctx = ctx.runtimeContext(planAction(opts.plan), cluster.layout.current, await ctx.runtimeFiles(host));
      await runRuntimeCommand(cluster, await cluster.pool.get(host, signal), command(certs, runtimeHost(host), rctx), step.id, signal);
    },
  };
}

/** A master's control-plane certificates renewed (plan/certificates.ts plans it when one has less than the threshold left). */
export const certificateRenewal = certificateStep(CERTIFICATE_RENEWAL, (certs, host, ctx) => certs.renew(host, ctx));

/** A master's API server certificate made again with the spec's SANs. */
export const apiServerSans = certificateStep(APISERVER_SANS, (certs, host, ctx) => certs.updateSANs(host, ctx));
