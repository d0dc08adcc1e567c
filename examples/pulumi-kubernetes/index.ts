// A real Kubernetes cluster as Pulumi resources: a cluster image (sealant's Kubernetes base image
// or an application image built FROM it, pinned by digest) run onto hosts given by IP. The hosts
// are config, so adding a worker is `pulumi config set` + `pulumi up`, and `pulumi preview --diff`
// names the host that joins; a new image is a rolling upgrade; `pulumi destroy` resets every host.
//
//   pulumi config set image example/hello:v1.31.4@sha256:...
//   pulumi config set --path 'masters[0]' 10.231.1.11
//   pulumi config set --path 'workers[0]' 10.231.1.12
//   pulumi config set knownHosts /path/to/known_hosts          # the hosts' keys, verified
//   pulumi config set --secret sshPrivateKey -- "$(cat key)"
//   pulumi up
//   pulumi stack output --show-secrets kubeconfig > admin.conf && kubectl --kubeconfig admin.conf get nodes
//   pulumi config set --path 'workers[1]' 10.231.1.13 && pulumi preview --diff   # plan: "join 10.231.1.13 (node)"
import * as pulumi from "@pulumi/pulumi";
import { KubernetesCluster } from "sealant";

const config = new pulumi.Config();
const sshUser = config.get("sshUser") ?? "root";
// A known_hosts file: every host's key is verified (the Cluster's default host-key policy is strict).
const knownHosts = config.require("knownHosts");

const cluster = new KubernetesCluster("kubernetes", {
  // The cluster's name on the hosts (their paths and labels); changing it replaces the cluster.
  clusterName: config.get("clusterName") ?? `k8s-${pulumi.getStack()}`,
  image: config.require("image"),
  masters: config.requireObject<string[]>("masters"),
  workers: config.getObject<string[]>("workers") ?? [],
  // The key is a secret Output; it stays secret in the stack's state, and so does all of ssh.
  ssh: { user: sshUser, privateKey: config.requireSecret("sshPrivateKey"), knownHosts },
  // A removed worker's pods get a minute to move elsewhere before it is reset anyway.
  runtime: { drainTimeout: config.getNumber("drainTimeout") ?? 60 },
});

/** The admin kubeconfig (a secret: `pulumi stack output --show-secrets kubeconfig`). */
export const kubeconfig = cluster.kubeconfig;
/** The API server, https://<first master>:6443. */
export const endpoint = cluster.endpoint;
/** The hosts as the cluster records them: ip, roles, hostname, member. */
export const nodes = cluster.nodes;
/** What the last `pulumi up` did (join, remove, upgrade, ...), one line per change. */
export const lastPlan = cluster.cluster.lastPlan;
export const imageDigest = cluster.imageDigest;
