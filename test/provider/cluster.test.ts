import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as impl from "../../src/provider/impl/cluster";
import type { ClusterInputs } from "../../src/provider/impl/cluster-inputs";
import { startHost, stopHost } from "../../src/engine/sandbox";
import { openBed, type Bed } from "../support/bed";
import { buildEtcd, etcdHealthy, etcdMembers } from "../support/etcd";
import { execP } from "../support/tools";

/**
 * The Cluster provider's methods called directly (as the Pulumi engine would), with the real
 * engine on sandbox hosts 127.0.10.201-203. The real Pulumi CLI runs them in the e2e tests.
 */
describe("the Cluster provider", () => {
  let bed: Bed;
  let image: string;
  const saved = process.env.SEALANT_HOME;
  beforeAll(async () => {
    bed = await openBed(3, 201);
    process.env.SEALANT_HOME = bed.home;
    image = await buildEtcd(bed, "example/etcd:provider");
  }, 120_000);
  afterAll(async () => {
    if (saved === undefined) delete process.env.SEALANT_HOME;
    else process.env.SEALANT_HOME = saved;
    await bed?.close();
  });

  const inputs = (ips: string[], extra: Partial<ClusterInputs> = {}): ClusterInputs => ({
    name: "prov",
    image,
    hosts: Object.fromEntries(ips.map((ip) => [ip, { roles: ["master"] }])),
    ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts },
    ...extra,
  });

  it("check plans from the inputs alone: the create, then exactly the join of a new host", async () => {
    const [a, b, c] = bed.ips as [string, string, string];
    // The Pulumi engine adds the serialised provider to every dynamic resource's inputs.
    const first = await impl.check(undefined, { ...inputs([b, a]), __provider: "function __f0() {}" } as ClusterInputs);
    expect(first.failures).toBeUndefined();
    expect(first.inputs.plan).toBe(`create cluster prov on ${a}, ${b} (master) with image ${image.split("@sha256:")[1]!.slice(0, 12)}`);
    const grow = await impl.check(inputs([a, b]), inputs([a, b, c]));
    expect(grow.inputs.plan).toBe(`join ${c} (master)`);
    const unknown = await impl.check(inputs([a]), { ...inputs([a]), hosts: { "04da6b54-80e4-46f7-96ec-b56ff0331ba9": { roles: ["master"] } } });
    expect(unknown.inputs.plan).toMatch(/known after apply/);
    // An image still being built (unknown in preview) is planned as a new image, hosts as they are.
    const pending = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
    const upgrade = await impl.check(inputs([a, b]), { ...inputs([a, b, c]), image: pending });
    expect(upgrade.inputs.plan).toBe(
      `join ${c} (master)\nupgrade image ${image.split("@sha256:")[1]!.slice(0, 12)} -> (known after apply) on 2 hosts (2 batches)\n` +
        // Three hosts get the image: the default distribution (auto) relays it, and the plan says from where.
        `relay the image (auto: 3 hosts, relayed from 3; fanout 3): ${c} from the operator; ${a}, ${b} via ${c}`,
    );
    expect(upgrade.inputs.image).toBe(pending);
    const fresh = await impl.check(undefined, { ...inputs([a]), image: pending });
    expect(fresh.inputs.plan).toBe(`create cluster prov on ${a} (master) with image (known after apply)`);
  });

  it("check names bad inputs by property, without secrets", async () => {
    const r = await impl.check(undefined, { ...inputs([bed.ips[0]!]), ssh: { password: "s3cret-pw", usr: "root" } as never });
    // Pulumi prints a named property's whole value with the failure: inputs holding secrets are
    // not named; the reason gives the field's path.
    expect(r.failures?.map((f) => f.property)).toEqual([""]);
    expect(JSON.stringify(r.failures)).toMatch(/ssh\.usr/);
    expect(JSON.stringify(r.failures)).not.toContain("s3cret-pw");
  });

  it("diff: hosts and image are updates; the name and data root replace the cluster", async () => {
    const olds = { ...inputs([bed.ips[0]!]), imageDigest: "x", nodes: [], record: {}, lastPlan: [] };
    expect(await impl.diff("prov", olds, inputs([bed.ips[0]!]))).toMatchObject({ changes: false, replaces: [] });
    // check adds the plan to the new inputs; the old outputs have none: no change by itself.
    // Nor is the serialised provider the engine adds to the new inputs.
    expect(
      await impl.diff("prov", olds, { ...inputs([bed.ips[0]!]), plan: "no changes to cluster prov", __provider: "function __f0() {}" } as ClusterInputs),
    ).toMatchObject({ changes: false });
    expect(await impl.diff("prov", olds, inputs([bed.ips[0]!, bed.ips[1]!]))).toMatchObject({ changes: true, replaces: [] });
    expect(await impl.diff("prov", olds, { ...inputs([bed.ips[0]!]), name: "other" })).toMatchObject({
      changes: true,
      replaces: ["name"],
      deleteBeforeReplace: true,
    });
    // The cluster's network ranges (kubeadm's ClusterConfiguration) replace it; other kubeadm settings update it.
    const kubeadm = (networking: Record<string, string>, extra: Record<string, unknown> = {}) => ({
      runtime: { kubeadm: [{ apiVersion: "kubeadm.k8s.io/v1beta3", kind: "ClusterConfiguration", networking, ...extra }] },
    });
    const withNet = { ...olds, ...kubeadm({ podSubnet: "100.64.0.0/10" }) };
    expect(await impl.diff("prov", withNet, { ...inputs([bed.ips[0]!]), ...kubeadm({ podSubnet: "10.244.0.0/16" }) })).toMatchObject({
      changes: true,
      replaces: ["runtime"],
    });
    expect(
      await impl.diff("prov", withNet, { ...inputs([bed.ips[0]!]), ...kubeadm({ podSubnet: "100.64.0.0/10" }, { apiServer: { certSANs: ["x"] } }) }),
    ).toMatchObject({ changes: true, replaces: [] });
  });

  it("create, update (join), read and delete act on the hosts", async () => {
    const [a, b] = bed.ips as [string, string];
    const created = await impl.create(inputs([a]));
    expect(created.id).toBe("prov");
    expect(created.outs["nodes"]).toEqual([{ ip: a, roles: ["master"], member: true, hostname: "host201" }]);
    const updated = await impl.update("prov", created.outs, inputs([a, b]));
    expect(updated.outs["lastPlan"]).toEqual([`join ${b} (master)`]);
    expect(await etcdMembers(a)).toHaveLength(2);
    expect(await etcdHealthy([a, b])).toBe(true);
    const read = await impl.read("prov", updated.outs);
    expect((read.props["nodes"] as { ip: string }[]).map((n) => n.ip)).toEqual([a, b]);
    await impl.remove("prov", updated.outs);
    const left = await execP("ssh", [
      "-i",
      bed.sandbox.ssh.pk,
      "-o",
      `UserKnownHostsFile=${bed.sandbox.ssh.knownHosts}`,
      `root@${a}`,
      "ls -A /var/lib/sealant 2>/dev/null; true",
    ]);
    expect(left.stdout.trim()).toBe("");
    expect((await impl.read("prov", updated.outs)).id).toBe("");
  }, 180_000);
});

describe("the Cluster provider after a host was reset out of band", () => {
  let bed: Bed;
  let image: string;
  const saved = process.env.SEALANT_HOME;
  beforeAll(async () => {
    bed = await openBed(3, 204);
    process.env.SEALANT_HOME = bed.home;
    image = await buildEtcd(bed, "example/etcd:drift");
  }, 120_000);
  afterAll(async () => {
    if (saved === undefined) delete process.env.SEALANT_HOME;
    else process.env.SEALANT_HOME = saved;
    await bed?.close();
  });

  it("update sets the host up and joins it again", async () => {
    // Three members, so the two left keep quorum to remove and re-add the wiped one.
    const [a, b, c] = bed.ips as [string, string, string];
    const args: ClusterInputs = {
      name: "drift",
      image,
      hosts: { [a]: { roles: ["master"] }, [c]: { roles: ["master"] }, [b]: { roles: ["master"] } },
      ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts },
    };
    const created = await impl.create(args);
    // Someone wipes the second host: etcd killed, sealant's files deleted.
    await execP("ssh", [
      "-i",
      bed.sandbox.ssh.pk,
      "-o",
      `UserKnownHostsFile=${bed.sandbox.ssh.knownHosts}`,
      `root@${b}`,
      "pkill -9 -x etcd; rm -rf /var/lib/sealant",
    ]);
    const updated = await impl.update("drift", created.outs, args);
    expect(updated.outs["lastPlan"]).toEqual([`join ${b} (master)`]);
    expect(await etcdMembers(a)).toEqual(["etcd-127-0-10-204", "etcd-127-0-10-205", "etcd-127-0-10-206"]);
    expect(await etcdHealthy([a, b, c])).toBe(true);
    await impl.remove("drift", updated.outs);
  }, 180_000);

  const argsFor = (name: string, ips: string[]): ClusterInputs => ({
    name,
    image,
    hosts: Object.fromEntries(ips.map((ip) => [ip, { roles: ["master"] }])),
    ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts },
  });
  type Node = { ip: string; member: boolean };

  it("read (refresh) leaves the reset host out of the inputs: check plans its join, diff shows it, update rejoins it", async () => {
    const [a, b, c] = bed.ips as [string, string, string];
    const args = argsFor("refresh", [a, b, c]);
    const created = await impl.create(args);
    await execP("ssh", [
      "-i",
      bed.sandbox.ssh.pk,
      "-o",
      `UserKnownHostsFile=${bed.sandbox.ssh.knownHosts}`,
      `root@${b}`,
      "pkill -9 -x etcd; rm -rf /var/lib/sealant",
    ]);
    // As the Pulumi engine passes them: the state's outputs with the serialised provider.
    const read = await impl.read("refresh", { ...created.outs, __provider: "function __f0() {}" });
    expect(read.id).toBe("refresh");
    const inputs = read.inputs!;
    expect(Object.keys(inputs["hosts"] as object)).toEqual([a, c]);
    expect(Object.keys(read.props["hosts"] as object)).toEqual([a, c]);
    expect(inputs["__provider"]).toBe("function __f0() {}");
    for (const k of ["nodes", "record", "imageDigest", "lastPlan"]) expect(inputs).not.toHaveProperty(k);
    expect((read.props["nodes"] as Node[]).map((n) => [n.ip, n.member])).toEqual([
      [a, true],
      [b, false],
      [c, true],
    ]);
    expect((read.props["record"] as { hosts: Node[] }).hosts.find((h) => h.ip === b)?.member).toBe(false);
    expect(read.props["imageDigest"]).toBe(created.outs["imageDigest"]);

    // What preview then does: check with the refreshed inputs as olds, diff against the refreshed outputs.
    const checked = await impl.check(inputs as unknown as ClusterInputs, args);
    expect(checked.inputs.plan).toBe(`join ${b} (master)`);
    expect(await impl.diff("refresh", read.props, args)).toMatchObject({ changes: true, replaces: [] });

    const updated = await impl.update("refresh", read.props, checked.inputs);
    expect(updated.outs["lastPlan"]).toEqual([`join ${b} (master)`]);
    expect(await etcdMembers(a)).toEqual(["etcd-127-0-10-204", "etcd-127-0-10-205", "etcd-127-0-10-206"]);
    expect(await etcdHealthy([a, b, c])).toBe(true);
    const again = await impl.read("refresh", updated.outs);
    expect(Object.keys(again.inputs!["hosts"] as object)).toEqual([a, b, c]);
    expect((again.props["nodes"] as Node[]).every((n) => n.member)).toBe(true);
    expect(await impl.diff("refresh", again.props, args)).toMatchObject({ changes: false });
    await impl.remove("refresh", updated.outs);
  }, 240_000);

  it("read keeps a member it cannot reach as recorded, with a warning, and does not fail", async () => {
    const [a, , c] = bed.ips as [string, string, string];
    const created = await impl.create(argsFor("blip", [a, c]));
    await stopHost(bed.sandbox, c);
    const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
    try {
      const read = await impl.read("blip", created.outs);
      expect(read.id).toBe("blip");
      expect(Object.keys(read.inputs!["hosts"] as object)).toEqual([a, c]);
      expect(Object.keys(read.props["hosts"] as object)).toEqual([a, c]);
      expect((read.props["nodes"] as Node[]).map((n) => [n.ip, n.member])).toEqual([
        [a, true],
        [c, true],
      ]);
      expect(log.mock.calls.some((call) => String(call[0]).startsWith(`warning: ${c}: cannot be reached, kept as recorded`))).toBe(true);
    } finally {
      log.mockRestore();
      await startHost(bed.sandbox, c);
    }
    await impl.remove("blip", created.outs);
  }, 240_000);
});
