import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCluster, checkCluster, resetCluster } from "../../../../src/engine/cluster";
import { openBed, type Bed } from "../../../support/bed";
import { buildEtcd, etcdHealthy, etcdMembers, etcdSpec } from "../../../support/etcd";
import { onHost } from "../../../support/hosts";

/**
 * The proof: the etcd example image run onto real sandbox hosts (sshd in namespaces
 * on 127.0.10.151-155) through the whole engine — plan, distribute, hooks, state record —
 * and judged by etcd itself (etcdctl member list / endpoint health).
 */
describe("an etcd cluster on sandbox hosts", () => {
  let bed: Bed;
  let v1: string;
  beforeAll(async () => {
    bed = await openBed(5, 151);
    v1 = await buildEtcd(bed, "example/etcd:1");
  }, 120_000);
  afterAll(async () => {
    await bed?.close();
  });

  const spec = (image: string, n: number) =>
    etcdSpec(bed, "etcd-e2e", image, bed.ips.slice(0, n), { ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts } });
  const apply = (image: string, n: number) => applyCluster({ session: bed.session, spec: spec(image, n), onEvent: (e) => bed.events.push(e) });

  it("creates a healthy 3-member cluster, and re-applying sends nothing", async () => {
    const r = await apply(v1, 3);
    expect(r.plan.actions).toEqual(["create"]);
    expect(await etcdMembers(bed.ips[0]!)).toEqual(["etcd-127-0-10-151", "etcd-127-0-10-152", "etcd-127-0-10-153"]);
    expect(await etcdHealthy(bed.ips.slice(0, 3))).toBe(true);
    expect(r.record?.hosts.every((h) => h.member)).toBe(true);
    const again = await apply(v1, 3);
    expect(again.plan.phases).toEqual([]);
    expect(Object.values(again.sent).reduce((a, b) => a + b, 0)).toBe(0);
    expect((await checkCluster({ session: bed.session, spec: spec(v1, 3) })).healthy).toBe(true);
  }, 120_000);

  it("joins two more: only the new hosts receive data and run steps", async () => {
    const from = bed.events.length;
    const r = await apply(v1, 5);
    expect(r.plan.summary).toEqual(["join 127.0.10.154, 127.0.10.155 (master)"]);
    const stepHosts = new Set(bed.events.slice(from).flatMap((e) => (e.type === "step" ? [e.host] : [])));
    expect([...stepHosts].sort()).toEqual(["127.0.10.154", "127.0.10.155"]);
    expect(Object.keys(r.sent).sort()).toEqual(["127.0.10.154", "127.0.10.155"]);
    expect(await etcdMembers(bed.ips[0]!)).toHaveLength(5);
    expect(await etcdHealthy(bed.ips)).toBe(true);
  }, 120_000);

  it("removes a host: its member leaves and etcd stops there", async () => {
    const r = await applyCluster({ session: bed.session, spec: etcdSpec(bed, "etcd-e2e", v1, [bed.ips[0]!, bed.ips[1]!, bed.ips[2]!, bed.ips[4]!]) });
    expect(r.plan.summary).toEqual(["remove 127.0.10.154 (master)"]);
    expect(await etcdMembers(bed.ips[0]!)).toEqual(["etcd-127-0-10-151", "etcd-127-0-10-152", "etcd-127-0-10-153", "etcd-127-0-10-155"]);
    const left = await onHost(bed.sandbox, bed.ips[3]!, "ls /var/lib/sealant/ 2>/dev/null; pgrep -x etcd || true");
    expect(left).toBe("");
  }, 120_000);

  it("rolls a new image through the hosts one master at a time, keeping quorum", async () => {
    const v2 = await buildEtcd(bed, "example/etcd:2", async (dir) => {
      const { appendFile } = await import("node:fs/promises");
      await appendFile(`${dir}/etc/etcd.env`, "\nETCD_HEARTBEAT_INTERVAL=150\n");
    });
    const ips = [bed.ips[0]!, bed.ips[1]!, bed.ips[2]!, bed.ips[4]!];
    const events: { host: string; id: string; status: string }[] = [];
    const r = await applyCluster({
      session: bed.session,
      spec: etcdSpec(bed, "etcd-e2e", v2, ips),
      onEvent: (e) => {
        if (e.type === "step") events.push(e);
      },
    });
    expect(r.plan.actions).toEqual(["upgrade"]);
    // Upgrades never overlap: each host's upgrade+check finishes before the next starts.
    const upgrades = events.filter((e) => e.id.startsWith("hook:upgrade"));
    expect(upgrades.map((e) => `${e.host} ${e.status}`)).toEqual(ips.flatMap((ip) => [`${ip} start`, `${ip} done`]));
    expect(await etcdHealthy(ips)).toBe(true);
    expect(r.record?.imageDigest).toBe(v2.split("@")[1]);
    // The old image's rootfs is gone; the host keeps only what the new one uses.
    const images = await onHost(bed.sandbox, ips[0]!, "ls /var/lib/sealant/etcd-e2e/images");
    expect(images).toBe(v2.split("@sha256:")[1]);
  }, 180_000);

  it("resets: nothing of sealant or etcd is left on any host", async () => {
    await resetCluster({ session: bed.session, spec: etcdSpec(bed, "etcd-e2e", v1, [bed.ips[0]!, bed.ips[1]!, bed.ips[2]!, bed.ips[4]!]) });
    for (const ip of bed.ips) {
      const left = await onHost(bed.sandbox, ip, "ls -A /var/lib/sealant/ 2>/dev/null; pgrep -x etcd || true");
      expect(left, ip).toBe("");
    }
  }, 120_000);
});
