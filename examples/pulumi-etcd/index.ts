// An etcd cluster as Pulumi resources: the cluster image is built from examples/etcd (with the
// heartbeat interval as a build argument, so changing it is a new image and a rolling upgrade),
// and runs on `hosts` consecutive addresses from `firstHost`. SSH credentials are secret config:
//
//   pulumi config set firstHost 127.0.10.1
//   pulumi config set knownHosts /path/to/known_hosts        # the hosts' keys, verified
//   pulumi config set --secret sshPassword ...                # and/or:
//   pulumi config set --secret sshPrivateKey -- "$(cat key)"
//   pulumi up
//   pulumi config set hosts 5 && pulumi preview --diff          # shows: join <the two new hosts>
//
// Outside this repository: copy this directory (and examples/etcd beside it, or set etcdContext),
// then `npm install sealant @pulumi/pulumi typescript @types/node`.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Cluster, ImageBuild } from "sealant";

const config = new pulumi.Config();
const count = config.getNumber("hosts") ?? 3;
const heartbeat = config.get("heartbeat") ?? "100";
const first = config.require("firstHost").split(".").map(Number);
// The examples/etcd build context (a copy of this program elsewhere sets it).
const etcdContext = config.get("etcdContext") ?? path.join(__dirname, "..", "etcd");
const registryPassword = config.getSecret("registryPassword");

/** `count` IPv4 addresses counting up from `first` in the last octet. */
const ips = Array.from({ length: count }, (_, i) => [...first.slice(0, 3), first[3]! + i].join("."));

/** The examples/etcd Kubefile with the heartbeat interval as a build argument. */
function kubefile(): string {
  const base = readFileSync(path.join(etcdContext, "Kubefile"), "utf8");
  return `${base}ARG HEARTBEAT=100
RUN sed -i "s/^ETCD_HEARTBEAT_INTERVAL=.*/ETCD_HEARTBEAT_INTERVAL=\${HEARTBEAT}/" etc/etcd.env
`;
}

const etcdImage = new ImageBuild("etcd-image", {
  context: etcdContext,
  kubefile: { text: kubefile() },
  tag: `example/etcd-pulumi:${pulumi.getStack()}`,
  buildArgs: { HEARTBEAT: heartbeat },
});

const cluster = new Cluster("etcd", {
  name: `etcd-${pulumi.getStack()}`,
  image: etcdImage.repoDigest,
  hosts: Object.fromEntries(ips.map((ip) => [ip, { roles: ["master"] }])),
  ssh: {
    user: "root",
    knownHosts: config.require("knownHosts"),
    // Secret config: either may be unset.
    password: config.getSecret("sshPassword"),
    privateKey: config.getSecret("sshPrivateKey"),
  },
  // Not used by this image (it pulls no container images); shown as the place for the cluster
  // registry's credentials, which stay secret like the SSH ones.
  registry: registryPassword === undefined ? undefined : { username: "sealant", password: registryPassword },
});

/** The image the cluster runs, ref@digest. */
export const image = etcdImage.repoDigest;
export const nodes = cluster.nodes;
export const endpoints = ips.map((ip) => `http://${ip}:2379`);
export const endpoint = cluster.endpoint;
export const lastPlan = cluster.lastPlan;
