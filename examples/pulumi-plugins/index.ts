// An etcd cluster whose lifecycle runs the user's own TypeScript plugins (sealant's MODULE
// plugins): the inventory package (examples/sealant-plugin-inventory, a dependency in
// package.json) records every host's facts on it and the cluster's inventory on each master;
// the local module plugins/motd.ts writes each host's /etc/motd. The cluster image is built from
// examples/etcd, on `hosts` consecutive addresses from `firstHost`, as in examples/pulumi-etcd:
//
//   npm install                                               # links the plugin package into node_modules
//   pulumi config set firstHost 127.0.10.1
//   pulumi config set knownHosts /path/to/known_hosts
//   pulumi config set --secret sshPrivateKey -- "$(cat key)"  # and/or sshPassword
//   pulumi preview --diff    # pluginSteps: each plugin step, on which host, doing what (the plugin's describe())
//   pulumi up
//   pulumi config set hosts 4 && pulumi preview --diff        # the new host's plugin steps, then post-scaleup
//
// The Cluster resolves each plugin's module from this directory when the program runs (no SSH,
// no plugin code run by preview) and pins it in its `pluginModules` input: the package's version
// and a digest of its files. Upgrading the plugin package, or editing plugins/motd.ts, shows in
// `pulumi preview --diff` as a version or digest change, and `up` runs exactly what was previewed.
// A plugin's config may hold outputs and secrets (cfg.requireSecret) at any depth: they stay
// secret in the state, and the plan shows them as [secret].
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Cluster, ImageBuild } from "sealant";

const config = new pulumi.Config();
const count = config.getNumber("hosts") ?? 3;
const first = config.require("firstHost").split(".").map(Number);
// The examples/etcd build context (a copy of this program elsewhere sets it).
const etcdContext = config.get("etcdContext") ?? path.join(__dirname, "..", "etcd");

/** `count` IPv4 addresses counting up from `first` in the last octet. */
const ips = Array.from({ length: count }, (_, i) => [...first.slice(0, 3), first[3]! + i].join("."));

const etcdImage = new ImageBuild("etcd-image", {
  context: etcdContext,
  tag: `example/etcd-plugins:${pulumi.getStack()}`,
});

const cluster = new Cluster("etcd", {
  name: `etcd-plugins-${pulumi.getStack()}`,
  image: etcdImage.repoDigest,
  hosts: Object.fromEntries(ips.map((ip) => [ip, { roles: ["master"] }])),
  ssh: {
    user: "root",
    knownHosts: config.require("knownHosts"),
    password: config.getSecret("sshPassword"),
    privateKey: config.getSecret("sshPrivateKey"),
  },
  plugins: [
    {
      // An npm package in node_modules: its phases (post-init-host, post-install, post-scaleup, pre-clean-host) are its own.
      name: "inventory",
      type: "MODULE",
      module: "@example/sealant-plugin-inventory",
      config: { labels: { team: config.get("team") ?? "platform", stack: pulumi.getStack() } },
    },
    {
      // A module of this program's, by its path.
      name: "motd",
      type: "MODULE",
      module: "./plugins/motd.ts",
      config: { contact: pulumi.interpolate`${config.get("team") ?? "platform"} (stack ${pulumi.getStack()})` },
      timeout: "1m",
    },
  ],
});

export const nodes = cluster.nodes;
/** Each plugin's module as pinned: version, digest, file. */
export const pluginModules = cluster.pluginModules;
export const lastPlan = cluster.lastPlan;
