import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCluster, resetCluster, type ClusterEvent } from "../../../../src/engine/cluster";
import { parseClusterSpec } from "../../../../src/engine/cluster/spec";
import { sandboxDown, sandboxUp, type Sandbox } from "../../../../src/engine/sandbox";
import { Session } from "../../../../src/engine/session";
import type { Bed } from "../../../support/bed";
import { buildEtcd, etcdHealthy } from "../../../support/etcd";
import { inHost } from "../../../support/hosts";

/**
 * Relay distribution on hosts as production has them: root login refused, a `deploy` user whose
 * sudo asks for its password. The relay key is the login user's (authorised in deploy's own
 * authorized_keys, the blob written as deploy); only extracting it into the data root is root's.
 */
describe("relay distribution through a sudo user", () => {
  let bed: Bed;
  let sb: Sandbox;
  let image: string;
  beforeAll(async () => {
    const home = await mkdtemp(join(tmpdir(), "sealant-relay-user-"));
    const session = await Session.open({ home });
    sb = await sandboxUp(3, { name: "relay-user", dir: join(home, "sandbox"), firstIndex: 247, user: { name: "deploy", sudo: "password" } }); // 127.0.10.247-249
    bed = {
      home,
      session,
      sandbox: sb,
      ips: sb.hosts.map((h) => h.ip),
      events: [],
      close: async () => {
        session.close();
        await sandboxDown(sb).catch(() => undefined);
        await rm(home, { recursive: true, force: true });
      },
    };
    image = await buildEtcd(bed, "example/etcd:relay-user");
  }, 180_000);
  afterAll(async () => {
    await bed?.close();
  });

  it("GIVEN fanout 1 on 3 hosts WHEN applied THEN a chain: the operator sends to the first only, and deploy's authorized_keys is as it was", async () => {
    const keysBefore = await Promise.all(bed.ips.map((ip) => inHost(sb, ip, "cat /home/deploy/.ssh/authorized_keys")));
    const spec = parseClusterSpec({
      name: "relayuser",
      image,
      hosts: [{ ips: bed.ips, roles: ["master"] }],
      ssh: { user: "deploy", password: sb.ssh.passwd, privateKeyPath: sb.ssh.pk, knownHosts: sb.ssh.knownHosts },
      distribution: { mode: "relay", fanout: 1 },
    });
    const events: ClusterEvent[] = [];
    const r = await applyCluster({ session: bed.session, spec, onEvent: (e) => events.push(e) });
    expect(r.plan.phases.find((p) => p.name === "distribute")!.steps.map((s) => s.via)).toEqual([undefined, bed.ips[0], bed.ips[1]]);
    expect(events.filter((e) => e.type === "warning")).toEqual([]);
    expect(r.sent[bed.ips[0]!]).toBeGreaterThan(0);
    expect(r.sent[bed.ips[1]!]).toBe(0);
    expect(r.sent[bed.ips[2]!]).toBe(0);
    const layers = await inHost(sb, bed.ips[0]!, "ls /var/lib/sealant/relayuser/layers");
    for (const [i, ip] of bed.ips.entries()) {
      expect(await inHost(sb, ip, "ls /var/lib/sealant/relayuser/layers")).toBe(layers);
      expect(await inHost(sb, ip, "cat /home/deploy/.ssh/authorized_keys")).toBe(keysBefore[i]);
      expect(await inHost(sb, ip, "ls -d /var/lib/sealant/relayuser/relay 2>/dev/null || true")).toBe("");
    }
    expect(await etcdHealthy(bed.ips)).toBe(true);
    await resetCluster({ session: bed.session, spec });
  }, 300_000);
});
