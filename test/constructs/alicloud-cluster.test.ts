import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, it } from "vitest";
import { AlicloudCluster, InvalidPropsError, type AlicloudClusterProps } from "../../src/constructs";

/*
 * AlicloudCluster under Pulumi's mocks: no cloud, no engine, no provider runs. The mocks record
 * every resource registered (type, name, inputs) and every invoke. Instances get the private
 * IP they ask for and a fake public IP that depends only on the resource name — as Pulumi state
 * would keep it — so two runs of the program with different props can be compared. In a
 * preview, a resource no earlier run created gets no id and no computed outputs (unknown, as
 * the engine reports them). The mock monitor gives each resource its URN, whose type chain
 * names the parent's type. Resources are created only when a constructor is called, so setting
 * the mocks here, before any test, is early enough.
 */
interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}
const registered: Registered[] = [];
const calls: { token: string; inputs: Record<string, unknown> }[] = [];
const addresses = new Map<string, number>();
const IMAGE_ID = "ubuntu_22_04_x64_20G_alibase_20240101.vhd";
/** Zones and the instance types they offer. */
const ZONES: Record<string, string[]> = { "cn-hangzhou-i": ["ecs.g7.large"], "cn-hangzhou-j": ["ecs.g7.large", "ecs.c7.xlarge"] };

const created = new Set<string>();
const n = (name: string) => {
  if (!addresses.has(name)) addresses.set(name, addresses.size + 10);
  return addresses.get(name)!;
};
const publicIpOf = (name: string) => `47.100.0.${n(name)}`;
/** The layout the construct documents: offsets from the VSwitch's network address. */
const OFFSETS: Record<string, number> = { bastion: 5, master: 10, worker: 20 };
const privateIpOf = (name: string) => {
  const [, role, index] = /-(bastion|master|worker)(?:-(\d+))?$/.exec(name)!;
  return `10.0.1.${OFFSETS[role!]! + Number(index ?? 0)}`;
};

const mocks: pulumi.runtime.Mocks = {
  newResource(args) {
    registered.push({ type: args.type, name: args.name, inputs: args.inputs });
    const key = `${args.type}::${args.name}`;
    if (pulumi.runtime.isDryRun() && !created.has(key)) return { id: undefined, state: { ...args.inputs } };
    if (!pulumi.runtime.isDryRun()) created.add(key);
    const state: Record<string, unknown> = { ...args.inputs };
    if (args.type === "alicloud:ecs/instance:Instance") {
      state["publicIp"] = Number(args.inputs["internetMaxBandwidthOut"] ?? 0) > 0 ? publicIpOf(args.name) : "";
    }
    if ("hosts" in args.inputs)
      Object.assign(state, { imageDigest: "", nodes: [], plan: "create", lastPlan: [], endpoint: "", kubeconfig: "", caCertificate: "" });
    return { id: `${args.name}-id`, state };
  },
  call(args) {
    calls.push({ token: args.token, inputs: args.inputs });
    if (args.token === "alicloud:index/getZones:getZones") {
      const ids = Object.keys(ZONES).filter(
        (z) => args.inputs["availableInstanceType"] === undefined || ZONES[z]!.includes(args.inputs["availableInstanceType"]),
      );
      return { id: "zones", ids, zones: ids.map((id) => ({ id, localName: id })) };
    }
    if (args.token === "alicloud:ecs/getImages:getImages") {
      return { id: "images", ids: [IMAGE_ID], images: [{ id: IMAGE_ID, name: IMAGE_ID, osType: "linux" }] };
    }
    throw new Error(`unexpected invoke ${args.token}`);
  },
};
void pulumi.runtime.setMocks(mocks, "sealant-test", "dev", false);

const monitor = () => pulumi.runtime.getMonitor() as unknown as { resources: Map<string, { urn: string }> };

function value<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply(resolve));
}

/** The mocks see secrets in their wire form: `{ <secret sig>: ..., value }`. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
function isSecretValue(v: unknown): v is { value: unknown } {
  return typeof v === "object" && v !== null && SECRET_SIG in v;
}
function reveal(v: unknown): unknown {
  if (isSecretValue(v)) return reveal(v.value);
  if (Array.isArray(v)) return v.map(reveal);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reveal(x)]));
  return v;
}

/** The parent's type of a registered resource (from the URN's type chain), undefined for a root. */
function parentType(r: Registered): string | undefined {
  for (const urn of monitor().resources.keys()) {
    const [, , chain, name] = urn.split("::");
    const types = chain!.split("$");
    if (name === r.name && types.at(-1) === r.type) return types.length > 1 ? types.at(-2) : undefined;
  }
  throw new Error(`no URN for ${r.type} ${r.name}`);
}

const INSTANCE = "alicloud:ecs/instance:Instance";
const isCluster = (r: Registered) => r.type.startsWith("pulumi-nodejs:dynamic") && "hosts" in r.inputs;

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk1c2VhbGFudHRlc3RrZXlmb3J0ZXN0c29ubHkx test@sealant";
const PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const IMAGE = `registry.example.com/team/etcd:3.4@sha256:${"ab".repeat(32)}`;
const base: AlicloudClusterProps = { image: IMAGE, publicKey: KEY, privateKey: PRIVATE };

/** Runs the program once: the resources it registered, once the Cluster has been registered. */
async function run(name: string, props: AlicloudClusterProps) {
  registered.length = 0;
  calls.length = 0;
  // The SDK applies a component's transformations to its children, with their options: how
  // the test sees options the mocks are not given (ignoreChanges).
  const ignored = new Map<string, string[]>();
  const record: pulumi.ResourceTransformation = (args) => {
    if (args.opts.ignoreChanges?.length) ignored.set(args.name, args.opts.ignoreChanges);
    return undefined;
  };
  const c = new AlicloudCluster(name, props, { transformations: [record] });
  await value(c.cluster.urn);
  const resources = [...registered];
  // Cloud resources by name (the component, KubernetesCluster and Cluster share the construct's name).
  const byName = new Map(resources.filter((r) => r.type.startsWith("alicloud:")).map((r) => [r.name, r]));
  const cluster = resources.find(isCluster)!;
  const instances = resources.filter((r) => r.type === INSTANCE);
  return { c, resources, byName, cluster, instances, calls: [...calls], ignored };
}

function countByType(resources: Registered[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of resources) {
    const t = isCluster(r) ? "Cluster" : r.type;
    out[t] = (out[t] ?? 0) + 1;
  }
  return out;
}

beforeEach(() => {
  registered.length = 0;
});

describe("AlicloudCluster", () => {
  it("GIVEN 3 masters, 2 workers and the default bastion access WHEN created THEN the network, instances and a Cluster on their private IPs", async () => {
    const { c, resources, byName, cluster, instances, calls } = await run("dev", { ...base, workerCount: 2, allowedSshCidr: "203.0.113.7/32" });

    // The resource graph: counts by type.
    expect(countByType(resources)).toEqual({
      "sealant:index:AlicloudCluster": 1,
      "alicloud:vpc/network:Network": 1,
      "alicloud:vpc/switch:Switch": 1,
      "alicloud:ecs/securityGroup:SecurityGroup": 1,
      "alicloud:ecs/securityGroupRule:SecurityGroupRule": 3,
      "alicloud:ecs/ecsKeyPair:EcsKeyPair": 1,
      [INSTANCE]: 6,
      "sealant:index:KubernetesCluster": 1,
      Cluster: 1,
    });
    expect(instances.map((i) => i.name).sort()).toEqual(["dev-bastion", "dev-master-0", "dev-master-1", "dev-master-2", "dev-worker-0", "dev-worker-1"]);

    // Parents: everything is under the component; the Cluster under the KubernetesCluster.
    for (const r of resources) {
      const expected =
        r.type === "sealant:index:AlicloudCluster" ? undefined : isCluster(r) ? "sealant:index:KubernetesCluster" : "sealant:index:AlicloudCluster";
      expect({ resource: `${r.type} ${r.name}`, parent: parentType(r) }).toEqual({ resource: `${r.type} ${r.name}`, parent: expected });
    }

    // Every instance asks for its place in the VSwitch: bastion +5, masters +10.., workers +20..
    expect(Object.fromEntries(instances.map((i) => [i.name, i.inputs["privateIp"]]))).toEqual({
      "dev-bastion": "10.0.1.5",
      "dev-master-0": "10.0.1.10",
      "dev-master-1": "10.0.1.11",
      "dev-master-2": "10.0.1.12",
      "dev-worker-0": "10.0.1.20",
      "dev-worker-1": "10.0.1.21",
    });
    // The Cluster's hosts are exactly the masters' and workers' private IPs, with their roles.
    expect(cluster.inputs["name"]).toBe("dev");
    expect(cluster.inputs["image"]).toBe(IMAGE);
    expect(cluster.inputs["hosts"]).toEqual({
      [privateIpOf("dev-master-0")]: { roles: ["master"] },
      [privateIpOf("dev-master-1")]: { roles: ["master"] },
      [privateIpOf("dev-master-2")]: { roles: ["master"] },
      [privateIpOf("dev-worker-0")]: { roles: ["node"] },
      [privateIpOf("dev-worker-1")]: { roles: ["node"] },
    });
    // Only the bastion has a public IP; the hosts are reached through it, with the key.
    for (const i of instances) expect([i.name, i.inputs["internetMaxBandwidthOut"]]).toEqual([i.name, i.name === "dev-bastion" ? 10 : 0]);
    expect(isSecretValue(cluster.inputs["ssh"])).toBe(true);
    expect(reveal(cluster.inputs["ssh"])).toEqual({
      user: "root",
      port: 22,
      hostKeyPolicy: "accept-new",
      privateKey: PRIVATE,
      bastion: { host: publicIpOf("dev-bastion"), port: 22, user: "root", privateKey: PRIVATE },
    });

    // The instances: in the VSwitch, the security group, with the key pair and the looked-up image.
    const master = byName.get("dev-master-0")!.inputs;
    expect(master).toMatchObject({
      instanceName: "dev-master-0",
      hostName: "dev-master-0",
      instanceType: "ecs.g7.large",
      imageId: IMAGE_ID,
      vswitchId: "dev-vswitch-id",
      securityGroups: ["dev-sg-id"],
      keyName: "sealant-dev-dev",
      systemDiskSize: 40,
      systemDiskCategory: "cloud_essd",
      instanceChargeType: "PostPaid",
    });
    expect(master["password"]).toBeUndefined();
    expect(byName.get("dev-key")!.inputs).toMatchObject({ keyPairName: "sealant-dev-dev", publicKey: KEY });
    expect(byName.get("dev-vpc")!.inputs).toMatchObject({ cidrBlock: "10.0.0.0/16", vpcName: "dev" });
    expect(byName.get("dev-vswitch")!.inputs).toMatchObject({ cidrBlock: "10.0.1.0/24", vpcId: "dev-vpc-id", zoneId: "cn-hangzhou-i" });
    expect(byName.get("dev-sg")!.inputs).toMatchObject({ vpcId: "dev-vpc-id" });

    // The rules: SSH from the allowed CIDR, everything inside the VPC, the API port.
    const rules = resources.filter((r) => r.type === "alicloud:ecs/securityGroupRule:SecurityGroupRule").map((r) => r.inputs);
    const common = { securityGroupId: "dev-sg-id", type: "ingress", policy: "accept" };
    expect(rules).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ ...common, ipProtocol: "tcp", portRange: "22/22", cidrIp: "203.0.113.7/32" }),
        expect.objectContaining({ ...common, ipProtocol: "all", portRange: "-1/-1", cidrIp: "10.0.0.0/16" }),
        expect.objectContaining({ ...common, ipProtocol: "tcp", portRange: "6443/6443", cidrIp: "0.0.0.0/0" }),
      ]),
    );

    // The lookups: a zone that can create a VSwitch with the instance type; the newest Ubuntu image.
    expect(calls).toEqual(
      expect.arrayContaining([
        {
          token: "alicloud:index/getZones:getZones",
          inputs: expect.objectContaining({ availableResourceCreation: "VSwitch", availableInstanceType: "ecs.g7.large" }),
        },
        { token: "alicloud:ecs/getImages:getImages", inputs: expect.objectContaining({ nameRegex: "^ubuntu_22_04_x64", owners: "system", mostRecent: true }) },
      ]),
    );

    // Outputs.
    expect(await value(c.zoneId)).toBe("cn-hangzhou-i");
    expect(await value(c.imageId)).toBe(IMAGE_ID);
    expect(await value(c.masterIps)).toEqual(["dev-master-0", "dev-master-1", "dev-master-2"].map(privateIpOf));
    expect(await value(c.workerIps)).toEqual(["dev-worker-0", "dev-worker-1"].map(privateIpOf));
    expect(await value(c.bastionIp)).toBe(publicIpOf("dev-bastion"));
    expect(await value(c.endpoint)).toBe("https://10.0.1.10:6443");
    expect(await pulumi.isSecret(c.kubeconfig)).toBe(true);
  });

  it("GIVEN public access and a password WHEN created THEN every host has a public IP, the Cluster is keyed by them, no key pair and no bastion", async () => {
    const { resources, cluster, instances } = await run("pub", {
      image: IMAGE,
      access: "public",
      password: "Sealant-Test-1",
      masterCount: 1,
      workerCount: 1,
      internetMaxBandwidthOut: 5,
    });
    expect(countByType(resources)[INSTANCE]).toBe(2);
    expect(resources.some((r) => r.type === "alicloud:ecs/ecsKeyPair:EcsKeyPair")).toBe(false);
    expect(instances.map((i) => i.name).sort()).toEqual(["pub-master-0", "pub-worker-0"]);
    expect(cluster.inputs["hosts"]).toEqual({ [publicIpOf("pub-master-0")]: { roles: ["master"] }, [publicIpOf("pub-worker-0")]: { roles: ["node"] } });
    for (const i of instances) {
      expect(i.inputs["internetMaxBandwidthOut"]).toBe(5);
      // The root password is a secret on the instance as in the Cluster's ssh settings.
      expect(isSecretValue(i.inputs["password"])).toBe(true);
      expect(reveal(i.inputs["password"])).toBe("Sealant-Test-1");
      expect(i.inputs["keyName"]).toBeUndefined();
    }
    expect(reveal(cluster.inputs["ssh"])).toEqual({ user: "root", port: 22, hostKeyPolicy: "accept-new", password: "Sealant-Test-1" });
  });

  it("GIVEN workerCount 3 WHEN it becomes 5 THEN exactly two instances are added and the Cluster's hosts gain exactly their IPs", async () => {
    const before = await run("scale", { ...base, workerCount: 3 });
    const after = await run("scale", { ...base, workerCount: 5 });

    const names = (r: typeof before) => r.resources.map((x) => `${x.type} ${x.name}`).sort();
    const added = names(after).filter((x) => !names(before).includes(x));
    expect(added).toEqual([`${INSTANCE} scale-worker-3`, `${INSTANCE} scale-worker-4`]);
    expect(names(before).filter((x) => !names(after).includes(x))).toEqual([]);

    // Every resource of the first run has the same inputs in the second (no diff for Pulumi),
    // except the Cluster.
    for (const r of before.resources.filter((x) => !isCluster(x))) {
      const same = after.resources.find((x) => x.type === r.type && x.name === r.name)!;
      expect({ r: `${r.type} ${r.name}`, inputs: same.inputs }).toEqual({ r: `${r.type} ${r.name}`, inputs: r.inputs });
    }

    const hostsBefore = before.cluster.inputs["hosts"] as Record<string, unknown>;
    const hostsAfter = after.cluster.inputs["hosts"] as Record<string, unknown>;
    const gained = Object.keys(hostsAfter).filter((ip) => !(ip in hostsBefore));
    expect(gained.sort()).toEqual([privateIpOf("scale-worker-3"), privateIpOf("scale-worker-4")].sort());
    for (const ip of gained) expect(hostsAfter[ip]).toEqual({ roles: ["node"] });
    for (const [ip, host] of Object.entries(hostsBefore)) expect(hostsAfter[ip]).toEqual(host);
    // Nothing else about the Cluster changed.
    const { hosts: _h1, ...restBefore } = before.cluster.inputs;
    const { hosts: _h2, ...restAfter } = after.cluster.inputs;
    expect(restAfter).toEqual(restBefore);
  });

  it("GIVEN a worker type another zone has WHEN created THEN the zone offers both types", async () => {
    const { byName, calls } = await run("mixed", { ...base, masterCount: 1, workerCount: 1, workerInstanceType: "ecs.c7.xlarge", access: "private" });
    expect(byName.get("mixed-vswitch")!.inputs["zoneId"]).toBe("cn-hangzhou-j");
    expect(byName.get("mixed-worker-0")!.inputs["instanceType"]).toBe("ecs.c7.xlarge");
    expect(calls.filter((c) => c.token === "alicloud:index/getZones:getZones")).toHaveLength(2);
    // Private access: no public IP anywhere, no bastion.
    expect(byName.has("mixed-bastion")).toBe(false);
    for (const name of ["mixed-master-0", "mixed-worker-0"]) expect(byName.get(name)!.inputs["internetMaxBandwidthOut"]).toBe(0);
  });

  it("GIVEN looked-up zone and image WHEN either changes later THEN existing hosts are kept (ignoreChanges)", async () => {
    const { ignored } = await run("keep", { ...base, masterCount: 1, workerCount: 1 });
    // A newer image would re-initialise a host's disk; a moved zone would replace everything.
    expect(Object.fromEntries(ignored)).toEqual({
      "keep-vswitch": ["zoneId"],
      "keep-bastion": ["imageId"],
      "keep-master-0": ["imageId"],
      "keep-worker-0": ["imageId"],
    });
  });

  it("GIVEN zoneId and imageId WHEN created THEN nothing is looked up, and changing them is followed", async () => {
    const { byName, calls, ignored } = await run("fixed", {
      ...base,
      masterCount: 1,
      zoneId: "cn-shanghai-b",
      imageId: "m-123",
      vpcCidr: "192.168.0.0/16",
      vswitchCidr: "192.168.8.0/22",
      clusterName: "fixed-one",
    });
    expect(calls).toEqual([]);
    expect(ignored.size).toBe(0);
    expect(byName.get("fixed-vswitch")!.inputs).toMatchObject({ zoneId: "cn-shanghai-b", cidrBlock: "192.168.8.0/22", vswitchName: "fixed-one" });
    expect(byName.get("fixed-master-0")!.inputs).toMatchObject({ imageId: "m-123", hostName: "fixed-one-master-0", privateIp: "192.168.8.10" });
    expect(byName.get("fixed-internal")!.inputs).toMatchObject({ cidrIp: "192.168.0.0/16" });
  });

  it("GIVEN 3 workers deployed WHEN a preview with 5 THEN the Cluster's hosts are already known: exactly the two new addresses", async () => {
    const before = await run("plan", { ...base, workerCount: 3 });
    // `isDryRun` documents `_setIsDryRun` as the unit tests' switch (setMocks again would
    // replace the monitor under the first run's pending registrations).
    const setDryRun = (pulumi.runtime as unknown as { _setIsDryRun(v: boolean): void })._setIsDryRun;
    setDryRun(true);
    try {
      const preview = await run("plan", { ...base, workerCount: 5 });
      // The new instances are not created (the mocks gave them no id and no outputs), yet the
      // Cluster is planned with their addresses, so the preview shows their join.
      const hosts = preview.cluster.inputs["hosts"] as Record<string, unknown>;
      expect(Object.keys(hosts).sort()).toEqual([...Object.keys(before.cluster.inputs["hosts"] as object), "10.0.1.23", "10.0.1.24"].sort());
      expect(hosts["10.0.1.24"]).toEqual({ roles: ["node"] });
      // Contrast: keyed by public IPs, which exist only once the instances do, the hosts of a
      // new cluster are unknown in a preview.
      const pub = await run("pubplan", { image: IMAGE, access: "public", password: "Sealant-Test-1", masterCount: 1 });
      expect(pulumi.isUnknown(pub.cluster.inputs["hosts"])).toBe(true);
      expect(pulumi.isUnknown(hosts)).toBe(false);
    } finally {
      setDryRun(false);
    }
  });

  it("GIVEN props as outputs and secrets (a generated key pair, tags, CIDRs, sizes, types, settings) WHEN created THEN the resources get their values and the secrets stay secret", async () => {
    const out = <T>(v: T) => pulumi.output(v);
    const generated = { publicKeyOpenssh: out(`${KEY}\n`), privateKeyOpenssh: pulumi.secret(PRIVATE) };
    const { byName, cluster, instances, calls } = await run("outs", {
      image: out(IMAGE),
      masterCount: 1,
      workerCount: 1,
      publicKey: generated.publicKeyOpenssh,
      privateKey: generated.privateKeyOpenssh,
      masterInstanceType: out("ecs.g7.large"),
      workerInstanceType: out("ecs.c7.xlarge"),
      systemDiskSize: out(60),
      systemDiskCategory: out("cloud_ssd"),
      internetMaxBandwidthOut: out(20),
      allowedSshCidr: out("203.0.113.7/32"),
      hostKeyPolicy: out("insecure" as const),
      tags: { team: out("platform") },
      workerSettings: { ssh: { password: pulumi.secret("worker-pw") } },
    });
    // The key pair gets the key trimmed, as it would a plain one.
    expect(byName.get("outs-key")!.inputs["publicKey"]).toBe(KEY);
    expect(byName.get("outs-ssh")!.inputs["cidrIp"]).toBe("203.0.113.7/32");
    expect(byName.get("outs-vpc")!.inputs["tags"]).toEqual({ "sealant.io/cluster": "outs", team: "platform" });
    expect(byName.get("outs-worker-0")!.inputs).toMatchObject({
      instanceType: "ecs.c7.xlarge",
      systemDiskSize: 60,
      systemDiskCategory: "cloud_ssd",
      tags: { "sealant.io/cluster": "outs", team: "platform" },
    });
    expect(byName.get("outs-bastion")!.inputs).toMatchObject({ instanceType: "ecs.g7.large", internetMaxBandwidthOut: 20 });
    expect(instances).toHaveLength(3);
    // One zone lookup per instance type given, with the resolved types.
    expect(
      calls
        .filter((c) => c.token === "alicloud:index/getZones:getZones")
        .map((c) => c.inputs["availableInstanceType"])
        .sort(),
    ).toEqual(["ecs.c7.xlarge", "ecs.g7.large"]);
    expect(cluster.inputs["image"]).toBe(IMAGE);
    expect(isSecretValue(cluster.inputs["ssh"])).toBe(true);
    expect(reveal(cluster.inputs["ssh"])).toMatchObject({ hostKeyPolicy: "insecure", privateKey: PRIVATE });
    expect(isSecretValue(cluster.inputs["hosts"])).toBe(true);
    expect(reveal(cluster.inputs["hosts"])).toEqual({ "10.0.1.10": { roles: ["master"] }, "10.0.1.20": { roles: ["node"], ssh: { password: "worker-pw" } } });
  });

  it("GIVEN tags as one output WHEN created THEN every resource gets them with the cluster's tag", async () => {
    const { byName } = await run("tagged", { ...base, masterCount: 1, tags: pulumi.output({ team: "platform", "sealant.io/cluster": "mine" }) });
    expect(byName.get("tagged-vpc")!.inputs["tags"]).toEqual({ "sealant.io/cluster": "mine", team: "platform" });
    expect(byName.get("tagged-master-0")!.inputs["tags"]).toEqual({ "sealant.io/cluster": "mine", team: "platform" });
  });

  describe("validation at construction, in the props' terms, before any resource", () => {
    const fails = (props: object, message: RegExp) => {
      let err: unknown;
      try {
        new AlicloudCluster("bad", props as AlicloudClusterProps);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidPropsError);
      expect((err as Error).message).toMatch(/^AlicloudCluster "bad"/);
      expect((err as Error).message).toMatch(message);
      expect(registered).toEqual([]);
    };

    it("no master", () => fails({ ...base, masterCount: 0 }, /masterCount must be a whole number from 1 to 10 \(got 0\)/));
    it("too many masters", () => fails({ ...base, masterCount: 11 }, /masterCount must be a whole number from 1 to 10 \(got 11\)/));
    it("a fractional worker count", () => fails({ ...base, workerCount: 1.5 }, /workerCount must be a whole number from 0 to 999 \(got 1\.5\)/));
    it("a VPC CIDR with a bad mask", () => fails({ ...base, vpcCidr: "10.0.0.0/33" }, /vpcCidr: "10\.0\.0\.0\/33" has a mask above \/32/));
    it("a VPC CIDR that is no CIDR", () => fails({ ...base, vpcCidr: "10.0.0/16" }, /vpcCidr: "10\.0\.0\/16" is not an IPv4 CIDR/));
    it("a CIDR with host bits", () =>
      fails({ ...base, vswitchCidr: "10.0.1.7/24" }, /vswitchCidr: "10\.0\.1\.7\/24" has host bits set \(the network is 10\.0\.1\.0\/24\)/));
    it("a VSwitch outside the VPC", () =>
      fails({ ...base, vswitchCidr: "10.1.0.0/24" }, /vswitchCidr "10\.1\.0\.0\/24" is not inside vpcCidr "10\.0\.0\.0\/16"/));
    it("a VSwitch too small", () => fails({ ...base, vswitchCidr: "10.0.1.0/29" }, /vswitchCidr "10\.0\.1\.0\/29" must have a mask from \/16 to \/27/));
    it("a VSwitch too small for the workers", () =>
      fails(
        { ...base, vswitchCidr: "10.0.1.0/27", workerCount: 10 },
        /vswitchCidr "10\.0\.1\.0\/27" has addresses for 9 workers \(workers start at \+20\), fewer than workerCount 10/,
      ));
    it("an SSH CIDR that is no CIDR", () => fails({ ...base, allowedSshCidr: "anywhere" }, /allowedSshCidr: "anywhere" is not an IPv4 CIDR/));
    it("an unknown access", () => fails({ ...base, access: "vpn" }, /access must be one of "bastion", "public", "private" \(got "vpn"\)/));
    it("no bandwidth for public IPs", () =>
      fails(
        { ...base, access: "public", internetMaxBandwidthOut: 0 },
        /internetMaxBandwidthOut must be a whole number of Mbit\/s from 1 to 100 for access "public"/,
      ));
    it("no login", () => fails({ image: IMAGE }, /a login is required: password, or publicKey with privateKey or privateKeyPath/));
    it("both password and key", () => fails({ ...base, password: "Sealant-Test-1" }, /give password or publicKey .*not both/));
    it("a public key without its private key", () => fails({ image: IMAGE, publicKey: KEY }, /publicKey needs privateKey or privateKeyPath/));
    it("a public key that is none", () => fails({ ...base, publicKey: "AAAA" }, /publicKey is not an OpenSSH public key/));
    it("a weak password", () => fails({ image: IMAGE, password: "short" }, /password must have 8-30 characters .*\(got 5 characters, 1 kind\)/));
    it("an instance type that is none", () => fails({ ...base, workerInstanceType: "large" }, /workerInstanceType "large" is not an ECS instance type/));
    it("no image", () => fails({ publicKey: KEY, privateKey: PRIVATE }, /image is required/));
    it("a bad image ref", () => fails({ ...base, image: "Bad Ref" }, /image: invalid image reference "Bad Ref"/));
    it("a construct name that is no DNS label, without clusterName", () => {
      expect(() => new AlicloudCluster("Prod_1", base)).toThrow(/AlicloudCluster "Prod_1": clusterName "Prod_1" is not a valid DNS label.*set clusterName/);
      expect(registered).toEqual([]);
    });
    it("every problem at once, and the password never printed", () => {
      let err: Error | undefined;
      try {
        new AlicloudCluster("bad", { image: IMAGE, password: "onlylowercase", masterCount: 0, vpcCidr: "x" });
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message).toMatch(/invalid props:\n {2}- masterCount[\s\S]*- vpcCidr[\s\S]*- password must have/);
      expect(err?.message).not.toContain("onlylowercase");
    });
  });
});
