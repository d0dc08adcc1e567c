import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NEW, eventually, kubectlWith, nodesOf, openRealBed, type RealBed, writeKubeconfig } from "./support";
import { kubernetesPlugin, openProgram, type PulumiRun } from "../pulumi-kubernetes/program";
import { configureCluster, WORKLOAD, workloadRunning, workloadUids } from "./pulumi-workload";

/**
 * KubernetesCluster's ready `k8s.Provider` on a real sealant cluster: the real Pulumi CLI, the
 * real Kubernetes provider plugin (scripts/pulumi-kubernetes.sh), and a real kubeadm cluster on
 * Kubernetes-capable sandbox hosts, all in one program. The workload (a Namespace, a ConfigMap
 * and a Deployment mounting it) goes through `cluster.provider`; then a worker joins, and
 * neither the preview nor the update touches the provider or the workload. Here rather than in
 * test/e2e/pulumi-kubernetes: it needs the real Kubernetes bed (npm run test:kubernetes sets it up).
 */
const PROGRAM = `import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { KubernetesCluster } from "sealant";

const config = new pulumi.Config();
const cluster = new KubernetesCluster("k8s", {
  clusterName: "k8sprovider",
  image: config.require("image"),
  masters: [config.require("master")],
  workers: config.requireObject<string[]>("workers"),
  ssh: { user: "root", privateKey: config.requireSecret("sshPrivateKey"), knownHosts: config.require("knownHosts") },
});
const provider = cluster.provider;
${WORKLOAD}
export const kubeconfig = cluster.kubernetes.kubeconfig;
export const clusterKubeconfig = cluster.kubeconfig;
export const clusterIdentifier = cluster.kubernetes.clusterIdentifier;
`;

describe("KubernetesCluster's k8s.Provider on a real cluster while it scales", () => {
  let bed: RealBed;
  let base: string;
  let pulumi: PulumiRun;
  let kubectl: ReturnType<typeof kubectlWith>;
  let m: string, w1: string, w2: string;
  let first: Record<string, string>;
  const uids = () => workloadUids(kubectl);
  const output = async (name: string) => (await pulumi(["stack", "output", "--show-secrets", name])).trim();

  beforeAll(async () => {
    bed = await openRealBed("k8sprovider", 3, [NEW]);
    [m, w1, w2] = bed.ips as [string, string, string];
    base = await mkdtemp(join(tmpdir(), "sealant-k8s-provider-"));
    process.env["SEALANT_HOME"] = bed.home; // the Cluster's provider finds the image in this store
    pulumi = await openProgram(base, kubernetesPlugin(), PROGRAM);
    await configureCluster(pulumi, bed, { image: bed.app[NEW]!, master: m, workers: [w1] });
  }, 900_000);

  afterAll(async () => {
    await bed?.close();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it("one `pulumi up` creates the cluster and the workload through cluster.provider; the kubeconfig is secret in the state", async () => {
    await pulumi(["up", "--yes", "--skip-preview"]);
    const kubeconfig = await output("kubeconfig");
    kubectl = kubectlWith(await writeKubeconfig(join(base, "admin.conf"), kubeconfig));
    expect(await output("clusterKubeconfig")).toBe(kubeconfig);
    expect(await output("clusterIdentifier")).toBe("sealant:k8sprovider");
    expect(kubeconfig).toContain(`server: https://${m}:6443`);
    await eventually("the workload's pod running", () => workloadRunning(kubectl));
    expect((await kubectl("logs", "-n", "web", "deployment/web")).trim()).toBe("hello");
    first = await uids();

    const key = /client-key-data: (\S+)/.exec(kubeconfig)![1]!;
    const state = await pulumi(["stack", "export"]);
    expect(state).toContain("ClusterKubeconfig");
    expect(state).not.toContain(key);
  }, 900_000);

  it("a worker added: the preview shows the Cluster's join and nothing of the provider or the workload; the update replaces nothing", async () => {
    await pulumi(["config", "set", "--path", "workers[1]", w2]);
    const preview = await pulumi(["preview", "--diff"]);
    expect(preview).toContain(`join ${w2} (node)`);
    expect(preview).toMatch(/sealant:Cluster: \(update\)/);
    // No step at all for the stable kubeconfig, the provider or any Kubernetes resource.
    expect(preview).not.toMatch(/^\s*[-+~]+\s*(pulumi-nodejs:dynamic\/sealant:ClusterKubeconfig|pulumi:providers:kubernetes|kubernetes:[\w/.]+:\w+): \(/m);
    expect(preview).toMatch(/~ 1 to update/);
    expect(preview).not.toMatch(/to replace|kubeconfig: .*\[unknown\]/);

    const up = await pulumi(["up", "--yes", "--skip-preview"]);
    expect(up).not.toMatch(/replaced/);
    expect(await uids()).toEqual(first);
    expect((await nodesOf(kubectl)).map((n) => [n.ip, n.ready])).toEqual([m, w1, w2].map((ip) => [ip, true]));
    // The provider's kubeconfig is still the cluster's own.
    expect(await output("kubeconfig")).toBe(await output("clusterKubeconfig"));
  }, 900_000);
});
