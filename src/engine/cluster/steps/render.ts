import { aliasesBlock, setHostsBlock } from "../host/etc-hosts";
import { renderFiles, writeRendered } from "../host/render";
import { RENDER } from "../plan/kinds";
import type { StepKindDef } from "./kind";

/** The image's templates and the spec's configs rendered for the host into its new rootfs; the spec's host aliases into /etc/hosts. */
export const render: StepKindDef = {
  kind: RENDER,
  async run(ctx, _step, host, signal) {
    const { cluster } = ctx;
    const { spec, layout } = cluster;
    const conn = await cluster.pool.get(host, signal);
    const rendered = renderFiles(await ctx.imageFiles(ctx.platformOf(host)), spec.configs, host.env);
    await writeRendered(conn, layout, cluster.image.digest, rendered, signal);
    await setHostsBlock(
      conn,
      aliasesBlock(layout.root),
      spec.hostAliases.map((a) => `${a.ip} ${a.hostnames.join(" ")}`),
      signal,
    );
  },
};
