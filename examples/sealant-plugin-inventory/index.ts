/**
 * A sealant plugin that keeps an inventory of a cluster's machines, the way a CMDB agent would:
 *
 * - post-init-host, on every host in scope: reads the host's hostname, kernel, CPUs and memory
 *   and writes them, with the labels of `config`, to a JSON file on that host;
 * - post-install, once the cluster is up, and post-scaleup, once hosts joined: gathers every
 *   in-scope host's record into one inventory file on each master;
 * - pre-clean-host, on a host leaving the cluster (or reset): removes both files from it.
 *
 * Everything goes over sealant's own SSH connections (`ctx.host.run`, `ctx.host.upload`); files
 * are written whole and atomically, so running it again is always safe (`idempotent: true`).
 * TypeScript with erasable syntax only: Node 22 runs it as it is, no build step.
 */
import { definePlugin, type PluginHost } from "sealant/plugin";

/** The Plugin document's `config` (every field optional). */
export interface InventoryConfig {
  /** Each host's own record. @default "/etc/sealant-inventory.json" */
  path?: string;
  /** The cluster's inventory, on each master. @default "/etc/sealant-inventory-cluster.json" */
  clusterPath?: string;
  /** Copied into every record as given (team, rack, cost centre, ...). */
  labels?: Record<string, string>;
}

/** What the inventory knows about one host. */
export interface HostRecord {
  cluster: string;
  ip: string;
  roles: string[];
  hostname: string;
  kernel: string;
  cpus: number;
  memoryMiB: number;
  labels: Record<string, string>;
}

const DEFAULT_PATH = "/etc/sealant-inventory.json";
const DEFAULT_CLUSTER_PATH = "/etc/sealant-inventory-cluster.json";

/** The host's facts, read with one command (one round trip), one per line. */
async function recordOf(host: PluginHost, cluster: string, labels: Record<string, string>): Promise<HostRecord> {
  const { stdout } = await host.run("hostname; uname -r; nproc; awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo");
  const [hostname = "", kernel = "", cpus = "0", memory = "0"] = stdout.trim().split("\n");
  return { cluster, ip: host.ip, roles: [...host.roles], hostname, kernel, cpus: Number(cpus), memoryMiB: Number(memory), labels };
}

const asJson = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

export default definePlugin<InventoryConfig | undefined>({
  name: "inventory",
  phases: ["post-init-host", "post-install", "post-scaleup", "pre-clean-host"],
  idempotent: true,
  timeout: "2m",

  // Shown by `sealant plan` and `--dry-run` for each host the step runs on; it changes nothing.
  describe(ctx) {
    const config = ctx.config ?? {};
    const [path, clusterPath] = [config.path ?? DEFAULT_PATH, config.clusterPath ?? DEFAULT_CLUSTER_PATH];
    if (ctx.phase === "post-init-host") return `record ${ctx.host.ip}'s hostname, kernel, CPUs and memory in ${path}`;
    if (ctx.phase === "pre-clean-host") return `remove ${path} and ${clusterPath} from ${ctx.host.ip}`;
    return `write the inventory of cluster ${ctx.cluster.name} to ${clusterPath} on every master`;
  },

  async run(ctx) {
    const config = ctx.config ?? {};
    const path = config.path ?? DEFAULT_PATH;
    const clusterPath = config.clusterPath ?? DEFAULT_CLUSTER_PATH;
    // Checked here, where a bad value can fail the step with a message; they go into shell commands below.
    for (const p of [path, clusterPath]) if (!/^\/[\w./-]+$/.test(p)) ctx.fail(`config: "${p}" is not an absolute path of letters, digits, . _ - and /`);
    const labels = config.labels ?? {};

    if (ctx.phase === "post-init-host") {
      const record = await recordOf(ctx.host, ctx.cluster.name, labels);
      await ctx.host.upload(path, asJson(record), { mode: 0o644 });
      ctx.log.info(`recorded ${record.hostname}: kernel ${record.kernel}, ${record.cpus} CPUs, ${record.memoryMiB} MiB`);
      return;
    }
    if (ctx.phase === "pre-clean-host") {
      await ctx.host.run(`rm -f ${path} ${clusterPath}`);
      return;
    }

    // post-install and post-scaleup run once, on the first master, with every host in scope in ctx.hosts.
    const hosts = await Promise.all(ctx.hosts.map((h) => recordOf(h, ctx.cluster.name, labels)));
    const inventory = asJson({ cluster: ctx.cluster.name, image: ctx.cluster.image, hosts });
    const masters = ctx.hosts.filter((h) => h.roles.includes("master"));
    // A scope without masters still leaves the inventory somewhere: on the first master.
    for (const m of masters.length > 0 ? masters : [ctx.host]) await m.upload(clusterPath, inventory, { mode: 0o644 });
    ctx.log.info(`inventory of ${hosts.length} hosts written to ${clusterPath} on ${masters.length || 1} master(s)`);
  },
});
