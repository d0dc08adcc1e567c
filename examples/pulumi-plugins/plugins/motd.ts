/**
 * A plugin of the program's own, next to it: each host's /etc/motd says which cluster it is in
 * and who runs it, written when the host is set up (post-init-host). The Cluster names it by
 * its path (`module: "./plugins/motd.ts"`), resolved from the program's directory.
 */
import { definePlugin } from "sealant/plugin";

export interface MotdConfig {
  /** Who to ask about this machine. */
  contact: string;
}

export default definePlugin<MotdConfig>({
  name: "motd",
  phases: ["post-init-host"],
  idempotent: true,
  describe: (ctx) => `write /etc/motd on ${ctx.host.ip} (cluster ${ctx.cluster.name}, contact ${ctx.config.contact})`,
  async run(ctx) {
    const roles = ctx.host.roles.join(", ");
    await ctx.host.upload("/etc/motd", `${ctx.host.ip} is a ${roles} of cluster ${ctx.cluster.name}. Ask ${ctx.config.contact} before changing it.\n`, {
      mode: 0o644,
    });
  },
});
