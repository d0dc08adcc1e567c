import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApiServer, type ApiServer } from "./api-server";
import { kubernetesPlugin, openProgram, type PulumiRun } from "./program";

/**
 * What the real Kubernetes provider (scripts/pulumi-kubernetes.sh's plugin, the real Pulumi CLI,
 * a real kube-apiserver on loopback) does to a workload when the cluster resource it comes from
 * changes — the ground a ready `k8s.Provider` from a cluster construct stands on. The cluster
 * resource here is a dynamic resource whose `kubeconfig` is an output (so, like any resource's
 * output, unknown in a preview while the resource changes); it hands out the kubeconfig it is given.
 * Two providers from it, one with a fixed `clusterIdentifier`, each with a ConfigMap.
 */
const PROGRAM = `import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

const config = new pulumi.Config();
const cluster: pulumi.dynamic.ResourceProvider = {
  async create(inputs) {
    return { id: "cluster", outs: { ...inputs, kubeconfig: inputs.material } };
  },
  async diff(_id, olds, news) {
    return { changes: olds.generation !== news.generation || olds.material !== news.material };
  },
  async update(_id, _olds, news) {
    return { outs: { ...news, kubeconfig: news.material } };
  },
};
class Cluster extends pulumi.dynamic.Resource {
  declare readonly kubeconfig: pulumi.Output<string>;
  constructor(name: string, args: { material: pulumi.Input<string>; generation: pulumi.Input<number> }) {
    super(cluster, name, { ...args, kubeconfig: undefined }, {});
  }
}
const c = new Cluster("cluster", { material: config.requireSecret("kubeconfig"), generation: config.requireNumber("generation") });
const plain = new k8s.Provider("plain", { kubeconfig: c.kubeconfig });
const pinned = new k8s.Provider("pinned", { kubeconfig: c.kubeconfig, clusterIdentifier: "sealant-test-cluster" });
for (const [name, provider] of [["plain", plain], ["pinned", pinned]] as const) {
  new k8s.core.v1.ConfigMap(name, { metadata: { name, namespace: "default" }, data: { message: "hello" } }, { provider });
}
`;

/** The step `pulumi preview --diff` shows for the resource of `type` named `name`: "update", "replace", ... */
function previewStep(preview: string, type: string, name: string): string | undefined {
  const lines = preview.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const step = new RegExp(`^\\s*[-+~]*\\s*${type.replace(/[/.]/g, "\\$&")}: \\((\\w[\\w-]*)\\)`).exec(lines[i]!);
    if (step && lines.slice(i + 1, i + 4).some((l) => l.includes(`::${type}::${name}]`) || l.includes(`::${type}::${name}::`))) return step[1];
  }
  return undefined;
}

describe("the real Kubernetes provider when the cluster resource its kubeconfig comes from changes", () => {
  let base: string;
  let api: ApiServer;
  let pulumi: PulumiRun;
  const uid = async (name: string) =>
    (JSON.parse(await api.kubectl("get", "configmap", name, "-n", "default", "-o", "json")) as { metadata: { uid: string } }).metadata.uid;
  const uids = async () => ({ plain: await uid("plain"), pinned: await uid("pinned") });
  let first: { plain: string; pinned: string };

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "sealant-pulumi-k8s-id-"));
    api = await startApiServer(join(base, "cluster"));
    pulumi = await openProgram(base, kubernetesPlugin(), PROGRAM);
    await pulumi(["config", "set", "--secret", "kubeconfig"], api.kubeconfig); // a client key: on stdin
    await pulumi(["config", "set", "generation", "1"]);
    await pulumi(["up", "--yes", "--skip-preview"]);
    first = await uids();
  }, 600_000);

  afterAll(async () => {
    await api?.stop();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it("a preview while the cluster changes shows the provider without clusterIdentifier and its workload replaced; with one, updated", async () => {
    await pulumi(["config", "set", "generation", "2"]);
    const preview = await pulumi(["preview", "--diff"]);
    expect(preview).toMatch(/kubeconfig: "\[secret\]" => \[unknown\]/);
    expect(previewStep(preview, "pulumi:providers:kubernetes", "plain")).toBe("replace");
    expect(previewStep(preview, "kubernetes:core/v1:ConfigMap", "plain")).toBe("replace");
    expect(previewStep(preview, "pulumi:providers:kubernetes", "pinned")).toBe("update");
    expect(previewStep(preview, "kubernetes:core/v1:ConfigMap", "pinned")).toBe("update");
  }, 600_000);

  it("the update itself, the kubeconfig unchanged, replaces neither workload", async () => {
    const out = await pulumi(["up", "--yes", "--skip-preview"]);
    expect(out).not.toMatch(/replaced/);
    expect(await uids()).toEqual(first);
  }, 600_000);

  it("a kubeconfig with a newly issued client certificate for the same server and CA replaces neither workload", async () => {
    await pulumi(["config", "set", "--secret", "kubeconfig"], await api.reissuedKubeconfig());
    await pulumi(["config", "set", "generation", "3"]);
    const out = await pulumi(["up", "--yes", "--skip-preview"]);
    expect(out).not.toMatch(/replaced/);
    expect(await uids()).toEqual(first);
  }, 600_000);
});
