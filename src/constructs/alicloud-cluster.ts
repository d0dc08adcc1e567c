import * as alicloud from "@pulumi/alicloud";
import * as pulumi from "@pulumi/pulumi";
import type { Cluster } from "../provider/cluster";
import { InvalidPropsError, KubernetesCluster, KUBERNETES_API_PORT, type KubernetesClusterProps } from "./kubernetes-cluster";
import { ipv4, keyPairName, OFFSET, parseCidr, range, resolveProps, type AlicloudClusterProps } from "./alicloud-props";

export { ALICLOUD_ACCESS, parseCidr, type AlicloudAccess, type AlicloudClusterProps, type AlicloudHostKeyPolicy } from "./alicloud-props";

/**
 * A cluster image run on Alibaba Cloud: a VPC, a VSwitch, a security group (SSH from
 * `allowedSshCidr`, everything inside the VPC, the API port from `allowedApiCidr`), a key pair
 * or password, ECS instances for masters and workers (and a bastion), and a
 * `KubernetesCluster` on the instances' IPs.
 *
 * ```ts
 * const cfg = new pulumi.Config();
 * const prod = new AlicloudCluster("prod", {
 *   image: "registry.example.com/prod/etcd:3.4@sha256:...",
 *   masterCount: 3,
 *   workerCount: cfg.getNumber("workers") ?? 0,
 *   publicKey: fs.readFileSync("id_ed25519.pub", "utf8"),
 *   privateKey: cfg.requireSecret("sshKey"),
 *   allowedSshCidr: "203.0.113.7/32",
 * });
 * export const endpoint = prod.endpoint;
 * ```
 */
export class AlicloudCluster extends pulumi.ComponentResource {
  readonly vpc: alicloud.vpc.Network;
  readonly vswitch: alicloud.vpc.Switch;
  readonly securityGroup: alicloud.ecs.SecurityGroup;
  /** The security group's ingress rules: ssh, internal (the VPC CIDR), api. */
  readonly securityGroupRules: alicloud.ecs.SecurityGroupRule[];
  /** The key pair, when `publicKey` is given. */
  readonly keyPair: alicloud.ecs.EcsKeyPair | undefined;
  /** The bastion instance, for access "bastion". */
  readonly bastion: alicloud.ecs.Instance | undefined;
  /** Master instances, by index. */
  readonly masterInstances: alicloud.ecs.Instance[];
  /** Worker instances, by index. */
  readonly workerInstances: alicloud.ecs.Instance[];
  /** The cluster on the instances (with its `Cluster` child as `kubernetes.cluster`). */
  readonly kubernetes: KubernetesCluster;
  /** The `Cluster` resource (hosts keyed by the instances' IPs). */
  readonly cluster: Cluster;
  /** The zone the hosts are in. */
  readonly zoneId: pulumi.Output<string>;
  /** The ECS image the hosts run. */
  readonly imageId: pulumi.Output<string>;
  /** The masters' IPs the cluster uses (public or private, by `access`), by index. */
  readonly masterIps: pulumi.Output<string[]>;
  /** The workers' IPs the cluster uses, by index. */
  readonly workerIps: pulumi.Output<string[]>;
  /** The bastion's public IP ("" without a bastion). */
  readonly bastionIp: pulumi.Output<string>;
  /** The API endpoint (`https://<first master>:6443`; a private address unless access is "public"). */
  readonly endpoint: pulumi.Output<string>;
  /** The admin kubeconfig (secret); empty until the cluster's runtime writes one (see KubernetesCluster). */
  readonly kubeconfig: pulumi.Output<string>;
  /** Hosts as the cluster records them. */
  readonly nodes: Cluster["nodes"];

  constructor(name: string, props: AlicloudClusterProps, opts?: pulumi.ComponentResourceOptions) {
    // Validated before anything is registered: bad props leave no resource behind.
    const where = `AlicloudCluster "${name}"`;
    const clusterName = props?.clusterName ?? name;
    const p = resolveProps(where, props, clusterName);
    super("sealant:index:AlicloudCluster", name, {}, opts);
    if (p.masterCount % 2 === 0) {
      void pulumi.log.warn(`${where}: masterCount ${p.masterCount} is even; an odd count (1, 3, 5) tolerates as many failures with one host fewer`, this);
    }
    const parent = { parent: this };
    const own = { "sealant.io/cluster": clusterName };
    const tags: pulumi.Input<Record<string, pulumi.Input<string>>> =
      props.tags === undefined
        ? own
        : pulumi.Output.isInstance(props.tags) || props.tags instanceof Promise
          ? pulumi.output(props.tags).apply((t) => ({ ...own, ...t }))
          : { ...own, ...props.tags };

    this.vpc = new alicloud.vpc.Network(
      `${name}-vpc`,
      { vpcName: clusterName, cidrBlock: p.vpcCidr, description: `sealant cluster ${clusterName}`, tags },
      parent,
    );

    const bastioned = p.access === "bastion";
    const workerType = p.workerInstanceType;
    const bastionType = p.bastionInstanceType;
    const neededTypes = [...new Set([p.masterInstanceType, ...(p.workerCount > 0 ? [workerType] : []), ...(bastioned ? [bastionType] : [])])];
    this.zoneId = props.zoneId !== undefined ? pulumi.output(props.zoneId) : this.pickZone(where, neededTypes);

    // A looked-up zone is chosen once: a region's zone list changing later must not replace
    // the VSwitch (and every host with it). A zoneId given explicitly is followed.
    this.vswitch = new alicloud.vpc.Switch(
      `${name}-vswitch`,
      { vpcId: this.vpc.id, cidrBlock: p.vswitchCidr, zoneId: this.zoneId, vswitchName: clusterName, tags },
      { parent: this, ...(props.zoneId === undefined ? { ignoreChanges: ["zoneId"] } : {}) },
    );

    this.securityGroup = new alicloud.ecs.SecurityGroup(
      `${name}-sg`,
      { vpcId: this.vpc.id, securityGroupName: clusterName, description: `sealant cluster ${clusterName}`, tags },
      parent,
    );
    const rule = (suffix: string, args: Omit<alicloud.ecs.SecurityGroupRuleArgs, "securityGroupId" | "type" | "policy" | "nicType">) =>
      new alicloud.ecs.SecurityGroupRule(
        `${name}-${suffix}`,
        { securityGroupId: this.securityGroup.id, type: "ingress", policy: "accept", nicType: "intranet", ...args },
        parent,
      );
    this.securityGroupRules = [
      rule("ssh", { ipProtocol: "tcp", portRange: "22/22", cidrIp: p.allowedSshCidr, description: "SSH" }),
      rule("internal", { ipProtocol: "all", portRange: "-1/-1", cidrIp: p.vpcCidr, description: "all traffic inside the cluster's VPC" }),
      rule("api", { ipProtocol: "tcp", portRange: `${KUBERNETES_API_PORT}/${KUBERNETES_API_PORT}`, cidrIp: p.allowedApiCidr, description: "Kubernetes API" }),
    ];

    this.keyPair =
      p.publicKey !== undefined
        ? new alicloud.ecs.EcsKeyPair(`${name}-key`, { keyPairName: keyPairName(clusterName), publicKey: p.publicKey, tags }, parent)
        : undefined;
    const login: alicloud.ecs.InstanceArgs = this.keyPair ? { keyName: this.keyPair.keyPairName } : { password: pulumi.secret(p.password!) };

    this.imageId = props.imageId !== undefined ? pulumi.output(props.imageId) : this.pickImage(where, p.imageNameRegex, p.masterInstanceType);

    const network = (parseCidr(p.vswitchCidr) as [number, number])[0];
    const address = (offset: number) => ipv4(network + offset);
    const instance = (resourceName: string, hostName: string, instanceType: pulumi.Input<string>, privateIp: string, publicIp: boolean) =>
      new alicloud.ecs.Instance(
        resourceName,
        {
          instanceName: hostName,
          hostName,
          instanceType,
          imageId: this.imageId,
          vswitchId: this.vswitch.id,
          privateIp,
          securityGroups: [this.securityGroup.id],
          systemDiskCategory: p.systemDiskCategory,
          systemDiskSize: p.systemDiskSize,
          instanceChargeType: p.instanceChargeType,
          internetChargeType: p.internetChargeType,
          internetMaxBandwidthOut: publicIp ? p.internetMaxBandwidthOut : 0,
          ...login,
          tags,
        },
        // A looked-up image is chosen when the instance is created: a newer image published
        // later goes to new instances only — changing an instance's image re-initialises its
        // system disk, wiping the host. An imageId given explicitly is followed.
        { parent: this, ...(props.imageId === undefined ? { ignoreChanges: ["imageId"] } : {}) },
      );

    this.bastion = bastioned ? instance(`${name}-bastion`, `${clusterName}-bastion`, bastionType, address(OFFSET.bastion), true) : undefined;
    const hostsPublic = p.access === "public";
    const masterAddresses = range(p.masterCount).map((i) => address(OFFSET.master + i));
    const workerAddresses = range(p.workerCount).map((i) => address(OFFSET.worker + i));
    this.masterInstances = masterAddresses.map((ip, i) => instance(`${name}-master-${i}`, `${clusterName}-master-${i}`, p.masterInstanceType, ip, hostsPublic));
    this.workerInstances = workerAddresses.map((ip, i) => instance(`${name}-worker-${i}`, `${clusterName}-worker-${i}`, workerType, ip, hostsPublic));

    // The cluster's host IPs: the public ones (known once the instances exist), or the planned
    // private ones, known now — so preview plans with them. Either way they carry the instances
    // and the rules as dependencies (URNs resolve once those are created), so the cluster is
    // set up only when the hosts exist and SSH is let in.
    const ready = pulumi.all(this.securityGroupRules.map((r) => r.urn));
    const ipsOf = (instances: alicloud.ecs.Instance[], planned: string[]): pulumi.Output<string[]> =>
      hostsPublic
        ? pulumi.all([pulumi.all(instances.map((i) => i.publicIp)), ready]).apply(([ips]) => ips)
        : pulumi.all([pulumi.all(instances.map((i) => i.urn)), ready]).apply(() => planned);
    this.masterIps = ipsOf(this.masterInstances, masterAddresses);
    this.workerIps = ipsOf(this.workerInstances, workerAddresses);
    this.bastionIp = this.bastion ? this.bastion.publicIp : pulumi.output("");

    const credentials =
      p.password !== undefined
        ? { password: pulumi.secret(p.password) }
        : props.privateKey !== undefined
          ? { privateKey: pulumi.secret(props.privateKey) }
          : { privateKeyPath: props.privateKeyPath! };
    const ssh = pulumi.output({
      user: "root",
      port: 22,
      hostKeyPolicy: p.hostKeyPolicy,
      ...credentials,
      ...(this.bastion ? { bastion: { host: this.bastion.publicIp, port: 22, user: "root", ...credentials } } : {}),
    });

    const kprops: KubernetesClusterProps = {
      image: props.image,
      clusterName,
      masters: this.masterIps,
      workers: this.workerIps,
      ssh,
      env: props.env,
      registry: props.registry,
      plugins: props.plugins,
      configs: props.configs,
      apps: props.apps,
      runtime: props.runtime,
      hostAliases: props.hostAliases,
      upgrade: props.upgrade,
      distribution: props.distribution,
      timeouts: props.timeouts,
      dataRoot: props.dataRoot,
      parallelism: props.parallelism,
      masterSettings: props.masterSettings,
      workerSettings: props.workerSettings,
      unreachableOnDelete: props.unreachableOnDelete,
      unreachableOnRemove: props.unreachableOnRemove,
    };
    this.kubernetes = new KubernetesCluster(name, kprops, parent);
    this.cluster = this.kubernetes.cluster;
    this.endpoint = this.kubernetes.endpoint;
    this.kubeconfig = this.kubernetes.kubeconfig;
    this.nodes = this.kubernetes.nodes;

    this.registerOutputs({
      zoneId: this.zoneId,
      imageId: this.imageId,
      vpcId: this.vpc.id,
      vswitchId: this.vswitch.id,
      securityGroupId: this.securityGroup.id,
      masterIps: this.masterIps,
      workerIps: this.workerIps,
      bastionIp: this.bastionIp,
      endpoint: this.endpoint,
      kubeconfig: this.kubeconfig,
      nodes: this.nodes,
    });
  }

  /** The first zone that can create a VSwitch and offers every instance type needed. */
  private pickZone(where: string, types: pulumi.Input<string>[]): pulumi.Output<string> {
    const lookups = types.map((t) => alicloud.getZonesOutput({ availableResourceCreation: "VSwitch", availableInstanceType: t }, { parent: this }));
    return pulumi.all([pulumi.all(lookups), pulumi.all(types)]).apply(([results, instanceTypes]) => {
      const [first, ...rest] = results.map((r) => (r.zones ?? []).map((z) => z.id));
      const zone = (first ?? []).find((z) => rest.every((ids) => ids.includes(z)));
      if (zone === undefined) {
        throw new InvalidPropsError(where, [
          `no zone of this region can create a VSwitch with instance type${instanceTypes.length > 1 ? "s" : ""} ${instanceTypes.join(", ")}; choose other instance types or set zoneId`,
        ]);
      }
      return zone;
    });
  }

  /** The most recent public image whose name matches. */
  private pickImage(where: string, regex: pulumi.Input<string>, type: pulumi.Input<string>): pulumi.Output<string> {
    const images = alicloud.ecs.getImagesOutput({ nameRegex: regex, owners: "system", mostRecent: true, instanceType: type }, { parent: this });
    return pulumi.all([images, regex, type]).apply(([r, nameRegex, instanceType]) => {
      const image = r.images?.[0];
      if (image === undefined)
        throw new InvalidPropsError(where, [
          `no public ECS image matches imageNameRegex ${JSON.stringify(nameRegex)} for ${instanceType}; change imageNameRegex or set imageId`,
        ]);
      return image.id;
    });
  }
}
