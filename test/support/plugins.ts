/**
 * What the out-of-tree plugin tests share: the fixture plugin modules, a tiny hooks image (no
 * hooks at all: every lifecycle step is a no-op, so a cluster is made in seconds and only the
 * plugins do anything), a cluster spec of 2 masters and a node, and the compiled CLI.
 */
import { spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { build } from "../../src/engine/build";
import type { ClusterEvent } from "../../src/engine/cluster";
import type { Plan } from "../../src/engine/cluster/plan";
import { parseClusterSpec, type ClusterSpec } from "../../src/engine/cluster/spec";
import type { Bed } from "./bed";
import { runOnHost } from "./hosts";

/** The fixture plugins (test/fixtures/plugins/*.ts): the `pluginBase` their `./name.ts` modules resolve from. */
export const PLUGIN_FIXTURES = resolve(__dirname, "../fixtures/plugins");
export const INVENTORY_EXAMPLE = resolve(__dirname, "../../examples/sealant-plugin-inventory");
export const CLI = process.env.SEALANT_TEST_CLI ?? resolve(__dirname, "../../dist/cli/main.js");

/** Builds a hooks-runtime image with one data file and no hooks; returns ref@digest. */
export async function buildTinyImage(bed: Bed, tag: string): Promise<string> {
  const context = await mkdtemp(join(bed.home, "tiny-"));
  await writeFile(join(context, "Kubefile"), 'FROM scratch\nLABEL io.sealant.runtime="hooks" io.sealant.runtime.version="tiny-1"\nCOPY note.txt note.txt\n');
  await writeFile(join(context, "note.txt"), "a cluster whose only work is its plugins\n");
  const r = await build(bed.session, { context, tag });
  return `${tag}@${r.digest}`;
}

/** A cluster on the bed's hosts: the first two masters, the third a node; `plugins` as a Clusterfile gives them. */
export function clusterWithPlugins(bed: Bed, name: string, image: string, plugins: unknown[], hosts = bed.ips): ClusterSpec {
  const [masters, nodes] = [hosts.slice(0, 2), hosts.slice(2)];
  return parseClusterSpec({
    name,
    image,
    hosts: [{ ips: masters, roles: ["master"] }, ...(nodes.length > 0 ? [{ ips: nodes, roles: ["node"] }] : [])],
    ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts },
    plugins,
  });
}

/** `host id` of every plugin step of a plan, in plan order. */
export function pluginSteps(plan: Plan): string[] {
  return plan.phases.flatMap((p) => p.steps.filter((s) => s.kind.startsWith("plugin:")).map((s) => `${s.host} ${s.id}`));
}

/** `host id` of the steps that finished among `events` (from index `from`). */
export function stepsDone(events: ClusterEvent[], from = 0): string[] {
  return events.slice(from).flatMap((e) => (e.type === "step" && e.status === "done" ? [`${e.host} ${e.id}`] : []));
}

/** A file's content on a host, or "absent". */
export async function fileOn(bed: Bed, ip: string, path: string): Promise<string> {
  const r = await runOnHost(bed.sandbox, ip, `cat ${path}`);
  return r.code === 0 ? r.stdout : "absent";
}

/** What an apply (or any promise) failed with; fails the test if it succeeded. */
export async function failure(p: Promise<unknown>): Promise<Error> {
  const outcome = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(outcome instanceof Error)) throw new Error(`expected a failure, got ${outcome === undefined ? "success" : String(outcome)}`);
  return outcome;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The compiled CLI (`node dist/cli/main.js ...`) with SEALANT_HOME = `home`, run from `cwd`. */
export function sealantCli(args: string[], home: string, cwd: string = home): Promise<CliRun> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, SEALANT_HOME: home }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}
