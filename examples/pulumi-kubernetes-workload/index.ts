// A Kubernetes cluster and what runs on it, in one program: the cluster's own `k8s.Provider`
// (`cluster.provider`) deploys a ConfigMap and a Deployment onto it. Adding a worker is
// `pulumi config set --path 'workers[1]' <ip>`; `pulumi preview --diff` then shows the join and
// nothing of the provider or the workload — the provider's kubeconfig stays known and unchanged
// while the cluster's API server and identity stay — and `pulumi up` keeps every workload as it is.
//
//   pulumi config set image example/hello:v1.31.4@sha256:...
//   pulumi config set --path 'masters[0]' 10.231.1.11
//   pulumi config set --path 'workers[0]' 10.231.1.12
//   pulumi config set knownHosts /path/to/known_hosts
//   pulumi config set --secret sshPrivateKey -- "$(cat key)"
//   pulumi up
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { KubernetesCluster } from "sealant";

const config = new pulumi.Config();

const cluster = new KubernetesCluster("kubernetes", {
  clusterName: config.get("clusterName") ?? `k8s-${pulumi.getStack()}`,
  image: config.require("image"),
  masters: config.requireObject<string[]>("masters"),
  workers: config.getObject<string[]>("workers") ?? [],
  ssh: { user: config.get("sshUser") ?? "root", privateKey: config.requireSecret("sshPrivateKey"), knownHosts: config.require("knownHosts") },
});

// Created on first use; its clusterIdentifier is the cluster's name, so only a new cluster
// (a changed clusterName, dataRoot or network range) replaces the workloads behind it.
const provider = cluster.provider;

const ns = new k8s.core.v1.Namespace("web", { metadata: { name: "web" } }, { provider });
const greeting = new k8s.core.v1.ConfigMap("greeting", { metadata: { namespace: ns.metadata.name }, data: { message: "hello from sealant" } }, { provider });
const web = new k8s.apps.v1.Deployment(
  "web",
  {
    metadata: { namespace: ns.metadata.name },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: {
          containers: [
            {
              name: "web",
              // Served from the cluster's own registry: the hello image carries it.
              image: "docker.io/library/busybox:1.35",
              // echo ends the line the message leaves open: the container runtime logs whole lines only.
              command: ["sh", "-c", "cat /greeting/message; echo; exec sleep 86400"],
              volumeMounts: [{ name: "greeting", mountPath: "/greeting" }],
            },
          ],
          volumes: [{ name: "greeting", configMap: { name: greeting.metadata.name } }],
        },
      },
    },
  },
  { provider },
);

/** The kubeconfig the provider uses (a secret): `pulumi stack output --show-secrets kubeconfig`. */
export const kubeconfig = cluster.kubernetes.kubeconfig;
export const clusterIdentifier = cluster.kubernetes.clusterIdentifier;
export const deployment = web.metadata.name;
