import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCluster, ApplyError, ClusterLockedError, resetCluster, unlockCluster, ValidationError } from "../../../../src/engine/cluster";
import { parseClusterSpec } from "../../../../src/engine/cluster/spec";
import { HostsError } from "../../../../src/engine/ssh";
import { startHost, stopHost } from "../../../../src/engine/sandbox";
import { openBed, type Bed } from "../../../support/bed";
import { buildEtcd, etcdHealthy, etcdMembers, etcdSpec } from "../../../support/etcd";
import { onHost } from "../../../support/hosts";

/**
 * Faults on real sandbox hosts (127.0.10.191-194): hosts dying mid-apply, bad credentials,
 * unknown keys, unreachable hosts, a full disk, a second apply at the same time. Each must
 * fail naming the host and the reason, change nothing it should not, and a re-run converge.
 */
describe("faults while applying", () => {
  let bed: Bed;
  let image: string;
  beforeAll(async () => {
    bed = await openBed(4, 191);
    image = await buildEtcd(bed, "example/etcd:faults");
  }, 120_000);
  afterAll(async () => {
    await bed?.close();
  });
  const ssh = (b: Bed) => ({ privateKeyPath: b.sandbox.ssh.pk, knownHosts: b.sandbox.ssh.knownHosts });
  const on = (ip: string, cmd: string) => onHost(bed.sandbox, ip, cmd);

  it("a host whose sshd dies mid-apply is named; after it is back, the same apply converges with no duplicate members", async () => {
    const spec = etcdSpec(bed, "crash", image, bed.ips.slice(0, 3));
    const victim = bed.ips[2]!;
    let stopped = false;
    const err = await applyCluster({
      session: bed.session,
      spec,
      onEvent: (e) => {
        if (!stopped && e.type === "step" && e.status === "start" && e.id.startsWith("render") && e.host === victim) {
          stopped = true;
          void stopHost(bed.sandbox, victim);
        }
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyError);
    expect((err as ApplyError).hosts).toEqual([victim]);
    expect((err as Error).message).toContain(victim);

    await startHost(bed.sandbox, victim);
    const r = await applyCluster({ session: bed.session, spec });
    expect(r.plan.summary[0]).toMatch(/^create cluster crash/);
    // Only what was left: every host had finished distribute, so no image byte is sent again.
    expect(Object.values(r.sent).reduce((a, b) => a + b, 0)).toBe(0);
    expect(r.plan.phases.map((p) => p.name)).not.toContain("distribute");
    expect(await etcdMembers(bed.ips[0]!)).toEqual(["etcd-127-0-10-191", "etcd-127-0-10-192", "etcd-127-0-10-193"]);
    expect(await etcdHealthy(bed.ips.slice(0, 3))).toBe(true);
    await resetCluster({ session: bed.session, spec });
  }, 180_000);

  it("a host whose join failed is recorded, not as a member; the next apply joins it", async () => {
    const [first, second] = [bed.ips[0]!, bed.ips[1]!];
    await applyCluster({ session: bed.session, spec: etcdSpec(bed, "joins", image, [first]) });
    const spec = etcdSpec(bed, "joins", image, [first, second]);
    let stopped = false;
    const err = await applyCluster({
      session: bed.session,
      spec,
      onEvent: (e) => {
        if (!stopped && e.type === "step" && e.status === "start" && e.id === "hook:join") {
          stopped = true;
          void stopHost(bed.sandbox, second);
        }
      },
    }).catch((e: unknown) => e);
    expect((err as ApplyError).hosts).toEqual([second]);
    const record = JSON.parse(await on(first, "cat /var/lib/sealant/joins/state.json")) as { hosts: { ip: string; member: boolean }[] };
    expect(record.hosts.find((h) => h.ip === second)?.member).toBe(false);

    await startHost(bed.sandbox, second);
    const r = await applyCluster({ session: bed.session, spec });
    expect(r.plan.summary).toEqual([`join ${second} (master)`]);
    expect(await etcdMembers(first)).toEqual(["etcd-127-0-10-191", "etcd-127-0-10-192"]);
    expect(await etcdHealthy([first, second])).toBe(true);
    await resetCluster({ session: bed.session, spec });
  }, 180_000);

  it("an unreachable host is removed only by force: the cluster forgets it, its files stay", async () => {
    const [a, b, c] = bed.ips as [string, string, string];
    const spec = etcdSpec(bed, "gone", image, [a, b, c]);
    await applyCluster({ session: bed.session, spec });
    await stopHost(bed.sandbox, c);
    try {
      const smaller = etcdSpec(bed, "gone", image, [a, b]);
      const refused = await applyCluster({ session: bed.session, spec: smaller }).catch((e: unknown) => e as Error);
      expect(refused).toBeInstanceOf(HostsError);
      expect((refused as Error).message).toContain(c);
      const warnings: string[] = [];
      const r = await applyCluster({
        session: bed.session,
        spec: smaller,
        forceRemoval: true,
        onEvent: (e) => (e.type === "warning" ? warnings.push(`${e.host}: ${e.text}`) : undefined),
      });
      expect(r.record?.hosts.map((h) => h.ip)).toEqual([a, b]);
      expect(warnings.join("\n")).toMatch(
        new RegExp(`${c.replaceAll(".", "\\.")}: cannot be reached .*removed from the cluster without its own steps \\(forced\\); its files stay`),
      );
      // The next apply is a no-op: the host is gone from the record.
      expect((await applyCluster({ session: bed.session, spec: smaller })).plan.summary).toEqual(["no changes to cluster gone"]);
      await resetCluster({ session: bed.session, spec: smaller });
    } finally {
      await startHost(bed.sandbox, c);
      await resetCluster({ session: bed.session, spec, force: true }).catch(() => undefined);
    }
  }, 180_000);

  it("refuses a second apply while one runs, naming the holder; a stale lock is broken explicitly", async () => {
    const spec = etcdSpec(bed, "locked", image, [bed.ips[0]!]);
    let second: Promise<unknown> | undefined;
    await applyCluster({
      session: bed.session,
      spec,
      command: "first apply",
      onEvent: (e) => {
        if (!second && e.type === "phase") second = applyCluster({ session: bed.session, spec }).catch((x: unknown) => x);
      },
    });
    const refused = await second;
    expect(refused).toBeInstanceOf(ClusterLockedError);
    expect((refused as Error).message).toMatch(/cluster locked is locked on 127\.0\.10\.191 by .*first apply.* since .* ago\)/);

    // A lock left by an apply that died: refused until someone breaks it.
    await on(
      bed.ips[0]!,
      `mkdir /var/lib/sealant/locked/lock && echo '{"user":"ci","machine":"gone","pid":1,"command":"sealant apply","since":"2026-01-01T00:00:00Z"}' > /var/lib/sealant/locked/lock/owner.json`,
    );
    await expect(applyCluster({ session: bed.session, spec })).rejects.toThrow(/by ci@gone \(pid 1, sealant apply\)/);
    expect((await unlockCluster({ session: bed.session, spec }))?.machine).toBe("gone");
    expect((await applyCluster({ session: bed.session, spec })).plan.phases).toEqual([]);
    await resetCluster({ session: bed.session, spec });
  }, 120_000);

  it("checks free disk in the data root before sending anything", async () => {
    const small = bed.ips[3]!;
    await on(small, "mkdir -p /var/lib/sealant && mount -t tmpfs -o size=1m tmpfs /var/lib/sealant");
    try {
      const spec = etcdSpec(bed, "full", image, [bed.ips[0]!, small]);
      const err = await applyCluster({ session: bed.session, spec }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as Error).message).toMatch(
        new RegExp(`${small.replace(/\./g, "\\.")}: not enough free disk for the image under /var/lib/sealant/full: needs \\d+ MiB .* 1 MiB free`),
      );
      for (const ip of [bed.ips[0]!, small]) expect(await on(ip, "ls -A /var/lib/sealant/full 2>/dev/null || true"), ip).toBe("");
    } finally {
      await on(small, "umount /var/lib/sealant");
    }
  }, 60_000);

  it("names a wrong password, an unknown host key under strict, and an unreachable host", async () => {
    const wrongPassword = parseClusterSpec({
      name: "creds",
      image,
      hosts: [{ ips: [bed.ips[0]!], roles: ["master"] }],
      ssh: { password: "not-the-password", knownHosts: bed.sandbox.ssh.knownHosts },
    });
    const e1 = await applyCluster({ session: bed.session, spec: wrongPassword }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(HostsError);
    expect((e1 as Error).message).toMatch(/127\.0\.10\.191: .*authentication/i);
    expect((e1 as Error).message).not.toContain("not-the-password");

    const unknownKey = parseClusterSpec({
      name: "keys",
      image,
      hosts: [{ ips: [bed.ips[0]!], roles: ["master"] }],
      ssh: { privateKeyPath: bed.sandbox.ssh.pk },
    });
    const e2 = await applyCluster({ session: bed.session, spec: unknownKey }).catch((e: unknown) => e);
    expect((e2 as Error).message).toMatch(/127\.0\.10\.191: .*SHA256:[A-Za-z0-9+/]{43}/);
    expect((e2 as Error).message).toMatch(/ssh\.fingerprints: \{"127\.0\.10\.191": "SHA256:/);
    expect((e2 as Error).message).toContain("ssh.hostKeyPolicy: accept-new");

    const unreachable = etcdSpec(bed, "gone", image, [bed.ips[0]!, "127.0.10.199"], { timeouts: { connect: 2 }, ssh: ssh(bed) });
    const e3 = await applyCluster({ session: bed.session, spec: unreachable }).catch((e: unknown) => e);
    expect((e3 as Error).message).toMatch(/127\.0\.10\.199: .*(refused|ECONNREFUSED)/i);
    expect((e3 as Error).message).not.toMatch(/127\.0\.10\.191:/);
  }, 60_000);

  it("rejects duplicate IPs, a host in two groups and typos before connecting anywhere", () => {
    const base = { name: "bad", image, ssh: ssh(bed) };
    expect(() => parseClusterSpec({ ...base, hosts: [{ ips: [bed.ips[0]!, bed.ips[0]!], roles: ["master"] }] })).toThrow(/127\.0\.10\.191/);
    expect(() =>
      parseClusterSpec({
        ...base,
        hosts: [
          { ips: [bed.ips[0]!], roles: ["master"] },
          { ips: [bed.ips[0]!], roles: ["node"] },
        ],
      }),
    ).toThrow(/hosts\[1\]\.ips\[0\].*127\.0\.10\.191/s);
    expect(() => parseClusterSpec({ ...base, hosts: [{ ips: [bed.ips[0]!], roles: ["master"] }], sshh: {} })).toThrow(/sshh/);
  });
});
