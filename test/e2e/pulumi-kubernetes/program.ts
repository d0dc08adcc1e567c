/**
 * A small TypeScript Pulumi program in a directory of its own, run by the real Pulumi CLI
 * (scripts/pulumi-cli.sh) with the real Kubernetes provider plugin (scripts/pulumi-kubernetes.sh)
 * first on PATH. Nothing is downloaded: PULUMI_HOME is empty and automatic plugin acquisition is
 * off, so the only Kubernetes plugin that can serve is the cached one.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { pulumiBin } from "../pulumi/support";

const ROOT = resolve(__dirname, "../../..");
const STACK = "e2e";

export interface KubernetesPlugin {
  /** The plugin version @pulumi/kubernetes asks the engine for. */
  version: string;
  /** The directory the build script caches the plugin in. */
  bin: string;
}

export function kubernetesPlugin(): KubernetesPlugin {
  const sdk = JSON.parse(readFileSync(join(ROOT, "node_modules/@pulumi/kubernetes/package.json"), "utf8")) as { pulumi: { version: string } };
  const version = sdk.pulumi.version;
  const bin = join(process.env["SEALANT_CACHE"] ?? join(homedir(), ".cache/sealant"), `pulumi-kubernetes-v${version}`, "bin");
  if (!existsSync(join(bin, "pulumi-resource-kubernetes"))) {
    throw new Error(`the Kubernetes provider plugin ${version} is not built in ${bin}: run bash scripts/pulumi-kubernetes.sh (scripts/setup.sh does)`);
  }
  return { version, bin };
}

/** `pulumi args... --non-interactive --stack e2e` in the program's directory; resolves with its output, rejects on a non-zero exit. */
export type PulumiRun = (args: string[], input?: string) => Promise<string>;

/** Writes `source` as index.ts of a project in `base`/program (state in `base`/state), makes stack e2e. */
export async function openProgram(base: string, plugin: KubernetesPlugin, source: string): Promise<PulumiRun> {
  const dir = join(base, "program");
  await mkdir(dir, { recursive: true });
  await mkdir(join(base, "state"));
  await writeFile(join(dir, "Pulumi.yaml"), "name: sealant-k8s-provider\nruntime:\n  name: nodejs\n  options:\n    typescript: true\nmain: index.ts\n");
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "sealant-k8s-provider", private: true, main: "index.ts" }));
  const compilerOptions = { target: "ES2022", module: "node16", moduleResolution: "node16", strict: true, skipLibCheck: true, types: ["node"] };
  await writeFile(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["index.ts"] }));
  await writeFile(join(dir, "index.ts"), source);
  await symlink(join(ROOT, "node_modules"), join(dir, "node_modules"));
  const { KUBECONFIG: _ignored, ...rest } = process.env; // the provider must use the kubeconfig it is given, not an ambient one
  const env = {
    ...rest,
    PATH: `${plugin.bin}:${pulumiBin()}:${join(ROOT, "node_modules/@pulumi/pulumi")}:${process.env["PATH"] ?? ""}`,
    PULUMI_BACKEND_URL: `file://${join(base, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: "sealant-e2e-pulumi-kubernetes",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_HOME: join(base, "pulumi-home"),
    NO_COLOR: "1",
  };
  const pulumi: PulumiRun = (args, input = "") =>
    new Promise((done, fail) => {
      const child = spawn("pulumi", [...args, "--non-interactive", "--stack", STACK], { cwd: dir, env, stdio: ["pipe", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      child.on("error", fail);
      // A hang fails with the output so far (the test's own timeout would show nothing).
      const timer = setTimeout(() => child.kill("SIGTERM"), 480_000);
      child.on("close", (code) => {
        clearTimeout(timer);
        if (code === 0) done(output);
        else fail(new Error(`pulumi ${args.join(" ")} exited ${code}:\n${output}`));
      });
      child.stdin.end(input);
    });
  await pulumi(["stack", "init"]); // named by --stack
  return pulumi;
}
