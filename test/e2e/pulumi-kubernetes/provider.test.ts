import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApiServer, type ApiServer } from "./api-server";
import { kubernetesPlugin, openProgram, type KubernetesPlugin, type PulumiRun } from "./program";

/**
 * The real Kubernetes provider for Pulumi — the plugin scripts/pulumi-kubernetes.sh builds from the
 * Go module proxy, driven by the @pulumi/kubernetes SDK this repo installs — run by the real Pulumi
 * CLI (scripts/pulumi-cli.sh) against a real kube-apiserver on loopback (./api-server.ts). A small
 * TypeScript program makes a `k8s.Provider` from a kubeconfig and a ConfigMap with it; the real
 * kubectl judges what the API server holds. Nothing is downloaded (./program.ts).
 */
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
  let pulumi: PulumiRun;
  let plugin: KubernetesPlugin;
  let firstUid = "";

  const greeting = async () =>
    JSON.parse(await api.kubectl("get", "configmap", "greeting", "-n", "default", "-o", "json", "--show-managed-fields")) as ConfigMapView;

  beforeAll(async () => {
    plugin = kubernetesPlugin();
    base = await mkdtemp(join(tmpdir(), "sealant-pulumi-k8s-"));
    api = await startApiServer(join(base, "cluster"));
    pulumi = await openProgram(base, plugin, PROGRAM);
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
