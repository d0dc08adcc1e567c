import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pulumiBin } from "../pulumi/support";
import { startApiServer, type ApiServer } from "./api-server";

/**
 * The real Kubernetes provider for Pulumi — the plugin scripts/pulumi-kubernetes.sh builds from the
 * Go module proxy, driven by the @pulumi/kubernetes SDK this repo installs — run by the real Pulumi
 * CLI (scripts/pulumi-cli.sh) against a real kube-apiserver on loopback (./api-server.ts). A small
 * TypeScript program makes a `k8s.Provider` from a kubeconfig and a ConfigMap with it; the real
 * kubectl judges what the API server holds. Nothing is downloaded: PULUMI_HOME is empty and
 * automatic plugin acquisition is off, so the only plugin that can serve is the one on PATH.
 */
const ROOT = resolve(__dirname, "../../..");
const STACK = "e2e";

/** The plugin version @pulumi/kubernetes asks the engine for, and the directory the build script caches it in. */
function kubernetesPlugin(): { version: string; bin: string } {
  const sdk = JSON.parse(readFileSync(join(ROOT, "node_modules/@pulumi/kubernetes/package.json"), "utf8")) as { pulumi: { version: string } };
  const version = sdk.pulumi.version;
  const bin = join(process.env["SEALANT_CACHE"] ?? join(homedir(), ".cache/sealant"), `pulumi-kubernetes-v${version}`, "bin");
  if (!existsSync(join(bin, "pulumi-resource-kubernetes"))) {
    throw new Error(`the Kubernetes provider plugin ${version} is not built in ${bin}: run bash scripts/pulumi-kubernetes.sh (scripts/setup.sh does)`);
  }
  return { version, bin };
}

const PROGRAM = `import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

const config = new pulumi.Config();
const cluster = new k8s.Provider("cluster", { kubeconfig: config.requireSecret("kubeconfig") });
const greeting = new k8s.core.v1.ConfigMap(
  "greeting",
  { metadata: { name: "greeting", namespace: "default", labels: { tier: config.require("tier") } }, data: { message: "hello" } },
  { provider: cluster },
);
export const uid = greeting.metadata.uid;
`;

interface ConfigMapView {
  metadata: { uid: string; labels?: Record<string, string>; managedFields?: { manager: string }[] };
  data: Record<string, string>;
}

describe("the real Kubernetes provider plugin with the real Pulumi CLI, on a real API server", () => {
  let base: string;
  let api: ApiServer;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let plugin: { version: string; bin: string };
  let firstUid = "";

  const pulumi = (args: string[], input = ""): Promise<string> =>
    new Promise((done, fail) => {
      const child = spawn("pulumi", [...args, "--non-interactive", "--stack", STACK], { cwd: dir, env, stdio: ["pipe", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      child.on("error", fail);
      child.on("close", (code) => (code === 0 ? done(output) : fail(new Error(`pulumi ${args.join(" ")} exited ${code}:\n${output}`))));
      // A hang fails with the output so far (the test's own timeout would show nothing).
      const timer = setTimeout(() => child.kill("SIGTERM"), 480_000);
      child.on("close", () => clearTimeout(timer));
      child.stdin.end(input);
    });
  const greeting = async () =>
    JSON.parse(await api.kubectl("get", "configmap", "greeting", "-n", "default", "-o", "json", "--show-managed-fields")) as ConfigMapView;

  beforeAll(async () => {
    plugin = kubernetesPlugin();
    base = await mkdtemp(join(tmpdir(), "sealant-pulumi-k8s-"));
    api = await startApiServer(join(base, "cluster"));
    dir = join(base, "program");
    await mkdir(dir, { recursive: true });
    await mkdir(join(base, "state"));
    await writeFile(join(dir, "Pulumi.yaml"), "name: sealant-k8s-provider\nruntime:\n  name: nodejs\n  options:\n    typescript: true\nmain: index.ts\n");
    await writeFile(join(dir, "package.json"), JSON.stringify({ name: "sealant-k8s-provider", private: true, main: "index.ts" }));
    const compilerOptions = { target: "ES2022", module: "node16", moduleResolution: "node16", strict: true, skipLibCheck: true, types: ["node"] };
    await writeFile(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["index.ts"] }));
    await writeFile(join(dir, "index.ts"), PROGRAM);
    await symlink(join(ROOT, "node_modules"), join(dir, "node_modules"));
    const { KUBECONFIG: _ignored, ...rest } = process.env; // the provider must use the kubeconfig it is given, not the ambient one
    env = {
      ...rest,
      PATH: `${plugin.bin}:${pulumiBin()}:${join(ROOT, "node_modules/@pulumi/pulumi")}:${process.env["PATH"] ?? ""}`,
      PULUMI_BACKEND_URL: `file://${join(base, "state")}`,
      PULUMI_CONFIG_PASSPHRASE: "sealant-e2e-pulumi-kubernetes",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_HOME: join(base, "pulumi-home"),
      NO_COLOR: "1",
    };
    await pulumi(["stack", "init"]); // named by --stack
    // A kubeconfig holds a client key: it goes in as a secret, on stdin.
    await pulumi(["config", "set", "--secret", "kubeconfig"], api.kubeconfig);
    await pulumi(["config", "set", "tier", "one"]);
  }, 300_000);

  afterAll(async () => {
    await api?.stop();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it("up creates the ConfigMap through the provider: the API server holds it, written by pulumi-kubernetes", async () => {
    const out = await pulumi(["up", "--yes", "--skip-preview"]);
    // The engine says which binary served: the one the build script cached, found on PATH.
    expect(out).toContain(`using pulumi-resource-kubernetes from $PATH at ${join(plugin.bin, "pulumi-resource-kubernetes")}`);
    const cm = await greeting();
    expect(cm.data).toEqual({ message: "hello" });
    expect(cm.metadata.labels).toEqual({ tier: "one" });
    expect(cm.metadata.managedFields?.map((f) => f.manager).some((m) => m.startsWith("pulumi-kubernetes"))).toBe(true);
    firstUid = cm.metadata.uid;
    expect(JSON.parse(await pulumi(["stack", "output", "uid", "--json"]))).toBe(firstUid);
    // The engine ran the provider at the version the SDK asked for (the plugin built at that release).
    const state = JSON.parse(await pulumi(["stack", "export"])) as { deployment: { resources: { type: string; inputs?: { version?: string } }[] } };
    expect(state.deployment.resources.find((r) => r.type === "pulumi:providers:kubernetes")?.inputs?.version).toBe(plugin.version);
  }, 600_000);

  // (A ConfigMap's data is another matter: the provider replaces a ConfigMap whose data changes,
  // so that workloads mounting it roll; its labels it updates in place.)
  it("a changed label is an update in place: the same object (uid), the new label", async () => {
    await pulumi(["config", "set", "tier", "two"]);
    const out = await pulumi(["up", "--yes", "--skip-preview"]);
    expect(out).toMatch(/1 updated/);
    expect(out).not.toMatch(/replaced/);
    const cm = await greeting();
    expect(cm.metadata.labels).toEqual({ tier: "two" });
    expect(cm.metadata.uid).toBe(firstUid);
  }, 600_000);

  it("destroy deletes the ConfigMap from the API server", async () => {
    await pulumi(["destroy", "--yes", "--skip-preview"]);
    await expect(greeting()).rejects.toThrow(/NotFound/);
  }, 600_000);
});
