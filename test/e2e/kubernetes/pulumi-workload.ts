import { readFile } from "node:fs/promises";
import type { PulumiRun } from "../pulumi-kubernetes/program";
import type { kubectlWith, RealBed } from "./support";

/*
 * What the Pulumi programs on a real sealant cluster share (pulumi-provider.test.ts,
 * pulumi-lifecycle.test.ts): the cluster's config, a workload deployed through
 * `cluster.provider`, and the identities Kubernetes gave that workload.
 */

/**
 * Program source: a Namespace, a ConfigMap and a Deployment mounting it, through `provider`
 * (declared before this text); the Deployment is `web`. Its busybox is the one the hello app's
 * cluster image carries, by that name.
 */
export const WORKLOAD = `const ns = new k8s.core.v1.Namespace("web", { metadata: { name: "web" } }, { provider });
const greeting = new k8s.core.v1.ConfigMap("greeting", { metadata: { name: "greeting", namespace: ns.metadata.name }, data: { message: "hello" } }, { provider });
const web = new k8s.apps.v1.Deployment("web", {
  metadata: { name: "web", namespace: ns.metadata.name, annotations: { "pulumi.com/timeoutSeconds": "300" } },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: "web" } },
    template: {
      metadata: { labels: { app: "web" } },
      spec: {
        containers: [{ name: "web", image: "docker.io/library/busybox:1.35", command: ["sh", "-c", "cat /greeting/message; echo; exec sleep 86400"], volumeMounts: [{ name: "greeting", mountPath: "/greeting" }] }],
        volumes: [{ name: "greeting", configMap: { name: greeting.metadata.name } }],
      },
    },
  },
}, { provider });
`;

/** The program's config for a KubernetesCluster on the bed's hosts: image, master, workers, knownHosts, sshPrivateKey (secret, on stdin). */
export async function configureCluster(pulumi: PulumiRun, bed: RealBed, cluster: { image: string; master: string; workers: string[] }): Promise<void> {
  const { image, master, workers } = cluster;
  await pulumi(["config", "set", "image", image]);
  await pulumi(["config", "set", "master", master]);
  for (const [i, w] of workers.entries()) await pulumi(["config", "set", "--path", `workers[${i}]`, w]);
  await pulumi(["config", "set", "knownHosts", bed.sb.ssh.knownHosts]);
  await pulumi(["config", "set", "--secret", "sshPrivateKey"], await readFile(bed.sb.ssh.pk, "utf8")); // a key: on stdin
}

/** The uids Kubernetes gave the workload's objects: the same uids mean the same objects, not new ones. */
export async function workloadUids(kubectl: ReturnType<typeof kubectlWith>): Promise<{ namespace: string; configMap: string; deployment: string }> {
  const uid = async (...what: string[]) => (JSON.parse(await kubectl("get", ...what, "-o", "json")) as { metadata: { uid: string } }).metadata.uid;
  return {
    namespace: await uid("namespace", "web"),
    configMap: await uid("configmap", "greeting", "-n", "web"),
    deployment: await uid("deployment", "web", "-n", "web"),
  };
}

/** Whether the workload's one pod runs. */
export async function workloadRunning(kubectl: ReturnType<typeof kubectlWith>): Promise<boolean> {
  const pods = JSON.parse(await kubectl("get", "pods", "-n", "web", "-o", "json")) as { items: { status: { phase: string } }[] };
  return pods.items.length === 1 && pods.items[0]!.status.phase === "Running";
}
