import { cp, mkdir, symlink, writeFile } from "node:fs/promises";
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

    /** A program directory with the package in node_modules (`how`: a symlink, as `npm install ../dir` makes, or a copy, as from a registry) and a Clusterfile. */
    async function program(name: string, how: "symlink" | "copy", config: string): Promise<{ dir: string; clusterfile: string }> {
      const dir = await install(name, "@example/sealant-plugin-inventory", INVENTORY_EXAMPLE, how);
      const clusterfile = join(dir, "Clusterfile");
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
      roles: [ master ]
    - ips: [ ${node} ]
      roles: [ node ]
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
      return { dir, clusterfile };
    }

    /** Each host's record and the masters' inventory, as the plugin wrote them. */
    async function expectInventory(cluster: string, hostPath: string, clusterPath: string, labels: Record<string, string>): Promise<void> {
      const records = [];
      for (const ip of bed.ips) {
        const facts = (await onHost(bed.sandbox, ip, "hostname; uname -r; nproc")).split("\n");
        const record = JSON.parse(await fileOn(bed, ip, hostPath)) as Record<string, unknown>;
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
      for (const ip of masters) expect(JSON.parse(await fileOn(bed, ip, clusterPath))).toEqual({ cluster, image: named, hosts: records });
      expect(await fileOn(bed, node, clusterPath)).toBe("absent");
    }

    it("GIVEN the package installed as `npm install ../dir` does (a symlink) WHEN the Clusterfile is loaded and applied from its directory THEN every host has its record and every master the cluster's inventory", async () => {
      const { dir, clusterfile } = await program("inventory-api", "symlink", "    labels:\n      team: platform\n      rack: r12");
      const { spec } = await loadClusterfile(clusterfile);
      const dry = await applyCluster({ session: bed.session, spec, pluginBase: dir, dryRun: true });
      expect(pluginSteps(dry.plan)).toEqual([...bed.ips.map((ip) => `${ip} plugin:inventory:post-init-host`), `${masters[0]} plugin:inventory:post-install`]);
      const text = formatPlan(dry.plan);
      for (const ip of bed.ips) expect(text).toContain(`record ${ip}'s hostname, kernel, CPUs and memory in /etc/sealant-inventory.json`);
      expect(text).toContain("write the inventory of cluster inventory-api to /etc/sealant-inventory-cluster.json on every master");
      expect(await fileOn(bed, masters[0]!, "/etc/sealant-inventory.json")).toBe("absent");

      try {
        await applyCluster({ session: bed.session, spec, pluginBase: dir });
        await expectInventory("inventory-api", "/etc/sealant-inventory.json", "/etc/sealant-inventory-cluster.json", { team: "platform", rack: "r12" });
      } finally {
        await resetCluster({ session: bed.session, spec, pluginBase: dir });
        for (const ip of bed.ips) await onHost(bed.sandbox, ip, "rm -f /etc/sealant-inventory.json /etc/sealant-inventory-cluster.json");
      }
    }, 120_000);

    it("GIVEN a plugin package whose exports have an import condition only (ESM-only) WHEN a cluster names it THEN it is found, loaded and planned", async () => {
      const dir = await install("esm-program", "@example/esm-only", join(PLUGIN_FIXTURES, "esm-only"), "symlink");
      const spec = clusterWithPlugins(bed, "esm-only", image, [{ name: "esm-only", type: "MODULE", module: "@example/esm-only" }]);
      const dry = await applyCluster({ session: bed.session, spec, pluginBase: dir, dryRun: true });
      expect(pluginSteps(dry.plan)).toEqual([`${masters[0]} plugin:esm-only:post-install`]);
      expect(formatPlan(dry.plan)).toContain("say hello from an ESM-only package");
    }, 60_000);

    it("GIVEN the package copied into node_modules (as from a registry) WHEN `sealant plan` and `sealant apply -f dir/Clusterfile` run from elsewhere THEN the plan shows its steps and apply writes the inventory", async () => {
      const config = "    path: /root/inventory-cli/host.json\n    clusterPath: /root/inventory-cli/cluster.json\n    labels:\n      team: cli";
      const { clusterfile } = await program("inventory-cli", "copy", config);
      try {
        // From the sealant home, not the Clusterfile's directory: modules resolve from the Clusterfile's.
        const plan = await sealantCli(["plan", "-f", clusterfile], bed.home);
        expect(plan.code, plan.stderr).toBe(0);
        expect(plan.stdout).toContain(`run plugin inventory (module @example/sealant-plugin-inventory) on ${node}: record ${node}'s hostname`);
        expect(plan.stdout).toContain("write the inventory of cluster inventory-cli to /root/inventory-cli/cluster.json on every master");
        expect(await fileOn(bed, node, "/root/inventory-cli/host.json")).toBe("absent");

        const applied = await sealantCli(["apply", "-f", clusterfile], bed.home);
        expect(applied.code, applied.stderr).toBe(0);
        await expectInventory("inventory-cli", "/root/inventory-cli/host.json", "/root/inventory-cli/cluster.json", { team: "cli" });
      } finally {
        const reset = await sealantCli(["reset", "-f", clusterfile, "--yes"], bed.home);
        if (reset.code !== 0) console.log(`sealant reset failed: ${reset.stderr}`);
        for (const ip of bed.ips) await onHost(bed.sandbox, ip, "rm -rf /root/inventory-cli");
      }
      for (const ip of bed.ips) expect(await onHost(bed.sandbox, ip, "ls -A /var/lib/sealant 2>/dev/null; true"), ip).toBe("");
    }, 120_000);
  });
});
