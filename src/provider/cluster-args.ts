import type * as pulumi from "@pulumi/pulumi";

/*
 * The arguments are hand-written interfaces, as Pulumi's own packages (@pulumi/aws's
 * `XxxArgs`) write theirs: `pulumi.Input` at every depth — a leaf is `Input<string>`, a list
 * `Input<Input<T>[]>`, a map `Input<Record<string, Input<T>>>`, an object `Input<XxxArgs>` — so a
 * `cfg.requireSecret(...)` or another resource's output fits anywhere a value does. Not a
 * recursive mapped type over the engine's zod types: that would put `UnwrappedObject<...>`-like
 * expansions into every hover and error message, drop the field docs, and follow the schema's
 * internal shape (transforms, defaults) rather than what a user writes. What the provider
 * receives is plain data (Pulumi resolves nested inputs first): `ClusterInputs` in
 * ./impl/cluster-inputs, which is the zod schema's input type. test/fixtures/types checks that
 * each interface here, unwrapped, is exactly that schema's input (same fields, same types).
 */

/** SSH settings: the cluster's, or one host's over them (a field set there wins, as in sealer). */
export interface SshArgs {
  /** The login user. @default "root" (for a host: the cluster's) */
  readonly user?: pulumi.Input<string>;
  /** The SSH port. @default 22 (for a host: the cluster's) */
  readonly port?: pulumi.Input<number | string>;
  /** Login password (secret). */
  readonly password?: pulumi.Input<string>;
  /** Private key content, PEM or OpenSSH (secret). Give this or `privateKeyPath`. */
  readonly privateKey?: pulumi.Input<string>;
  /** Path of a private key file on the machine running Pulumi. */
  readonly privateKeyPath?: pulumi.Input<string>;
  /** Passphrase of the private key (secret). */
  readonly passphrase?: pulumi.Input<string>;
  /** Use an SSH agent: true for $SSH_AUTH_SOCK, or the agent socket's path. */
  readonly agent?: pulumi.Input<boolean | string>;
  /** A jump host every connection goes through. */
  readonly bastion?: pulumi.Input<BastionArgs>;
  /**
   * strict: only keys from `fingerprints`/`knownHosts`; accept-new: a host's first key is
   * recorded and must not change; insecure: no check.
   * @default "strict" (for a host: the cluster's)
   */
  readonly hostKeyPolicy?: pulumi.Input<"strict" | "accept-new" | "insecure">;
  /** A known_hosts file to verify host keys against. */
  readonly knownHosts?: pulumi.Input<string>;
  /** Expected host key fingerprints by host IP (`SHA256:...`, as `ssh-keygen -lf` prints). */
  readonly fingerprints?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/** A jump host (secret parts: password, privateKey, passphrase). */
export interface BastionArgs {
  /** IP or host name of the bastion. */
  readonly host: pulumi.Input<string>;
  /** @default 22 */
  readonly port?: pulumi.Input<number | string>;
  /** @default the cluster's ssh user */
  readonly user?: pulumi.Input<string>;
  /** Login password (secret). */
  readonly password?: pulumi.Input<string>;
  /** Private key content, PEM or OpenSSH (secret). */
  readonly privateKey?: pulumi.Input<string>;
  /** Path of a private key file. */
  readonly privateKeyPath?: pulumi.Input<string>;
  /** Passphrase of the private key (secret). */
  readonly passphrase?: pulumi.Input<string>;
  /** Use an SSH agent: true for $SSH_AUTH_SOCK, or the agent socket's path. */
  readonly agent?: pulumi.Input<boolean | string>;
  /** Expected host key fingerprint of the bastion (`SHA256:...`). */
  readonly fingerprint?: pulumi.Input<string>;
}

/** Env: a map of NAME to value, or sealer's `KEY=VALUE` list (a later key wins). */
export type EnvArgs = Record<string, pulumi.Input<string>> | pulumi.Input<string>[];

/** Settings of a host besides its roles, over the cluster's env and ssh. */
export interface HostSettingsArgs {
  /** Over the cluster's env for this host. */
  readonly env?: pulumi.Input<EnvArgs>;
  /** Kubernetes node labels. */
  readonly labels?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Node taints, `key=value:Effect`. */
  readonly taints?: pulumi.Input<pulumi.Input<string>[]>;
  /** Over the cluster's ssh settings for this host; made secret like the cluster's. */
  readonly ssh?: pulumi.Input<SshArgs>;
}

/** One host of a Cluster (its IP is its key in `hosts`). */
export interface ClusterHostArgs extends HostSettingsArgs {
  /** master, node (or worker), registry, or custom roles such as `db`. */
  readonly roles: pulumi.Input<pulumi.Input<string>[]>;
}

/** The registry the cluster's container images are served from (made secret: it holds a password). */
export interface ClusterRegistryArgs {
  /** @default "sea.hub" (sealer's) */
  readonly domain?: pulumi.Input<string>;
  /** @default 5000 */
  readonly port?: pulumi.Input<number | string>;
  readonly username?: pulumi.Input<string>;
  /** Secret. */
  readonly password?: pulumi.Input<string>;
  /** Run the local registry on every master (else on the first). @default true */
  readonly ha?: pulumi.Input<boolean>;
  /** Serve plain HTTP (no certificate). @default false */
  readonly insecure?: pulumi.Input<boolean>;
  /** An existing registry the image's container images are pushed to, instead of the local one (then the fields above are not used). */
  readonly external?: pulumi.Input<ExternalRegistryArgs>;
  /** Upstream registries the local registry caches for the hosts (images the cluster image does not carry), kept when the upstream is gone. */
  readonly pullThrough?: pulumi.Input<pulumi.Input<PullThroughUpstreamArgs>[]>;
  /** More names and IPs for the local registry's certificate. */
  readonly subjectAltNames?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * The registries every host's container runtime pulls from (mirrors, logins, CAs, plain HTTP,
   * proxy), in k3s's registries.yaml shape — the document, or the path of a registries file (read
   * when the hosts are configured, relative to the program's directory), the one builds read.
   */
  readonly registries?: pulumi.Input<string | RegistriesArgs>;
}

/** k3s's registries.yaml: per registry, where its images are fetched from and how it is reached. */
export interface RegistriesArgs {
  /** Registry (host[:port], or "*" for every registry) → mirror endpoints, tried in order. */
  readonly mirrors?: pulumi.Input<Record<string, pulumi.Input<RegistryMirrorArgs>>>;
  /** Host[:port] (a registry or a mirror endpoint, "*" for every one) → how to reach it. */
  readonly configs?: pulumi.Input<Record<string, pulumi.Input<RegistryHostConfigArgs>>>;
}

export interface RegistryMirrorArgs {
  /** `https://host[:port]` or `http://host[:port]`, no path. */
  readonly endpoint: pulumi.Input<pulumi.Input<string>[]>;
}

export interface RegistryHostConfigArgs {
  /** Secret (the whole `registry` input is made secret): username and password, k3s's base64 `auth`, or a registry `token` (builds only: containerd's CRI takes none). */
  readonly auth?: pulumi.Input<{
    readonly username?: pulumi.Input<string>;
    readonly password?: pulumi.Input<string>;
    readonly auth?: pulumi.Input<string>;
    readonly token?: pulumi.Input<string>;
  }>;
  readonly tls?: pulumi.Input<{
    /** A CA file (relative to the program's directory). */
    readonly ca_file?: pulumi.Input<string>;
    /** A CA as PEM text. */
    readonly ca?: pulumi.Input<string>;
    readonly insecure_skip_verify?: pulumi.Input<boolean>;
  }>;
  readonly plain_http?: pulumi.Input<boolean>;
  /** An http:// proxy URL, or "direct". The hosts' containerd takes one proxy for every registry. */
  readonly proxy?: pulumi.Input<string>;
}

/** One upstream the cluster's registry caches: a registry of its own on each registry server, in distribution's proxy mode. */
export interface PullThroughUpstreamArgs {
  /** The registry domain images are named by: `docker.io`, `quay.io`, `registry.example.com:5000`. */
  readonly domain: pulumi.Input<string>;
  /** Where the cache fetches from. @default https://registry-1.docker.io for docker.io, else https://<domain> */
  readonly url?: pulumi.Input<string>;
  /** The upstream's login (token-auth registries: Docker Hub, quay.io, Harbor). */
  readonly username?: pulumi.Input<string>;
  /** Secret (the whole `registry` input is made secret). */
  readonly password?: pulumi.Input<string>;
  /** The cache's port on every registry server. @default the registry's port + 10 + the upstream's index */
  readonly port?: pulumi.Input<number | string>;
  /** What hosts try after the caches: nothing, or the upstream itself. @default "none" */
  readonly fallback?: pulumi.Input<"none" | "upstream">;
}

/**
 * A registry the cluster uses instead of running its own (Harbor, a cloud registry): the image's
 * container images are pushed there, and every host's container runtime pulls them from it,
 * under their original names, trusting `ca` and logging in with username/password.
 */
export interface ExternalRegistryArgs {
  /** Its host name (or IPv4 address), as the hosts and the machine running Pulumi reach it. */
  readonly domain: pulumi.Input<string>;
  /** @default 443 (the domain alone is the registry's name) */
  readonly port?: pulumi.Input<number | string>;
  /** Repositories go under this path (a Harbor project: `sealant` gives `sealant/docker.io/library/nginx`). */
  readonly namespace?: pulumi.Input<string>;
  readonly username?: pulumi.Input<string>;
  /** Secret (the whole `registry` input is made secret). */
  readonly password?: pulumi.Input<string>;
  /** The CA its certificate is signed by, when not a public one: PEM text or a file path. */
  readonly ca?: pulumi.Input<string>;
}

/**
 * A script run at a lifecycle phase (sealer's Plugin), or the user's own module (`type:
 * "MODULE"`, see `definePlugin` in `sealant/plugin`). A MODULE is resolved from the program's
 * directory when the Cluster is constructed (an npm package in its node_modules, or a path such
 * as ./plugins/notify.ts); its package version and a digest of its files are in the resource's
 * inputs (`pluginModules`), so upgrading a plugin is a visible change in `pulumi preview --diff`.
 */
export interface PluginArgs {
  readonly name: pulumi.Input<string>;
  /** @default "SHELL" */
  readonly type?: pulumi.Input<"SHELL" | "HOSTNAME" | "LABEL" | "TAINT" | "ETCD" | "CLUSTERCHECK" | "MODULE">;
  /**
   * Phases, as a list or sealer's `a|b`: on the scope's hosts pre-init-host, post-init-host,
   * pre-clean-host, post-clean-host, upgrade-host; on the first master pre-install,
   * post-install, pre-uninstall, post-uninstall, pre-scaleup, post-scaleup, upgrade, rollback.
   * Required but for a MODULE, whose default is the phases the module names (a MODULE may only narrow them).
   */
  readonly action?: pulumi.Input<string> | pulumi.Input<pulumi.Input<string>[]>;
  /** Roles or IPs a host phase runs on, as a list or sealer's `a|b`. @default every host (a MODULE's: the module's scope) */
  readonly scope?: pulumi.Input<string> | pulumi.Input<pulumi.Input<string>[]>;
  /** The script (not a MODULE's); a trailing newline is dropped, as sealer does. */
  readonly data?: pulumi.Input<string>;
  /** MODULE: an npm package name (`@acme/sealant-cmdb`) or a path (`./plugins/notify.ts`), resolved from the program's directory. */
  readonly module?: pulumi.Input<string>;
  /**
   * MODULE: any JSON value, handed to the plugin as `ctx.config`; outputs and secrets at any
   * depth (a secret stays secret in the state and the preview).
   */
  readonly config?: unknown;
  /** MODULE: longest one step may run, seconds or a duration ("90s", "5m"). @default the module's, else 10m */
  readonly timeout?: pulumi.Input<number | string>;
  /** MODULE: the plugin sees the spec's secrets (passwords, keys) instead of "[redacted]". @default false */
  readonly secrets?: pulumi.Input<boolean>;
}

/** A file in the image's rootfs overwritten or merged with data (sealer's Config). */
export interface ConfigArgs {
  readonly name: pulumi.Input<string>;
  /** Relative to the rootfs (or to application/apps/<appName>/ with appName). */
  readonly path: pulumi.Input<string>;
  readonly data: pulumi.Input<string>;
  /** @default "overwrite" */
  readonly strategy?: pulumi.Input<"overwrite" | "merge">;
  /** sealer's pre-processors, in order, as a list or `value|toJson|toBase64|toSecret`. */
  readonly process?: pulumi.Input<string> | pulumi.Input<pulumi.Input<string>[]>;
  readonly appName?: pulumi.Input<string>;
}

/** What runs after the cluster is up (sealer's LAUNCH/CMDS overrides and Application). */
export interface AppsArgs {
  /** App names to launch instead of the image's LAUNCH. */
  readonly launch?: pulumi.Input<pulumi.Input<string>[]>;
  /** Commands to run instead of the image's CMDS/LAUNCH (exclusive with launch). */
  readonly cmds?: pulumi.Input<pulumi.Input<string>[]>;
  /** Values for the image's launch arguments (sealer's `cmd_args`). */
  readonly args?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Per-app overrides. */
  readonly configs?: pulumi.Input<pulumi.Input<AppConfigArgs>[]>;
}

/** Per-app overrides (sealer's Application `configs`). */
export interface AppConfigArgs {
  readonly name: pulumi.Input<string>;
  /** Only this app's files and commands see it, over the cluster env. */
  readonly env?: pulumi.Input<EnvArgs>;
  readonly launch?: pulumi.Input<{ readonly cmds: pulumi.Input<pulumi.Input<string>[]> }>;
  readonly files?: pulumi.Input<pulumi.Input<AppFileArgs>[]>;
}

/** A file of an app overwritten, merged or rendered. */
export interface AppFileArgs {
  readonly path: pulumi.Input<string>;
  /** @default "overwrite" */
  readonly strategy?: pulumi.Input<"overwrite" | "merge" | "render">;
  readonly data: pulumi.Input<string>;
}

/** An /etc/hosts entry on every host. */
export interface HostAliasArgs {
  readonly ip: pulumi.Input<string>;
  readonly hostnames: pulumi.Input<pulumi.Input<string>[]>;
}

/** How a new image rolls out. */
export interface UpgradeArgs {
  /** Workers upgraded at once (masters always one at a time). @default 1 */
  readonly maxUnavailable?: pulumi.Input<number>;
  /** @default "rolling" */
  readonly strategy?: pulumi.Input<"rolling" | "all-at-once">;
  /** Images of the minors between the running Kubernetes version and the image's: a change of several minors is applied one minor at a time through them. */
  readonly through?: pulumi.Input<pulumi.Input<string>[]>;
}

/** How hosts get the image's layers. */
export interface DistributionArgs {
  /**
   * "direct": this machine sends every host the layers it lacks; "relay": it sends each layer to
   * one host and hosts pass layers on to each other over their own network, each while it still
   * arrives; "auto": relay when the image goes to 3 hosts or more at once, else direct (a host
   * relaying cannot reach, or whose sshd reads no ~/.ssh/authorized_keys, gets it directly).
   * The plan (`pulumi preview --diff`) says where each host gets it from.
   * @default "auto"
   */
  readonly mode?: pulumi.Input<"auto" | "direct" | "relay">;
  /** relay (and auto when it relays): how many hosts each host passes the layers on to. @default 3 */
  readonly fanout?: pulumi.Input<number>;
}

/** Time limits: seconds, or durations such as "90s", "5m", "1h". */
export interface TimeoutsArgs {
  /** SSH connect, per host. @default 30 */
  readonly connect?: pulumi.Input<number | string>;
  /** One remote command. @default 600 */
  readonly command?: pulumi.Input<number | string>;
  /** A whole create/update. @default 3600 */
  readonly apply?: pulumi.Input<number | string>;
}

/** The `Cluster` resource's arguments: the cluster spec, hosts keyed by IP. */
export interface ClusterArgs {
  /** The cluster's name on the hosts (paths, labels): a DNS label. Changing it replaces the cluster. */
  readonly name: pulumi.Input<string>;
  /** The cluster image, ideally pinned: `registry/repo:tag@sha256:...` (e.g. an ImageBuild's `repoDigest`). */
  readonly image: pulumi.Input<string>;
  /**
   * The hosts by IP (a host is its address, never a position in a list): roles and settings.
   * Adding a host joins it, removing one removes it from the cluster.
   */
  readonly hosts: pulumi.Input<Record<string, pulumi.Input<ClusterHostArgs>>>;
  /** How to log in to the hosts; made secret. @default user "root", port 22, host-key policy "strict" */
  readonly ssh?: pulumi.Input<SshArgs>;
  /** Over the image's env; a host's env over this. @default the image's env */
  readonly env?: pulumi.Input<EnvArgs>;
  /** The registry the cluster's container images are served from; made secret. @default a local registry `sea.hub:5000` on every master */
  readonly registry?: pulumi.Input<ClusterRegistryArgs>;
  /** Lifecycle scripts (sealer's plugins) and the user's own plugin modules (`type: "MODULE"`). @default none */
  readonly plugins?: pulumi.Input<pulumi.Input<PluginArgs>[]>;
  /** Files of the image's rootfs overwritten or merged (sealer's configs). @default none */
  readonly configs?: pulumi.Input<pulumi.Input<ConfigArgs>[]>;
  /** What to launch after the cluster is up. @default the image's LAUNCH/CMDS */
  readonly apps?: pulumi.Input<AppsArgs>;
  /**
   * Runtime overrides, free-form (e.g. `kubeadm`: kubeadm documents, `containerRuntime`);
   * values may be outputs at any depth. Changing the kubeadm networking ranges replaces the cluster.
   * @default none
   */
  readonly runtime?: pulumi.Input<Record<string, unknown>>;
  /** Extra /etc/hosts entries on every host. @default none */
  readonly hostAliases?: pulumi.Input<pulumi.Input<HostAliasArgs>[]>;
  /** How a new image rolls out. @default rolling, one worker at a time (masters always one at a time) */
  readonly upgrade?: pulumi.Input<UpgradeArgs>;
  /** How hosts get the image's layers: straight from this machine, or relayed between the hosts. @default direct */
  readonly distribution?: pulumi.Input<DistributionArgs>;
  /** Connect, command and whole-apply time limits. @default connect 30s, command 600s, apply 3600s */
  readonly timeouts?: pulumi.Input<TimeoutsArgs>;
  /** Where the cluster's files live on each host. Changing it replaces the cluster. @default "/var/lib/sealant/<name>/" */
  readonly dataRoot?: pulumi.Input<string>;
  /** Hosts worked on at once. @default 16 */
  readonly parallelism?: pulumi.Input<number>;
  /** What `delete` does with hosts it cannot reach: "skip" them (the cloud host is gone), or "fail". @default "skip" */
  readonly unreachableOnDelete?: pulumi.Input<"skip" | "fail">;
  /**
   * What an update does with a host taken out of `hosts` that cannot be reached: "fail", or
   * "force" its removal (the cluster forgets it, e.g. its Kubernetes node and etcd member; its
   * files stay). @default "fail"
   */
  readonly unreachableOnRemove?: pulumi.Input<"fail" | "force">;
}

/** A host as the cluster records it. */
export interface ClusterNode {
  ip: string;
  roles: string[];
  /** Whether the host is a member of the cluster (false: reset or not joined yet). */
  member: boolean;
  hostname: string;
}

/** One control-plane certificate of one master, as last read (apply, refresh). */
export interface ClusterCertificate {
  /** The master's IP. */
  host: string;
  /** kubeadm's name: apiserver, apiserver-kubelet-client, etcd-server, admin.conf, ca, ... */
  name: string;
  /** When it expires (ISO time). */
  notAfter: string;
  /** Whole days it had left when read. */
  daysLeft: number;
  /** A CA (kubeadm's renewal keeps the CAs). */
  ca?: boolean;
}
