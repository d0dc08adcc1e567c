import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Digest } from "../../../../src/engine/image/digest";
import { applyCluster, resetCluster, type ClusterEvent } from "../../../../src/engine/cluster";
import { openBed, type Bed } from "../../../support/bed";
import { buildEtcd, etcdHealthy, etcdSpec } from "../../../support/etcd";
import { onHost } from "../../../support/hosts";
import { HostLayout } from "../../../../src/engine/cluster/host/layout";
import { authorizeSender, prepareRelay, relayKey } from "../../../../src/engine/cluster/host/relay";
import { SshConnection } from "../../../../src/engine/ssh";
import { clusterHost, type ClusterHost } from "../../../../src/engine/cluster/host/connect";
import { relayBlockers } from "../../../../src/engine/cluster/host/relay-probe";
import { resolveHosts } from "../../../../src/engine/cluster/spec";

/**
 * The default distribution (auto) on four real sandbox hosts: it relays from three hosts up,
 * a host whose sshd cannot take the relay's key gets the image from the operator after a
 * check of a few seconds (an info line under auto, a warning under relay), and with relaying
 * a join still touches only the joining hosts and the first master, and an upgrade moves only
 * the changed layer.
 */
describe("auto distribution", () => {
  let bed: Bed;
  let image: string;
  let upgraded: string;
  let imageBytes: number;
  let changed: { digest: string; size: number };
  /** The digest's hex of the layer the upgrade replaces. */
  let replacedHex: string;
  beforeAll(async () => {
    bed = await openBed(4, 76); // 127.0.10.76-79
    image = await buildEtcd(bed, "example/etcd:relay-auto");
    // The same image but for one file under etc/: its last layer differs, the others are the same.
    upgraded = await buildEtcd(bed, "example/etcd:relay-auto-2", async (dir) => {
      const { appendFile } = await import("node:fs/promises");
      const { readdir } = await import("node:fs/promises");
      const file = join(dir, "etc", (await readdir(join(dir, "etc")))[0]!);
      await appendFile(file, "\n# upgraded\n");
    });
    const before = await bed.session.store.readManifest(image.split("@")[1]! as Digest);
    const after = await bed.session.store.readManifest(upgraded.split("@")[1]! as Digest);
    imageBytes = before.layers.reduce((n, l) => n + l.size, 0);
    const fresh = after.layers.filter((l) => !before.layers.some((b) => b.digest === l.digest));
    expect(fresh).toHaveLength(1);
    changed = fresh[0]!;
    replacedHex = before.layers.find((l) => !after.layers.some((a) => a.digest === l.digest))!.digest.slice("sha256:".length);
  }, 240_000);
  afterAll(async () => {
    await bed?.close();
  });

  const on = (ip: string, cmd: string) => onHost(bed.sandbox, ip, cmd);
  /** What relaying could leave behind on a host: the relay directory, authorised entries. */
  const leftovers = (ip: string, cluster: string) =>
    on(ip, `ls -d /var/lib/sealant/${cluster}/relay 2>/dev/null; grep -c sealant-relay /root/.ssh/authorized_keys || true`);
  /** ssh logins the host's sshd accepted so far (its log). */
  const logins = async (i: number) =>
    (await readFile(join(bed.sandbox.hosts[i]!.dir, "host.log"), "utf8")).split("\n").filter((l) => /Accepted \w+ for/.test(l)).length;
  /** Each layer directory on the host with its inode: a layer sent again is a new directory. */
  const layerInodes = (ip: string, cluster: string) => on(ip, `cd /var/lib/sealant/${cluster}/layers && stat -c '%n %i' * | sort`);

  /** Host 4's sshd reads keys from /etc/ssh/keys/<user> (the operator's key copied there), not ~/.ssh/authorized_keys. */
  async function keysElsewhere<T>(body: () => Promise<T>): Promise<T> {
    const ip = bed.ips[3]!;
    const sshd = async (script: string) => {
      await on(ip, `${script}; kill -HUP 1`);
      // sshd re-executes itself on SIGHUP: wait until it answers again.
      for (let i = 0; i < 50; i++) {
        if (
          await on(ip, "true").then(
            () => true,
            () => false,
          )
        )
          return;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await sshd(
      "mkdir -p /etc/ssh/keys && cp /root/.ssh/authorized_keys /etc/ssh/keys/root && sed -i 's|^AuthorizedKeysFile .*|AuthorizedKeysFile /etc/ssh/keys/%u|' /etc/ssh/sshd_config",
    );
    try {
      return await body();
    } finally {
      await sshd("sed -i 's|^AuthorizedKeysFile .*|AuthorizedKeysFile .ssh/authorized_keys|' /etc/ssh/sshd_config && rm -rf /etc/ssh/keys");
    }
  }

  it("GIVEN no distribution and 4 hosts, one whose sshd reads another keys file WHEN applied THEN it relays to the others, that host gets the image directly with an info line (no warning) within seconds, and nothing is left", async () => {
    await keysElsewhere(async () => {
      const spec = etcdSpec(bed, "auto", image, bed.ips);
      expect(spec.distribution).toEqual({ mode: "auto", fanout: 3 });
      const events: { at: number; e: ClusterEvent }[] = [];
      const r = await applyCluster({ session: bed.session, spec, onEvent: (e) => events.push({ at: Date.now(), e }) });

      const [seed, a, b, odd] = bed.ips as [string, string, string, string];
      const steps = r.plan.phases.find((p) => p.name === "distribute")!.steps;
      expect(steps.map((s) => s.via)).toEqual([undefined, seed, seed, seed]);
      expect(r.plan.summary).toContain(`relay the image (auto: 4 hosts, relayed from 3; fanout 3): ${seed} from the operator; ${a}, ${b}, ${odd} via ${seed}`);
      // The operator sent the seed each layer's blob, the odd host the image directly, the others nothing.
      expect(r.sent[seed]).toBe(imageBytes);
      expect(r.sent[a]).toBe(0);
      expect(r.sent[b]).toBe(0);
      expect(r.sent[odd]).toBeGreaterThan(0);
      expect(events.filter(({ e }) => e.type === "warning")).toEqual([]);
      const infos = events.filter(({ e }) => e.type === "info" && e.text.includes("relaying the image"));
      expect(infos.map(({ e }) => (e as { text: string }).text)).toEqual([
        `${odd}: relaying the image from ${seed} cannot work (${odd}'s sshd reads keys from /etc/ssh/keys/%u, not the login user's ~/.ssh/authorized_keys where relaying authorises the sender): the operator sends it directly`,
      ]);
      // The check cost seconds, not a relay's ssh timing out (20 s).
      const distributeStart = events.find(({ e }) => e.type === "phase" && e.name === "distribute")!.at;
      expect(infos[0]!.at - distributeStart).toBeLessThan(5000);
      const expected = await on(seed, "ls /var/lib/sealant/auto/layers | sort");
      for (const ip of bed.ips) {
        expect(await on(ip, "ls /var/lib/sealant/auto/layers | sort")).toBe(expected);
        expect(await leftovers(ip, "auto"), ip).toBe("0");
      }
      expect(await etcdHealthy(bed.ips)).toBe(true);
      await resetCluster({ session: bed.session, spec });

      // Asked for relay explicitly, the same fallback is a warning.
      const relaySpec = etcdSpec(bed, "relayed", image, bed.ips, { distribution: { mode: "relay" } });
      const seen: ClusterEvent[] = [];
      const again = await applyCluster({ session: bed.session, spec: relaySpec, onEvent: (e) => seen.push(e) });
      expect(again.sent[odd]).toBeGreaterThan(0);
      expect(again.sent[a]).toBe(0);
      const warned = seen.filter((e): e is Extract<ClusterEvent, { type: "warning" }> => e.type === "warning");
      expect(warned.map((w) => [w.host, w.text.replace(/ \(.*\)/, "")])).toEqual([
        [odd, `relaying the image from ${seed} cannot work: the operator sends it directly`],
      ]);
      await resetCluster({ session: bed.session, spec: relaySpec });
    });
  }, 400_000);

  it("GIVEN relaying WHEN two nodes join THEN only they and the first master are touched, the operator sends the image once; WHEN upgraded THEN only the changed layer moves", async () => {
    const [first, member, x, y] = bed.ips as [string, string, string, string];
    /** The first host the one master (etcd's one member), the others nodes. */
    const grow = (ips: string[], img = image, distribution: unknown = { mode: "relay" }) =>
      etcdSpec(bed, "grow", img, [first], {
        hosts: [
          { ips: [first], roles: ["master"] },
          { ips: ips.slice(1), roles: ["node"] },
        ],
        ...(distribution ? { distribution } : {}),
      });
    await applyCluster({ session: bed.session, spec: grow([first, member]) });

    const memberLogins = await logins(1);
    const join = await applyCluster({ session: bed.session, spec: grow(bed.ips) });
    expect(join.plan.phases.find((p) => p.name === "distribute")!.steps.map((s) => [s.host, s.via])).toEqual([
      [x, undefined],
      [y, x],
    ]);
    expect(join.sent).toEqual({ [x]: imageBytes, [y]: 0 });
    // The member that is not the first master was not logged into at all (by the operator or a relaying host).
    expect(await logins(1)).toBe(memberLogins);
    expect(await etcdHealthy([first])).toBe(true);

    // Upgrade with the default (auto: 4 hosts relay): only the changed layer travels, once from the operator.
    const before = await Promise.all(bed.ips.map((ip) => layerInodes(ip, "grow")));
    const up = await applyCluster({ session: bed.session, spec: grow(bed.ips, upgraded, undefined) });
    expect(up.plan.actions).toContain("upgrade");
    expect(up.plan.phases.find((p) => p.name === "distribute")!.steps.map((s) => s.via)).toEqual([undefined, first, first, first]);
    expect(up.sent).toEqual({ [first]: changed.size, [member]: 0, [x]: 0, [y]: 0 });
    const hex = changed.digest.slice("sha256:".length);
    for (const [i, ip] of bed.ips.entries()) {
      const now = (await layerInodes(ip, "grow")).split("\n");
      // Every layer directory of a layer both images share stays the very same directory (not sent
      // again); the old image's own layer is pruned, the one new directory is the changed layer's.
      const had = before[i]!.split("\n");
      expect(
        had.filter((l) => !l.startsWith(replacedHex)),
        ip,
      ).toEqual(now.filter((l) => !l.startsWith(hex)));
      expect(now.filter((l) => !had.includes(l)).map((l) => l.split(" ")[0]!.split(".")[0])).toEqual([hex]);
      expect(await leftovers(ip, "grow"), ip).toBe("0");
    }
    expect(await etcdHealthy([first])).toBe(true);
    await resetCluster({ session: bed.session, spec: grow(bed.ips, upgraded) });
  }, 400_000);

  it("GIVEN relay keys and directories an apply that died left WHEN a host is removed, then the cluster reset THEN they are gone from both, other keys kept", async () => {
    const [first, second] = bed.ips as [string, string];
    const spec = etcdSpec(bed, "dead", image, [first], {
      hosts: [
        { ips: [first], roles: ["master"] },
        { ips: [second], roles: ["node"] },
      ],
    });
    await applyCluster({ session: bed.session, spec });
    // What a relaying apply had put on the hosts when it was killed: each host's relay directory
    // and key, and the other's key authorised on it (relay.ts, the very functions an apply uses).
    const layout = new HostLayout("/var/lib/sealant/dead");
    const connect = (ip: string) =>
      SshConnection.connect({ host: ip, user: "root", privateKeyPath: bed.sandbox.ssh.pk, hostKey: { knownHosts: [bed.sandbox.ssh.knownHosts] } });
    const conns = await Promise.all([connect(first), connect(second)]);
    const keysBefore = await Promise.all([first, second].map((ip) => on(ip, "cat /root/.ssh/authorized_keys")));
    try {
      await Promise.all(conns.map((c) => prepareRelay(c, layout, "dead")));
      const keys = await Promise.all(conns.map((c) => relayKey(c, layout)));
      await authorizeSender(conns[1]!, layout, "dead", keys[0]!);
      await authorizeSender(conns[0]!, layout, "dead", keys[1]!);
    } finally {
      await Promise.all(conns.map((c) => c.close()));
    }
    for (const ip of [first, second]) expect(await leftovers(ip, "dead"), ip).toBe("/var/lib/sealant/dead/relay\n1");

    // The node removed: its files go, its authorised relay key with them.
    await applyCluster({ session: bed.session, spec: etcdSpec(bed, "dead", image, [first]) });
    expect(await leftovers(second, "dead")).toBe("0");
    expect(await on(second, "cat /root/.ssh/authorized_keys")).toBe(keysBefore[1]);
    // The cluster reset: the same on the first host.
    await resetCluster({ session: bed.session, spec: etcdSpec(bed, "dead", image, [first]) });
    expect(await leftovers(first, "dead")).toBe("0");
    expect(await on(first, "cat /root/.ssh/authorized_keys")).toBe(keysBefore[0]);
  }, 300_000);

  it("GIVEN hosts the operator reaches by other addresses than their cluster IPs THEN the check says in seconds which hop cannot work and why", async () => {
    const [sender, receiver, other] = bed.ips as [string, string, string];
    const spec = etcdSpec(bed, "probe", image, [sender, receiver, other]);
    const hosts = new Map(resolveHosts(spec).map((h) => [h.ip, clusterHost(h)]));
    const conns = new Map<string, Promise<SshConnection>>();
    /** The operator's connection to where it reaches the host (`address`), as the cluster's pool makes it. */
    const connOf = (h: ClusterHost) => {
      let c = conns.get(h.address);
      if (!c) {
        c = SshConnection.connect({ host: h.address, user: "root", privateKeyPath: bed.sandbox.ssh.pk, hostKey: { knownHosts: [bed.sandbox.ssh.knownHosts] } });
        conns.set(h.address, c);
      }
      return c;
    };
    // The operator reaches the receiver at its sandbox address, but the cluster names it by an IP
    // the other hosts cannot reach (nothing listens there); the third is named by another host's IP.
    const unreachable = { ...hosts.get(receiver)!, ip: "127.0.76.79" };
    const elsewhere = { ...hosts.get(other)!, ip: receiver };
    const started = Date.now();
    try {
      const blocked = await relayBlockers(connOf, [
        { sender: hosts.get(sender)!, receiver: unreachable },
        { sender: hosts.get(sender)!, receiver: elsewhere },
        // A hop that works is not named.
        { sender: hosts.get(other)!, receiver: hosts.get(sender)! },
      ]);
      expect(Date.now() - started).toBeLessThan(6000);
      expect([...blocked].sort()).toEqual([
        [receiver, `at ${receiver}, ${sender} reaches an sshd whose host keys are not ${receiver}'s`],
        ["127.0.76.79", `${sender} cannot reach 127.0.76.79's sshd at 127.0.76.79 (no answer in 3 s)`],
      ]);
    } finally {
      for (const c of conns.values()) await (await c).close();
    }
  }, 60_000);
});
