import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCluster, resetCluster } from "../../../../src/engine/cluster";
import { formatPlan } from "../../../../src/engine/cluster/plan";
import { loadClusterfile } from "../../../../src/engine/cluster/spec";
import { openBed, trustSandboxHosts, type Bed } from "../../../support/bed";
import { onHost } from "../../../support/hosts";
import { buildTinyImage, clusterWithPlugins, fileOn, INVENTORY_EXAMPLE, PLUGIN_FIXTURES, pluginSteps, sealantCli } from "../../../support/plugins";

/**
 * The example plugin package (examples/sealant-plugin-inventory) as its users get it: it
 * type-checks as Node runs it, and installed into a program's node_modules next to a sealer
 * Clusterfile that names it (`module: "@example/sealant-plugin-inventory"`) it runs through
 * loadClusterfile + applyCluster and through the real CLI (`sealant apply -f dir/Clusterfile`),
 * onto sandbox hosts 127.0.10.51-53 (two masters, a node), judged by the files on the hosts.
 */
const ROOT = resolve(__dirname, "../../../..");
const FIRST = 51;

/** The example's own tsconfig.json, `sealant/plugin` resolving to the API's source (not a possibly stale dist/); diagnostics of `roots` only. */
function typeCheckExample(virtual = new Map<string, string>()): string[] {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(INVENTORY_EXAMPLE, "tsconfig.json"),
    {},
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined },
  );
  if (!config || config.errors.length) throw new Error(`examples/sealant-plugin-inventory/tsconfig.json: ${JSON.stringify(config?.errors)}`);
  const options = { ...config.options, paths: { "sealant/plugin": [join(ROOT, "src/engine/cluster/plugins/api.ts")] } };
  const host = ts.createCompilerHost(options, true);
  const real = { fileExists: host.fileExists, readFile: host.readFile, getSourceFile: host.getSourceFile };
  host.fileExists = (f) => virtual.has(f) || real.fileExists.call(host, f);
  host.readFile = (f) => virtual.get(f) ?? real.readFile.call(host, f);
  host.getSourceFile = (f, language, ...rest) => {
    const text = virtual.get(f);
    return text !== undefined ? ts.createSourceFile(f, text, language, true) : real.getSourceFile.call(host, f, language, ...rest);
  };
  const roots = [...config.fileNames, ...virtual.keys()];
  const program = ts.createProgram({ rootNames: roots, options, host });
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file === undefined || roots.includes(d.file.fileName))
    .map((d) => `${d.file?.fileName.slice(INVENTORY_EXAMPLE.length + 1) ?? ""} TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`);
}

describe("the example plugin package, @example/sealant-plugin-inventory", () => {
  it("GIVEN its index.ts WHEN type-checked with its tsconfig.json (erasable syntax only) THEN there is no error, and a misuse would be one", () => {
    expect(typeCheckExample()).toEqual([]);
    const wrong = join(INVENTORY_EXAMPLE, "wrong.ts");
    const misuse =
      'import { definePlugin } from "sealant/plugin";\nenum E { A }\nexport default definePlugin({ name: "w", phases: ["post-instal"], idempotent: true, run() {} });\n';
    const errors = typeCheckExample(new Map([[wrong, misuse]]));
    expect(errors).toContainEqual(expect.stringMatching(/^wrong\.ts TS1294: This syntax is not allowed when 'erasableSyntaxOnly' is enabled/));
    expect(errors).toContainEqual(expect.stringMatching(/^wrong\.ts TS\d+: Type '"post-instal"' is not assignable to type .*Did you mean '"post-install"'/));
  });

  describe("installed into a program and applied onto sandbox hosts", () => {
    let bed: Bed;
    let image: string;
    let masters: string[];
    let node: string;

    beforeAll(async () => {
      bed = await openBed(3, FIRST);
      masters = bed.ips.slice(0, 2);
      node = bed.ips[2]!;
      image = await buildTinyImage(bed, "example/tiny:inventory");
      // sealer's Clusterfile names no known_hosts: the user trusts the hosts in sealant's own once.
      await trustSandboxHosts(bed);
    }, 120_000);
    afterAll(async () => {
      await bed?.close();
    });

    /** A program directory `name` with `source` installed in its node_modules as `pkg`, and sealant (this repo) beside it. */
    async function install(name: string, pkg: string, source: string, how: "symlink" | "copy"): Promise<string> {
      const dir = join(bed.home, name);
      const installed = join(dir, "node_modules", pkg);
      await mkdir(dirname(installed), { recursive: true });
      if (how === "symlink") await symlink(source, installed);
      else await cp(source, installed, { recursive: true });
      await symlink(ROOT, join(dir, "node_modules/sealant"));
      return dir;
    }

    /** The program's Clusterfile (sealer's format): the masters, the node when `withNode`, and the plugin with `config` (YAML lines). */
    async function writeClusterfile(dir: string, name: string, config: string, withNode: boolean): Promise<string> {
      const clusterfile = join(dir, "Clusterfile");
      const nodes = withNode ? `\n    - ips: [ ${node} ]\n      roles: [ node ]` : "";
      await writeFile(
        clusterfile,
        `apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: ${name}
spec:
  image: ${image}
  ssh:
    user: root
    pk: ${bed.sandbox.ssh.pk}
  hosts:
    - ips: [ ${masters.join(", ")} ]
      roles: [ master ]${nodes}
---
apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: inventory
spec:
  type: MODULE
  module: "@example/sealant-plugin-inventory"
  config:
${config}
`,
      );
      return clusterfile;
    }

    /** Each of `ips`' record and the masters' inventory of them, as the plugin wrote them. */
    async function expectInventory(ips: string[], cluster: string, paths: { host: string; cluster: string }, labels: Record<string, string>): Promise<void> {
      const records = [];
      for (const ip of ips) {
        const facts = (await onHost(bed.sandbox, ip, "hostname; uname -r; nproc")).split("\n");
        const record = JSON.parse(await fileOn(bed, ip, paths.host)) as Record<string, unknown>;
        expect(record).toMatchObject({
          cluster,
          ip,
          roles: [ip === node ? "node" : "master"],
          hostname: facts[0],
          kernel: facts[1],
          cpus: Number(facts[2]),
          labels,
        });
        expect(record["memoryMiB"]).toBeGreaterThan(0);
        records.push(record);
      }
      // The image as sealant names it (registry made explicit), with its digest.
      const named = expect.stringMatching(new RegExp(`(^|/)${image.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`));
      for (const ip of masters) expect(JSON.parse(await fileOn(bed, ip, paths.cluster))).toEqual({ cluster, image: named, hosts: records });
      expect(await fileOn(bed, node, paths.cluster)).toBe("absent");
    }

    /** What is left on the hosts of the plugin's files and sealant's. */
    const leftOnHosts = (paths: { host: string; cluster: string }) =>
      Promise.all(bed.ips.map((ip) => onHost(bed.sandbox, ip, `ls ${paths.host} ${paths.cluster} 2>/dev/null; ls -A /var/lib/sealant 2>/dev/null; true`)));

    const DEFAULT_PATHS = { host: "/etc/sealant-inventory.json", cluster: "/etc/sealant-inventory-cluster.json" };

    it("GIVEN the package installed as `npm install ../dir` does (a symlink) WHEN the Clusterfile is loaded and applied from its directory, then a node added, then reset THEN the records and inventory follow the cluster, and reset leaves nothing", async () => {
      const dir = await install("inventory-api", "@example/sealant-plugin-inventory", INVENTORY_EXAMPLE, "symlink");
      const labels = "    labels:\n      team: platform\n      rack: r12";
      const load = async (withNode: boolean) => (await loadClusterfile(await writeClusterfile(dir, "inventory-api", labels, withNode))).spec;
      const apply = async (withNode: boolean, dryRun = false) => applyCluster({ session: bed.session, spec: await load(withNode), pluginBase: dir, dryRun });
      try {
        // The masters first: each records itself, then the first master writes the inventory on both.
        const dry = await apply(false, true);
        expect(pluginSteps(dry.plan)).toEqual([...masters.map((ip) => `${ip} plugin:inventory:post-init-host`), `${masters[0]} plugin:inventory:post-install`]);
        const text = formatPlan(dry.plan);
        for (const ip of masters) expect(text).toContain(`record ${ip}'s hostname, kernel, CPUs and memory in /etc/sealant-inventory.json`);
        expect(text).toContain("write the inventory of cluster inventory-api to /etc/sealant-inventory-cluster.json on every master");
        expect(await fileOn(bed, masters[0]!, DEFAULT_PATHS.host)).toBe("absent");
        await apply(false);
        await expectInventory(masters, "inventory-api", DEFAULT_PATHS, { team: "platform", rack: "r12" });

        // A node joins: it records itself; the inventory is written again with it.
        const scale = await apply(true, true);
        expect(pluginSteps(scale.plan)).toEqual([
          `${node} plugin:inventory:post-init-host`,
          expect.stringMatching(new RegExp(`^${masters[0]} plugin:inventory:post-scaleup`)),
        ]);
        await apply(true);
        await expectInventory(bed.ips, "inventory-api", DEFAULT_PATHS, { team: "platform", rack: "r12" });
      } finally {
        await resetCluster({ session: bed.session, spec: await load(true), pluginBase: dir });
      }
      // pre-clean-host removed the plugin's files with sealant's.
      expect(await leftOnHosts(DEFAULT_PATHS)).toEqual(["", "", ""]);
    }, 120_000);

    it("GIVEN a plugin package whose exports have an import condition only (ESM-only) WHEN a cluster names it THEN it is found, loaded and planned", async () => {
      const dir = await install("esm-program", "@example/esm-only", join(PLUGIN_FIXTURES, "esm-only"), "symlink");
      const spec = clusterWithPlugins(bed, "esm-only", image, [{ name: "esm-only", type: "MODULE", module: "@example/esm-only" }]);
      const dry = await applyCluster({ session: bed.session, spec, pluginBase: dir, dryRun: true });
      expect(pluginSteps(dry.plan)).toEqual([`${masters[0]} plugin:esm-only:post-install`]);
      expect(formatPlan(dry.plan)).toContain("say hello from an ESM-only package");
    }, 60_000);

    it("GIVEN a plugin package kept outside any project (sealant, its peer dependency, not installed beside it) and linked into a program as `npm install ../dir` does WHEN a cluster names it THEN its `sealant/plugin` import resolves and it is planned", async () => {
      // Node resolves a linked package's imports from where its files really are: here, nowhere with a node_modules/sealant.
      const outside = await mkdtemp(join(tmpdir(), "sealant-plugin-outside-"));
      try {
        await cp(join(PLUGIN_FIXTURES, "esm-only/index.ts"), join(outside, "index.ts"));
        await writeFile(
          join(outside, "package.json"),
          JSON.stringify({ name: "@acme/linked", version: "1.0.0", type: "module", main: "index.ts", peerDependencies: { sealant: "*" } }),
        );
        const dir = await install("linked-program", "@acme/linked", outside, "symlink");
        const spec = clusterWithPlugins(bed, "linked", image, [{ name: "linked", type: "MODULE", module: "@acme/linked" }]);
        const dry = await applyCluster({ session: bed.session, spec, pluginBase: dir, dryRun: true });
        expect(pluginSteps(dry.plan)).toEqual([`${masters[0]} plugin:linked:post-install`]);
      } finally {
        await rm(outside, { recursive: true, force: true });
      }
    }, 60_000);

    it("GIVEN the package copied into node_modules (as from a registry) WHEN `sealant plan`, `apply` and `reset -f dir/Clusterfile` run from elsewhere THEN the plan shows its steps, apply writes the inventory and reset removes it", async () => {
      const dir = await install("inventory-cli", "@example/sealant-plugin-inventory", INVENTORY_EXAMPLE, "copy");
      const paths = { host: "/root/inventory-cli/host.json", cluster: "/root/inventory-cli/cluster.json" };
      const config = `    path: ${paths.host}\n    clusterPath: ${paths.cluster}\n    labels:\n      team: cli`;
      const clusterfile = await writeClusterfile(dir, "inventory-cli", config, true);
      try {
        // From the sealant home, not the Clusterfile's directory: modules resolve from the Clusterfile's.
        const plan = await sealantCli(["plan", "-f", clusterfile], bed.home);
        expect(plan.code, plan.stderr).toBe(0);
        expect(plan.stdout).toContain(`run plugin inventory (module @example/sealant-plugin-inventory) on ${node}: record ${node}'s hostname`);
        expect(plan.stdout).toContain(`write the inventory of cluster inventory-cli to ${paths.cluster} on every master`);
        expect(await fileOn(bed, node, paths.host)).toBe("absent");

        const applied = await sealantCli(["apply", "-f", clusterfile], bed.home);
        expect(applied.code, applied.stderr).toBe(0);
        await expectInventory(bed.ips, "inventory-cli", paths, { team: "cli" });
      } finally {
        const reset = await sealantCli(["reset", "-f", clusterfile, "--yes"], bed.home);
        if (reset.code !== 0) console.log(`sealant reset failed: ${reset.stderr}`);
      }
      expect(await leftOnHosts(paths)).toEqual(["", "", ""]);
    }, 120_000);
  });
});
