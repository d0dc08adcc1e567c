import { z } from "zod";
import { InvalidReferenceError, parseReference } from "../../image/reference";
import { parseEnvList, parseEnvMap, type Env } from "./env";
import { distributionSchema } from "./distribution";
import { externalRegistrySchema } from "./external-registry";
import { loginGivenTwice, registriesSchema } from "./registries";
import { pullThroughSchema } from "./upstreams";
import { checkedString, numberOrString, portSchema } from "./zod-values";
import { parsePluginActions, parsePluginScope, pluginDataProblems, pluginFieldProblems, pluginModuleProblem, PLUGIN_TYPES } from "./plugins";
import {
  appNameProblem,
  canonicalIp,
  dnsLabelProblem,
  fingerprintProblem,
  formatTaint,
  hasControlChars,
  hostDirProblem,
  hostnameProblem,
  hostOrIpProblem,
  ipProblem,
  oneLineSecretProblem,
  quote,
  registryUserProblem,
  subjectAltNameProblem,
  labelValueProblem,
  normaliseRole,
  parseDuration,
  parseTaint,
  qualifiedNameProblem,
  roleProblem,
  rootfsPathProblem,
} from "./validators";

/*
 * sealant's cluster spec: the `Cluster` resource's inputs, and `spec` of a sealant Clusterfile
 * (`apiVersion: sealant.io/v1, kind: Cluster`). Every object is strict: an unknown field is an
 * error with a "did you mean", never silently ignored. Defaults are filled in, so the parsed
 * `ClusterSpec` is complete and normalised (IPs canonical, ports numbers, env a map, durations
 * seconds, roles `worker` → `node`).
 */

const port = portSchema;
const duration = numberOrString<number>(parseDuration);
const ip = checkedString(ipProblem).transform(canonicalIp);
const nonEmpty = z.string().min(1);
/** A name shown in messages and step ids (plugins, configs, apps, users): one line. */
const oneLineName = nonEmpty.superRefine((v, ctx) => {
  if (hasControlChars(v)) ctx.addIssue({ code: "custom", message: `${quote(v)} contains a control character (a line break, a tab...)` });
});
const fingerprint = checkedString(fingerprintProblem);
const hostDir = checkedString(hostDirProblem);
const hostname = checkedString(hostnameProblem);
const hostOrIp = checkedString(hostOrIpProblem);
/** A secret that must be one line; its value never appears in a message. */
const oneLineSecret = z.string().superRefine((v, ctx) => {
  const problem = oneLineSecretProblem(v);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});

/** An image reference; a reference pinned by digest (ref@sha256:...) is what a cluster should run. */
const imageRef = checkedString((v) => {
  if (hasControlChars(v)) return `${quote(v)} is not an image reference (it holds a control character)`;
  try {
    parseReference(v);
    return undefined;
  } catch (err) {
    return err instanceof InvalidReferenceError ? err.message : String(err);
  }
});

/** A private key's content (PEM or OpenSSH); never printed. */
const privateKey = z.string().superRefine((v, ctx) => {
  if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(v)) {
    ctx.addIssue({ code: "custom", message: "is not a PEM or OpenSSH private key (expected a -----BEGIN ... PRIVATE KEY----- block)" });
  }
});

/** Env as a map, or as sealer's `KEY=VALUE` list (a later key wins). */
export const envSchema = z.union([z.record(z.string(), z.string()), z.array(z.string())]).transform((v, ctx): Env => {
  const { env, problems } = Array.isArray(v) ? parseEnvList(v) : parseEnvMap(v);
  for (const p of problems) ctx.addIssue({ code: "custom", message: p.message, path: [p.at] });
  return env;
});

/** Kubernetes node labels: qualified-name keys, label values. */
export const labelsSchema = z.record(z.string(), z.string()).superRefine((labels, ctx) => {
  for (const [key, value] of Object.entries(labels)) {
    const problem = qualifiedNameProblem(key, "label") ?? labelValueProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem, path: [key] });
  }
});

/** `key=value:Effect` (canonical form kept). */
export const taintSchema = z.string().transform((v, ctx) => {
  const t = parseTaint(v);
  if (typeof t === "string") {
    ctx.addIssue({ code: "custom", message: t });
    return z.NEVER;
  }
  return formatTaint(t);
});

export const roleSchema = checkedString(roleProblem).transform(normaliseRole);

export const HOST_KEY_POLICIES = ["strict", "accept-new", "insecure"] as const;
export type HostKeyPolicy = (typeof HOST_KEY_POLICIES)[number];

const credentialFields = {
  /** Login password (secret). */
  password: z.string().optional(),
  /** Private key content, PEM or OpenSSH (secret). */
  privateKey: privateKey.optional(),
  /** Path of a private key file; `loadClusterfile` reads it (relative to the Clusterfile) into `privateKey`. */
  privateKeyPath: nonEmpty.optional(),
  /** Passphrase of the private key (secret). */
  passphrase: z.string().optional(),
  /** Use an SSH agent: true for $SSH_AUTH_SOCK, or the agent socket's path. */
  agent: z.union([z.boolean(), nonEmpty]).optional(),
};

function oneKeySource(v: { privateKey?: string; privateKeyPath?: string }, ctx: z.RefinementCtx): void {
  if (v.privateKey !== undefined && v.privateKeyPath !== undefined) {
    ctx.addIssue({ code: "custom", message: "give privateKey (the key) or privateKeyPath (a file), not both", path: ["privateKeyPath"] });
  }
}

/** A jump host every connection goes through. */
export const bastionSchema = z
  .strictObject({
    /** IP or host name of the bastion. */
    host: hostOrIp,
    /** @default 22 */
    port: port.default(22),
    /** @default the cluster's ssh user */
    user: oneLineName.optional(),
    ...credentialFields,
    /** Expected host key fingerprint of the bastion (`SHA256:...`). */
    fingerprint: fingerprint.optional(),
  })
  .superRefine(oneKeySource);

const sshFields = {
  user: oneLineName.optional(),
  port: port.optional(),
  ...credentialFields,
  bastion: bastionSchema.optional(),
  /**
   * strict: only keys from `fingerprints`/`knownHosts`; accept-new: a host's first key is
   * recorded and must not change; insecure: no check.
   */
  hostKeyPolicy: z.enum(HOST_KEY_POLICIES).optional(),
  /** A known_hosts file to verify host keys against. */
  knownHosts: nonEmpty.optional(),
  /** Expected host key fingerprints by host IP (`SHA256:...`, as `ssh-keygen -lf` prints). */
  fingerprints: z.record(z.string(), fingerprint).optional(),
};

/** SSH settings of one host group, over the cluster's (a field set here wins, as in sealer). */
export const sshOverrideSchema = z.strictObject(sshFields).superRefine(oneKeySource);

/** The cluster's SSH settings. */
export const sshSchema = z
  .strictObject({
    ...sshFields,
    /** @default "root" */
    user: oneLineName.default("root"),
    /** @default 22 */
    port: port.default(22),
    /**
     * Strict by default: an unknown host key fails with the fingerprint to pin (or pass a
     * known_hosts file, or choose accept-new explicitly).
     * @default "strict"
     */
    hostKeyPolicy: z.enum(HOST_KEY_POLICIES).default("strict"),
  })
  .superRefine(oneKeySource);

/** Hosts that share roles and settings. A host (IP) belongs to exactly one group. */
export const hostGroupSchema = z.strictObject({
  /** IPv4 or IPv6 addresses (all hosts of a cluster in one family). */
  ips: z.array(ip).min(1),
  /** master, node (or worker), registry, or custom roles such as `db`. */
  roles: z
    .array(roleSchema)
    .min(1)
    .transform((roles) => [...new Set(roles)]),
  ssh: sshOverrideSchema.optional(),
  /** Over the cluster's env for these hosts. */
  env: envSchema.optional(),
  labels: labelsSchema.optional(),
  /** `key=value:Effect` */
  taints: z.array(taintSchema).optional(),
});

/** The registry the cluster's container images are served from. */
export const registrySchema = z
  .strictObject({
    /** A host name (an IPv4 address reads as one): it lands in every host's /etc/hosts, the certificate and containerd's config. @default "sea.hub" (sealer's) */
    domain: hostname.default("sea.hub"),
    /** @default 5000 */
    port: port.default(5000),
    /** Goes into the registry's htpasswd file. */
    username: nonEmpty.pipe(checkedString(registryUserProblem)).optional(),
    /** Secret; one line (it is fed to htpasswd on the registry hosts). */
    password: oneLineSecret.pipe(nonEmpty).optional(),
    /** Run the local registry on every master (else on the first). @default true */
    ha: z.boolean().default(true),
    /** Serve plain HTTP (no certificate). @default false */
    insecure: z.boolean().default(false),
    /** An existing registry the image's container images are pushed to, instead of the local one (then the fields above are not used). */
    external: externalRegistrySchema.optional(),
    /** Upstream registries the local registry caches for the hosts (images the cluster image does not carry), fetched once and kept when the upstream is gone. */
    pullThrough: pullThroughSchema.optional(),
    /** More names and IPs for the local registry's certificate. */
    subjectAltNames: z.array(checkedString(subjectAltNameProblem)).optional(),
    /** The hosts' registries (mirrors, login, CA, plain HTTP, proxy): k3s's registries.yaml shape, or the path of such a file (see registries.ts). */
    registries: registriesSchema.optional(),
  })
  .superRefine(loginGivenTwice);

/** A script run at a lifecycle phase (sealer's Plugin), or the user's own module (MODULE, see plugins/api.ts). */
export const pluginSchema = z
  .strictObject({
    name: oneLineName,
    /** @default "SHELL" */
    type: z.enum(PLUGIN_TYPES).default("SHELL"),
    /** Phases, as a list or sealer's `a|b`. A MODULE's default: the phases the module names. */
    action: z
      .union([nonEmpty, z.array(nonEmpty)])
      .transform((v, ctx) => {
        const { actions, problems } = parsePluginActions(v);
        for (const p of problems) ctx.addIssue({ code: "custom", message: p });
        return actions;
      })
      .optional(),
    /** Roles or IPs a host phase runs on. @default every host (a MODULE's: the module's scope) */
    scope: z
      .union([z.string(), z.array(nonEmpty)])
      .transform((v, ctx) => {
        const { scope, problems } = parsePluginScope(v);
        for (const p of problems) ctx.addIssue({ code: "custom", message: p });
        return scope;
      })
      .optional(),
    /** The script; a trailing newline is dropped, as sealer does. Not used by a MODULE. */
    data: z
      .string()
      .transform((d) => d.replace(/\n$/, ""))
      .optional(),
    /** MODULE: an npm package name or a path (`./plugins/notify.ts`) from the Clusterfile's directory. */
    module: checkedString(pluginModuleProblem).optional(),
    /** MODULE: handed to the plugin as `ctx.config`. */
    config: z.unknown().optional(),
    /** MODULE: longest one step may run (seconds or "5m"). @default the module's, else 10m */
    timeout: duration.optional(),
    /** MODULE: the plugin sees the spec's secrets (passwords, keys) instead of "***". @default false */
    secrets: z.boolean().default(false),
  })
  .superRefine((p, ctx) => {
    for (const message of pluginDataProblems(p.type, p.data ?? "")) ctx.addIssue({ code: "custom", message, path: ["data"] });
    for (const { path, message } of pluginFieldProblems(p)) ctx.addIssue({ code: "custom", message, path: [path] });
  })
  .transform((p) => ({ ...p, action: p.action ?? [], data: p.data ?? "" }));

export const CONFIG_STRATEGIES = ["overwrite", "merge"] as const;
export const CONFIG_PROCESSORS = ["value", "toJson", "toBase64", "toSecret"] as const;
export type ConfigProcessor = (typeof CONFIG_PROCESSORS)[number];

/** A file in the image's rootfs overwritten or merged with data (sealer's Config). */
export const configSchema = z.strictObject({
  name: oneLineName,
  /** Relative to the rootfs (or to application/apps/<appName>/ with appName). */
  path: checkedString(rootfsPathProblem),
  data: nonEmpty,
  /** @default "overwrite" */
  strategy: z.enum(CONFIG_STRATEGIES).default("overwrite"),
  /** sealer's pre-processors, in order (a list or `value|toJson|toBase64|toSecret`). */
  process: z
    .union([z.string(), z.array(z.string())])
    .transform((v, ctx) => {
      const words = (typeof v === "string" ? v.split("|") : v).map((w) => w.trim()).filter((w) => w !== "");
      const out: ConfigProcessor[] = [];
      for (const w of words) {
        if ((CONFIG_PROCESSORS as readonly string[]).includes(w)) out.push(w as ConfigProcessor);
        else ctx.addIssue({ code: "custom", message: `${quote(w)} is not a processor (expected ${CONFIG_PROCESSORS.join(", ")})` });
      }
      return out;
    })
    .optional(),
  appName: checkedString(appNameProblem).optional(),
});

export const APP_FILE_STRATEGIES = ["overwrite", "merge", "render"] as const;

/** Per-app overrides (sealer's Application `configs`). */
export const appConfigSchema = z.strictObject({
  name: oneLineName,
  /** Only this app's files and commands see it, over the cluster env. */
  env: envSchema.optional(),
  launch: z.strictObject({ cmds: z.array(nonEmpty).min(1) }).optional(),
  files: z
    .array(
      z.strictObject({
        path: checkedString(rootfsPathProblem),
        /** @default "overwrite" */
        strategy: z.enum(APP_FILE_STRATEGIES).default("overwrite"),
        data: nonEmpty,
      }),
    )
    .optional(),
});

/** What runs after the cluster is up (sealer's LAUNCH/CMDS overrides and Application). */
export const appsSchema = z
  .strictObject({
    /** App names to launch instead of the image's LAUNCH. */
    launch: z.array(oneLineName).optional(),
    /** Commands to run instead of the image's CMDS/LAUNCH (exclusive with launch). */
    cmds: z.array(nonEmpty).optional(),
    /** Values for the image's launch arguments (sealer's `cmd_args`). */
    args: z.record(z.string(), z.string()).optional(),
    configs: z.array(appConfigSchema).optional(),
  })
  .superRefine((v, ctx) => {
    if (v.launch !== undefined && v.cmds !== undefined) {
      ctx.addIssue({ code: "custom", message: "give launch (app names) or cmds (commands), not both", path: ["cmds"] });
    }
  });

export const UPGRADE_STRATEGIES = ["rolling", "all-at-once"] as const;

export const upgradeSchema = z.strictObject({
  /** Workers upgraded at once (masters always one at a time). @default 1 */
  maxUnavailable: z.number().int().min(1).default(1),
  /** @default "rolling" */
  strategy: z.enum(UPGRADE_STRATEGIES).default("rolling"),
  /** Images of the minors between the running version and the image's: several minors are applied one minor at a time through them (plan/upgrade-path.ts). */
  through: z.array(imageRef).optional(),
});

/** Seconds, or durations such as "90s", "5m", "1h". */
export const timeoutsSchema = z.strictObject({
  /** SSH connect, per host. @default 30 */
  connect: duration.default(30),
  /** One remote command. @default 600 */
  command: duration.default(600),
  /** A whole create/update. @default 3600 */
  apply: duration.default(3600),
});

/** `spec` of a sealant Clusterfile: everything but the name. */
export const clusterSpecBodyShape = {
  /** The cluster image, ideally pinned: `registry/repo:tag@sha256:...`. */
  image: imageRef,
  hosts: z.array(hostGroupSchema).min(1),
  ssh: sshSchema.prefault({}),
  /** Over the image's env; host env over this. */
  env: envSchema.prefault({}),
  registry: registrySchema.prefault({}),
  plugins: z.array(pluginSchema).default([]),
  configs: z.array(configSchema).default([]),
  apps: appsSchema.prefault({}),
  /** Runtime overrides, free-form (e.g. `kubeadm`: kubeadm documents, `containerRuntime`). */
  runtime: z.record(z.string(), z.unknown()).default({}),
  /** Extra /etc/hosts entries on every host. */
  hostAliases: z.array(z.strictObject({ ip, hostnames: z.array(hostname).min(1) })).default([]),
  upgrade: upgradeSchema.prefault({}),
  distribution: distributionSchema.prefault({}),
  timeouts: timeoutsSchema.prefault({}),
  /** Where the cluster's files live on each host. @default "/var/lib/sealant/<name>/" */
  dataRoot: hostDir.optional(),
  /** Hosts worked on at once. @default 16 */
  parallelism: z.number().int().min(1).max(1024).default(16),
};

/** The `Cluster` inputs: name + spec body. */
export const clusterSpecSchema = z
  .strictObject({
    /** A DNS label: it names paths and labels on the hosts. */
    name: checkedString(dnsLabelProblem),
    ...clusterSpecBodyShape,
  })
  .transform((v) => ({ ...v, dataRoot: v.dataRoot ?? defaultDataRoot(v.name) }));

export function defaultDataRoot(name: string): string {
  return `/var/lib/sealant/${name}/`;
}

/** What a user (or the Pulumi resource) gives. */
export type ClusterSpecInput = z.input<typeof clusterSpecSchema>;
/** The normalised, complete spec: defaults filled in, IPs canonical, env a map. */
export type ClusterSpec = z.output<typeof clusterSpecSchema>;
export type HostGroup = ClusterSpec["hosts"][number];
export type SshConfig = ClusterSpec["ssh"];
export type SshOverride = z.output<typeof sshOverrideSchema>;
export type Bastion = z.output<typeof bastionSchema>;
export type RegistryConfig = ClusterSpec["registry"];
export type { ExternalRegistryConfig } from "./external-registry";
export { externalRegistrySchema };
export type PluginSpec = z.output<typeof pluginSchema>;
export type ConfigSpec = z.output<typeof configSchema>;
export type AppsSpec = ClusterSpec["apps"];
export type AppConfig = z.output<typeof appConfigSchema>;
