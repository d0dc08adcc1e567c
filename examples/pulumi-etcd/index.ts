"use strict";
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
const path = require("path");
const pulumi = require("@pulumi/pulumi");
const { Cluster, ImageBuild } = require("sealant");

const config = new pulumi.Config();
const count = config.getNumber("hosts") ?? 3;
const heartbeat = config.get("heartbeat") ?? "100";
const first = config.require("firstHost").split(".").map(Number);
// The examples/etcd build context (a copy of this program elsewhere sets it).
const etcdContext = config.get("etcdContext") ?? path.join(__dirname, "..", "etcd");

/** `count` IPv4 addresses counting up from `first` in the last octet. */
const ips = Array.from({ length: count }, (_, i) => [...first.slice(0, 3), first[3] + i].join("."));

const image = new ImageBuild("etcd-image", {
  context: etcdContext,
  kubefile: { text: kubefile() },
  tag: `example/etcd-pulumi:${pulumi.getStack()}`,
  buildArgs: { HEARTBEAT: heartbeat },
});

const cluster = new Cluster("etcd", {
  name: `etcd-${pulumi.getStack()}`,
  image: image.repoDigest,
  hosts: Object.fromEntries(ips.map((ip) => [ip, { roles: ["master"] }])),
  ssh: {
    user: "root",
    knownHosts: config.require("knownHosts"),
    ...optionalSecret("password", config.getSecret("sshPassword")),
    ...optionalSecret("privateKey", config.getSecret("sshPrivateKey")),
  },
  // Not used by this image (it pulls no container images); shown as the place for the cluster
  // registry's credentials, which stay secret like the SSH ones.
  ...(config.getSecret("registryPassword") ? { registry: { username: "sealant", password: config.getSecret("registryPassword") } } : {}),
});

/** The examples/etcd Kubefile with the heartbeat interval as a build argument. */
function kubefile() {
  const base = require("fs").readFileSync(path.join(etcdContext, "Kubefile"), "utf8");
  return `${base}ARG HEARTBEAT=100
RUN sed -i "s/^ETCD_HEARTBEAT_INTERVAL=.*/ETCD_HEARTBEAT_INTERVAL=\${HEARTBEAT}/" etc/etcd.env
`;
}

function optionalSecret(key, value) {
  return value === undefined ? {} : { [key]: value };
}

exports.image = image.repoDigest;
exports.nodes = cluster.nodes;
exports.endpoints = ips.map((ip) => `http://${ip}:2379`);
exports.endpoint = cluster.endpoint;
exports.lastPlan = cluster.lastPlan;
