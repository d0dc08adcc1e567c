import { shellQuote } from "../ssh";
import { certificateReports, observeCertificates } from "./certificates";
import type { OpenCluster } from "./open";
import { isMaster } from "./plan";
import type { RuntimeOutputs } from "./runtime";
import { runtimeContextOf } from "./steps";

/**
 * What the runtime offers the cluster's users (a Kubernetes API endpoint and kubeconfig, an
 * etcd endpoint), read from the first master after an apply; the masters' certificates, from each. The kubeconfig is a secret: it is
 * returned, never logged.
 */
export async function runtimeOutputs(ctx: OpenCluster): Promise<RuntimeOutputs> {
  if (!ctx.runtime.outputs) return {};
  const conn = await ctx.pool.get(ctx.firstMaster, ctx.signal);
  const readFile = async (path: string): Promise<string | undefined> => {
    // The first line says whether the file exists (the runtime decides whether it must); a failed read throws.
    const q = shellQuote(path);
    const r = await conn.run(`if [ -f ${q} ]; then echo file; cat ${q}; else echo none; fi`, {
      sudo: true,
      timeoutMs: 60_000,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    return r.stdout.startsWith("file\n") ? r.stdout.slice("file\n".length) : undefined;
  };
  const out = await ctx.runtime.outputs(readFile, {
    ...runtimeContextOf(ctx, ctx.registry),
    action: "create",
    added: [],
    removed: [],
    rootfs: ctx.layout.current,
  });
  // Read after the apply: a renewal's new expiry shows at once. Of the masters the spec keeps (one removed by force may be powered off).
  const masters = [...ctx.hosts.values()].filter((h) => isMaster(h) && ctx.desired.hosts.some((d) => d.ip === h.ip));
  if (ctx.runtime.certificates) out.certificates = certificateReports(await observeCertificates(ctx, masters));
  return out;
}
