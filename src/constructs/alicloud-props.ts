import * as pulumi from "@pulumi/pulumi";
import { checkedProp, clusterNameProblem, imageProblem, InvalidPropsError, type KubernetesClusterProps } from "./kubernetes-cluster";

/**
 * How the hosts are reached over SSH (and so which of their IPs the cluster is keyed by).
 * - `bastion`: only a bastion instance gets a public IP; the cluster's hosts are keyed by
 *   their private IPs and reached through the bastion (`ssh.bastion`).
 * - `public`: every host gets a public IP and the cluster is keyed by the public IPs. ECS
 *   public IPs are NAT addresses, not on the host's interface: only for images whose services
 *   do not bind the host's IP (the etcd example does, so it needs `bastion` or `private`).
 * - `private`: no public IPs; keyed by private IPs — for running `pulumi up` inside the VPC
 *   (a VPN, Express Connect, or an ECS instance in it).
 */
export type AlicloudAccess = "bastion" | "public" | "private";
export const ALICLOUD_ACCESS: readonly AlicloudAccess[] = ["bastion", "public", "private"];

/** Host-key policies for cloud hosts; see the `Cluster` ssh settings. */
export type AlicloudHostKeyPolicy = "accept-new" | "strict" | "insecure";

/*
 * Props are `pulumi.Input` at every depth (a `tls.PrivateKey`'s `publicKeyOpenssh`, a
 * `random.RandomPassword`'s `result` or `cfg.requireSecret(...)` fit), validated when they are
 * created if known then, else when they resolve (the error then fails the deployment). Plain
 * data, as awsx's `Vpc` keeps its `cidrBlock` and subnet counts: what decides which resources
 * exist and the address plan the preview shows — `masterCount`, `workerCount`, `access`,
 * `vpcCidr`, `vswitchCidr` — and the cluster's identity, `clusterName`.
 */
export interface AlicloudClusterProps extends Pick<
  KubernetesClusterProps,
  | "image"
  | "clusterName"
  | "env"
  | "registry"
  | "plugins"
  | "configs"
  | "apps"
  | "runtime"
  | "hostAliases"
  | "upgrade"
  | "distribution"
  | "timeouts"
  | "dataRoot"
  | "parallelism"
  | "masterSettings"
  | "workerSettings"
> {
  /**
   * Control-plane instances (`${name}-master-0..N-1`), 1 to 10; an odd number keeps etcd's
   * quorum. Plain: it decides how many instances exist. @default 3
   */
  readonly masterCount?: number;
  /**
   * Worker instances (`${name}-worker-0..N-1`). Instances are named by index, so raising the
   * count adds instances at the end and the cluster joins exactly those; lowering it removes
   * the highest indices (the cluster removes the hosts before the instances are deleted).
   * Plain: it decides how many instances exist.
   * @default 0
   */
  readonly workerCount?: number;
  /** ECS instance type of the masters. @default "ecs.g7.large" (2 vCPU, 8 GiB) */
  readonly masterInstanceType?: pulumi.Input<string>;
  /** ECS instance type of the workers. @default masterInstanceType */
  readonly workerInstanceType?: pulumi.Input<string>;
  /** ECS instance type of the bastion (access "bastion"). @default masterInstanceType */
  readonly bastionInstanceType?: pulumi.Input<string>;
  /**
   * The zone of the VSwitch and instances.
   * @default the first zone of the region (`alicloud.getZones`) that can create a VSwitch and
   * offers the master (and worker, bastion) instance types, chosen once (a later change of the
   * region's zones does not move the cluster)
   */
  readonly zoneId?: pulumi.Input<string>;
  /**
   * The ECS image of every instance. Changing it re-initialises the instances' system disks.
   * @default the most recent public image matching `imageNameRegex` when each instance is
   * created (a newer image later goes to new instances only)
   */
  readonly imageId?: pulumi.Input<string>;
  /** Name regex of the public ECS image (`alicloud.ecs.getImages`, owners "system"). @default "^ubuntu_22_04_x64" */
  readonly imageNameRegex?: pulumi.Input<string>;
  /** System disk size of every host, GiB (20-500). @default 40 */
  readonly systemDiskSize?: pulumi.Input<number>;
  /** System disk category: cloud_essd, cloud_ssd, cloud_efficiency, ... @default "cloud_essd" */
  readonly systemDiskCategory?: pulumi.Input<string>;
  /** The VPC's IPv4 CIDR (mask /8 to /28). Plain, with `vswitchCidr`: the address plan. @default "10.0.0.0/16" */
  readonly vpcCidr?: string;
  /**
   * The VSwitch's IPv4 CIDR, inside `vpcCidr` (mask /16 to /27). Every instance gets a fixed
   * private address in it, by role and index, counted from the network address: the bastion
   * +5, masters +10 to +19, workers from +20 (`10.0.1.20`, `10.0.1.21`, ... by default). So a
   * host's address is known before it exists — `pulumi preview --diff` names the hosts a
   * scale-up joins — and never changes while the host lives. Plain, for that.
   * @default "10.0.1.0/24" (room for 233 workers)
   */
  readonly vswitchCidr?: string;
  /** How the hosts are reached; see {@link AlicloudAccess}. Plain: it decides whether a bastion exists. @default "bastion" */
  readonly access?: AlicloudAccess;
  /**
   * Outbound internet bandwidth, Mbit/s, of each instance with a public IP (every host for
   * access "public", the bastion for "bastion"); 1-100.
   * @default 10
   */
  readonly internetMaxBandwidthOut?: pulumi.Input<number>;
  /** "PayByTraffic" or "PayByBandwidth". @default "PayByTraffic" */
  readonly internetChargeType?: pulumi.Input<string>;
  /** "PostPaid" (pay-as-you-go) or "PrePaid" (subscription). @default "PostPaid" */
  readonly instanceChargeType?: pulumi.Input<string>;
  /** Who may reach SSH (port 22): an IPv4 CIDR. Narrow it to your own address. @default "0.0.0.0/0" */
  readonly allowedSshCidr?: pulumi.Input<string>;
  /** Who may reach the Kubernetes API (port 6443): an IPv4 CIDR. @default "0.0.0.0/0" */
  readonly allowedApiCidr?: pulumi.Input<string>;
  /**
   * The root password of every instance, and the SSH login (secret). Alibaba Cloud asks for
   * 8-30 characters with three of: upper case, lower case, digits, special characters.
   * Give `password` or `publicKey`, not both.
   */
  readonly password?: pulumi.Input<string>;
  /** An OpenSSH public key for an `ecs.EcsKeyPair` that every instance gets. Needs `privateKey` or `privateKeyPath`. */
  readonly publicKey?: pulumi.Input<string>;
  /** The private key of `publicKey` (secret), for the SSH login. */
  readonly privateKey?: pulumi.Input<string>;
  /** A file holding the private key of `publicKey`, for the SSH login. */
  readonly privateKeyPath?: pulumi.Input<string>;
  /**
   * Host keys of new cloud instances are not known beforehand: "accept-new" records each
   * host's first key (sealant's known_hosts) and refuses a changed one. "strict" needs
   * `knownHosts`/`fingerprints` given through `masterSettings`/`workerSettings` ssh.
   * @default "accept-new"
   */
  readonly hostKeyPolicy?: pulumi.Input<AlicloudHostKeyPolicy>;
  /** Tags on every resource that takes them (with `sealant.io/cluster`). @default {} */
  readonly tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** What `pulumi destroy` does with hosts it cannot reach. @default "skip" (an instance already gone) */
  readonly unreachableOnDelete?: KubernetesClusterProps["unreachableOnDelete"];
  /** What a scale-down does with an instance it cannot reach. @default "fail" */
  readonly unreachableOnRemove?: KubernetesClusterProps["unreachableOnRemove"];
}

/** Private address layout in the VSwitch: offsets from its network address. */
export const OFFSET = { bastion: 5, master: 10, worker: 20 } as const;
const MAX_MASTERS = OFFSET.worker - OFFSET.master;
/** Alibaba Cloud reserves the last three addresses of a VSwitch (and the first). */
const RESERVED_AT_END = 3;

const DEFAULTS = {
  masterCount: 3,
  workerCount: 0,
  masterInstanceType: "ecs.g7.large",
  imageNameRegex: "^ubuntu_22_04_x64",
  systemDiskSize: 40,
  systemDiskCategory: "cloud_essd",
  vpcCidr: "10.0.0.0/16",
  vswitchCidr: "10.0.1.0/24",
  access: "bastion" as AlicloudAccess,
  internetMaxBandwidthOut: 10,
  internetChargeType: "PayByTraffic",
  instanceChargeType: "PostPaid",
  allowedSshCidr: "0.0.0.0/0",
  allowedApiCidr: "0.0.0.0/0",
  hostKeyPolicy: "accept-new" as AlicloudHostKeyPolicy,
};

/** The props with their defaults: plain values checked, outputs checked when they resolve. */
export interface Resolved {
  masterCount: number;
  workerCount: number;
  vpcCidr: string;
  vswitchCidr: string;
  access: AlicloudAccess;
  masterInstanceType: pulumi.Input<string>;
  workerInstanceType: pulumi.Input<string>;
  bastionInstanceType: pulumi.Input<string>;
  imageNameRegex: pulumi.Input<string>;
  systemDiskSize: pulumi.Input<number>;
  systemDiskCategory: pulumi.Input<string>;
  internetMaxBandwidthOut: pulumi.Input<number>;
  internetChargeType: pulumi.Input<string>;
  instanceChargeType: pulumi.Input<string>;
  allowedSshCidr: pulumi.Input<string>;
  allowedApiCidr: pulumi.Input<string>;
  hostKeyPolicy: pulumi.Input<AlicloudHostKeyPolicy>;
  /** Trimmed. */
  publicKey: pulumi.Input<string> | undefined;
  password: pulumi.Input<string> | undefined;
}

export function ipv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** A key pair name unique per cluster and stack (key pair names are per region and account). */
export function keyPairName(clusterName: string): string {
  return `sealant-${clusterName}-${pulumi.getStack()}`.replace(/[^A-Za-z0-9._:-]/g, "-").slice(0, 128);
}

/** An IPv4 CIDR: [network as a number, mask bits], or a problem in words. */
export function parseCidr(cidr: unknown): [number, number] | string {
  if (typeof cidr !== "string") return `${JSON.stringify(cidr)} is not an IPv4 CIDR (expected a.b.c.d/n)`;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m) return `"${cidr}" is not an IPv4 CIDR (expected a.b.c.d/n, e.g. 10.0.0.0/16)`;
  const octets = m.slice(1, 5).map(Number);
  const bits = Number(m[5]);
  if (octets.some((o) => o > 255)) return `"${cidr}" has an octet above 255`;
  if (bits > 32) return `"${cidr}" has a mask above /32`;
  const addr = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - bits);
  if (addr % size !== 0) {
    const net = Math.floor(addr / size) * size;
    return `"${cidr}" has host bits set (the network is ${ipv4(net)}/${bits})`;
  }
  return [addr, bits];
}

/**
 * The props with their defaults, validated as far as they are known now: every problem at once
 * (an InvalidPropsError) before any resource exists; an output is checked by the same rule when
 * it resolves.
 */
export function resolveProps(where: string, props: AlicloudClusterProps | undefined, clusterName: string): Resolved {
  if (props === undefined || props === null)
    throw new InvalidPropsError(where, ["props are required: at least image and a login (password, or publicKey with privateKey/privateKeyPath)"]);
  const problems: string[] = [];
  const d = <K extends keyof typeof DEFAULTS>(key: K): NonNullable<AlicloudClusterProps[K]> | (typeof DEFAULTS)[K] => props[key] ?? DEFAULTS[key];
  const check = <T>(value: pulumi.Input<T>, problemOf: (v: T) => string | undefined) => checkedProp(where, value, problemOf, problems);
  for (const problem of [clusterNameProblem(clusterName, props.clusterName === undefined), imageProblem(props.image)]) {
    if (problem !== undefined) problems.push(problem);
  }
  const masterCount = d("masterCount");
  const workerCount = d("workerCount");
  const access = d("access");
  const vpcCidr = d("vpcCidr");
  const vswitchCidr = d("vswitchCidr");
  const count = (prop: "masterCount" | "workerCount", v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) problems.push(`${prop} must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`);
  };
  count("masterCount", masterCount, 1, MAX_MASTERS);
  count("workerCount", workerCount, 0, 999);
  if (!ALICLOUD_ACCESS.includes(access))
    problems.push(`access must be one of ${ALICLOUD_ACCESS.map((a) => `"${a}"`).join(", ")} (got ${JSON.stringify(access)})`);
  const hostKeyPolicy = check(d("hostKeyPolicy"), (v) =>
    ["accept-new", "strict", "insecure"].includes(v) ? undefined : `hostKeyPolicy must be "accept-new", "strict" or "insecure" (got ${JSON.stringify(v)})`,
  );

  const vpc = parseCidr(vpcCidr);
  const vsw = parseCidr(vswitchCidr);
  if (typeof vpc === "string") problems.push(`vpcCidr: ${vpc}`);
  else if (vpc[1] < 8 || vpc[1] > 28) problems.push(`vpcCidr "${vpcCidr}" must have a mask from /8 to /28`);
  if (typeof vsw === "string") problems.push(`vswitchCidr: ${vsw}`);
  else if (vsw[1] < 16 || vsw[1] > 27) problems.push(`vswitchCidr "${vswitchCidr}" must have a mask from /16 to /27`);
  if (typeof vpc !== "string" && typeof vsw !== "string") {
    if (vsw[1] < vpc[1] || Math.floor(vsw[0] / 2 ** (32 - vpc[1])) !== vpc[0] / 2 ** (32 - vpc[1])) {
      problems.push(`vswitchCidr "${vswitchCidr}" is not inside vpcCidr "${vpcCidr}"`);
    } else if (vsw[1] <= 27 && Number.isInteger(workerCount)) {
      const room = 2 ** (32 - vsw[1]) - RESERVED_AT_END - OFFSET.worker;
      if (workerCount > room)
        problems.push(
          `vswitchCidr "${vswitchCidr}" has addresses for ${room} workers (workers start at +${OFFSET.worker}), fewer than workerCount ${workerCount}`,
        );
    }
  }
  const cidr = (prop: "allowedSshCidr" | "allowedApiCidr") =>
    check(d(prop), (v) => {
      const c = parseCidr(v);
      return typeof c === "string" ? `${prop}: ${c}` : undefined;
    });
  const allowedSshCidr = cidr("allowedSshCidr");
  const allowedApiCidr = cidr("allowedApiCidr");

  const internetMaxBandwidthOut = check(d("internetMaxBandwidthOut"), (bw) =>
    access !== "private" && (!Number.isInteger(bw) || bw < 1 || bw > 100)
      ? `internetMaxBandwidthOut must be a whole number of Mbit/s from 1 to 100 for access "${access}" (the public IP needs bandwidth) (got ${JSON.stringify(bw)})`
      : undefined,
  );
  const systemDiskSize = check(d("systemDiskSize"), (v) =>
    !Number.isInteger(v) || v < 20 || v > 500 ? `systemDiskSize must be a whole number of GiB from 20 to 500 (got ${JSON.stringify(v)})` : undefined,
  );
  const instanceType = (prop: "masterInstanceType" | "workerInstanceType" | "bastionInstanceType", t: pulumi.Input<string>) =>
    check(t, (v) =>
      typeof v !== "string" || !/^ecs\.[a-z0-9-]+\.[a-z0-9]+$/.test(v)
        ? `${prop} ${JSON.stringify(v)} is not an ECS instance type (e.g. "ecs.g7.large")`
        : undefined,
    );
  const masterInstanceType = instanceType("masterInstanceType", d("masterInstanceType"));
  const workerInstanceType = props.workerInstanceType === undefined ? masterInstanceType : instanceType("workerInstanceType", props.workerInstanceType);
  const bastionInstanceType = props.bastionInstanceType === undefined ? masterInstanceType : instanceType("bastionInstanceType", props.bastionInstanceType);
  const imageNameRegex = check(d("imageNameRegex"), (v) => {
    try {
      new RegExp(v);
      return undefined;
    } catch (err) {
      return `imageNameRegex ${JSON.stringify(v)} is not a regular expression: ${(err as Error).message}`;
    }
  });

  const hasPassword = props.password !== undefined;
  const hasKey = props.publicKey !== undefined;
  if (hasPassword && hasKey) problems.push("give password or publicKey (with privateKey or privateKeyPath), not both");
  else if (!hasPassword && !hasKey) problems.push("a login is required: password, or publicKey with privateKey or privateKeyPath");
  let publicKey: pulumi.Input<string> | undefined;
  if (props.publicKey !== undefined) {
    const checked = check(props.publicKey, (v) =>
      typeof v !== "string" || !/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+/.test(v.trim())
        ? 'publicKey is not an OpenSSH public key (expected e.g. "ssh-ed25519 AAAA... comment", as in id_ed25519.pub)'
        : undefined,
    );
    publicKey = typeof checked === "string" ? checked.trim() : pulumi.output(checked).apply((k) => k.trim());
  }
  if (hasKey) {
    if (props.privateKey === undefined && props.privateKeyPath === undefined)
      problems.push("publicKey needs privateKey or privateKeyPath: the SSH login of the cluster");
    if (props.privateKey !== undefined && props.privateKeyPath !== undefined) problems.push("give privateKey (the key) or privateKeyPath (a file), not both");
  } else if (props.privateKey !== undefined || props.privateKeyPath !== undefined) {
    problems.push("privateKey/privateKeyPath need publicKey: the key pair the instances get");
  }
  // The message names the password's length and kinds of characters, never the password.
  const password =
    props.password === undefined
      ? undefined
      : check(props.password, (pw) => {
          const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((r) => r.test(pw)).length;
          return pw.length < 8 || pw.length > 30 || classes < 3
            ? `password must have 8-30 characters with three of: upper case, lower case, digits, special characters (got ${pw.length} characters, ${classes} kind${classes === 1 ? "" : "s"})`
            : undefined;
        });
  if (problems.length > 0) throw new InvalidPropsError(where, problems);
  return {
    masterCount,
    workerCount,
    vpcCidr,
    vswitchCidr,
    access,
    masterInstanceType,
    workerInstanceType,
    bastionInstanceType,
    imageNameRegex,
    systemDiskSize,
    systemDiskCategory: d("systemDiskCategory"),
    internetMaxBandwidthOut,
    internetChargeType: d("internetChargeType"),
    instanceChargeType: d("instanceChargeType"),
    allowedSshCidr,
    allowedApiCidr,
    hostKeyPolicy,
    publicKey,
    password,
  };
}
