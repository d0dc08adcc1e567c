import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Digest } from "../../../../src/engine/image/digest";
import { applyCluster, resetCluster, type ClusterEvent } from "../../../../src/engine/cluster";
import { openBed, type Bed } from "../../../support/bed";
import { buildEtcd, etcdHealthy, etcdSpec } from "../../../support/etcd";
import { HostLayout } from "../../../../src/engine/cluster/host/layout";
import { layersFor } from "../../../../src/engine/cluster/host/distribute";
import { resolveClusterImage } from "../../../../src/engine/cluster/host/image";
import {
  authorizeSender,
  cleanUpRelay,
  hostPublicKeys,
  prepareRelay,
  receiveCommand,
  relayDir,
  relayKey,
  sendBlob,
  writeKnownHosts,
} from "../../../../src/engine/cluster/host/relay";
import { RelayPlacer } from "../../../../src/engine/cluster/host/relay-placer";
import { shellQuote, SshConnection } from "../../../../src/engine/ssh";
import { onHost, runOnHost } from "../../../support/hosts";

/**
 * Relay distribution on five real sandbox hosts: the operator sends each layer to the seeds
 * only, the other hosts get it from a host that has it (ssh between the hosts with a key made
 * for the apply), every blob's digest is checked, nothing of it stays on any host, and a host
 * that cannot relay leaves the hosts below it to a direct send.
 */
describe("relay distribution", () => {
  let bed: Bed;
  let image: string;
  let imageBytes: number;
  let layerCount: number;
  beforeAll(async () => {
    bed = await openBed(5, 196); // 127.0.10.196-200
    const { session } = bed;
    image = await buildEtcd(bed, "example/etcd:relay");
    const manifest = await session.store.readManifest(image.split("@")[1]! as Digest);
    imageBytes = manifest.layers.reduce((n, l) => n + l.size, 0);
    layerCount = manifest.layers.length;
  }, 180_000);
  afterAll(async () => {
    await bed?.close();
  });

  const on = (ip: string, cmd: string) => onHost(bed.sandbox, ip, cmd);
  /** What relaying could leave behind on a host: the relay directory, authorised entries. */
  const leftovers = async (ip: string, cluster: string) =>
    on(
      ip,
      `ls -d /var/lib/sealant/${cluster}/relay 2>/dev/null; grep -c sealant-relay /root/.ssh/authorized_keys || true; ps -eo args | grep -cE '[C]ontrolPath|relay/c[m][.]' || true`,
    );
  const layersOn = (ip: string, cluster: string) => on(ip, `ls /var/lib/sealant/${cluster}/layers | sort`);

  it("GIVEN 5 hosts and fanout 2 WHEN applied THEN the operator sends each layer once, the other hosts relay it, and nothing of the relay is left", async () => {
    const spec = etcdSpec(bed, "relay", image, bed.ips, { distribution: { mode: "relay", fanout: 2 } });
    const events: ClusterEvent[] = [];
    const r = await applyCluster({ session: bed.session, spec, onEvent: (e) => events.push(e) });

    const steps = r.plan.phases.find((p) => p.name === "distribute")!.steps;
    expect(steps.map((s) => s.via)).toEqual([undefined, bed.ips[0], bed.ips[0], bed.ips[1], bed.ips[1]]);
    expect(steps[4]!.description).toMatch(new RegExp(`via ${bed.ips[1]!.replace(/\./g, "\\.")}$`));
    // The seed got every layer's blob from the operator; the relayed hosts nothing from it.
    expect(r.sent[bed.ips[0]!]).toBe(imageBytes);
    for (const ip of bed.ips.slice(1)) expect(r.sent[ip]).toBe(0);
    expect(events.filter((e) => e.type === "warning")).toEqual([]);

    const seedLayers = await layersOn(bed.ips[0]!, "relay");
    expect(seedLayers.split("\n").length).toBe(layerCount);
    for (const ip of bed.ips) {
      expect(await layersOn(ip, "relay")).toBe(seedLayers);
      // The same files as the seed's, byte for byte.
      expect(await on(ip, "cd /var/lib/sealant/relay/layers && find . -type f -exec sha256sum {} + | sort | sha256sum")).toBe(
        await on(bed.ips[0]!, "cd /var/lib/sealant/relay/layers && find . -type f -exec sha256sum {} + | sort | sha256sum"),
      );
      expect(await leftovers(ip, "relay")).toBe("0\n0");
    }
    expect(await etcdHealthy(bed.ips)).toBe(true);
    await resetCluster({ session: bed.session, spec });
  }, 300_000);

  it("GIVEN a relaying host without an ssh client WHEN applied THEN the hosts below it get the layers from the operator, with a warning", async () => {
    const [seed] = bed.ips;
    await on(seed!, "mv /usr/bin/ssh /usr/bin/ssh.relay-test");
    try {
      const spec = etcdSpec(bed, "fallback", image, bed.ips, { distribution: { mode: "relay", fanout: 2 } });
      const events: ClusterEvent[] = [];
      const r = await applyCluster({ session: bed.session, spec, onEvent: (e) => events.push(e) });
      // Hosts 2 and 3 relay from the seed without ssh: each falls back; hosts 4 and 5 relay from host 2.
      expect(r.sent[bed.ips[1]!]).toBeGreaterThan(0);
      expect(r.sent[bed.ips[2]!]).toBeGreaterThan(0);
      expect(r.sent[bed.ips[3]!]).toBe(0);
      expect(r.sent[bed.ips[4]!]).toBe(0);
      const warned = events.filter((e): e is Extract<ClusterEvent, { type: "warning" }> => e.type === "warning");
      expect(warned.map((w) => w.host).sort()).toEqual([bed.ips[1], bed.ips[2]].sort());
      expect(warned[0]!.text).toContain(`from ${seed}`);
      const expected = await layersOn(bed.ips[1]!, "fallback");
      for (const ip of bed.ips) {
        expect(await layersOn(ip, "fallback")).toBe(expected);
        expect(await leftovers(ip, "fallback")).toBe("0\n0");
      }
      expect(await etcdHealthy(bed.ips)).toBe(true);
      await resetCluster({ session: bed.session, spec });
    } finally {
      await on(seed!, "mv /usr/bin/ssh.relay-test /usr/bin/ssh");
    }
  }, 300_000);

  it("GIVEN a relaying host whose tail cannot follow a writer WHEN applied THEN it passes layers on once placed, all relayed, no warning", async () => {
    const host = bed.ips[1]!; // relays to hosts 4 and 5
    // A tail without --pid (busybox's, say): the relay falls back to store and forward on this host.
    await onHost(bed.sandbox, host, "cat > /usr/local/bin/tail && chmod 755 /usr/local/bin/tail", {
      input: '#!/bin/sh\ncase " $* " in *--pid*) echo "tail: unrecognized option --pid" >&2; exit 1;; esac\nexec /usr/bin/tail "$@"\n',
    });
    try {
      const spec = etcdSpec(bed, "forward", image, bed.ips, { distribution: { mode: "relay", fanout: 2 } });
      const events: ClusterEvent[] = [];
      const r = await applyCluster({ session: bed.session, spec, onEvent: (e) => events.push(e) });
      expect(events.filter((e) => e.type === "warning")).toEqual([]);
      for (const ip of bed.ips.slice(1)) expect(r.sent[ip]).toBe(0);
      const expected = await layersOn(bed.ips[0]!, "forward");
      for (const ip of bed.ips) {
        expect(await layersOn(ip, "forward")).toBe(expected);
        expect(await leftovers(ip, "forward")).toBe("0\n0");
      }
      await resetCluster({ session: bed.session, spec });
    } finally {
      await on(host, "rm -f /usr/local/bin/tail");
    }
  }, 300_000);

  it("GIVEN a sender authorised on a receiver THEN its key runs nothing but the one blob write, and a blob that is not the layer is refused before anything is placed", async () => {
    const [sender, receiver] = [bed.ips[0]!, bed.ips[1]!];
    const layout = new HostLayout("/var/lib/sealant/transport");
    const connect = (ip: string) =>
      SshConnection.connect({ host: ip, user: "root", privateKeyPath: bed.sandbox.ssh.pk, hostKey: { knownHosts: [bed.sandbox.ssh.knownHosts] } });
    const [s, r] = await Promise.all([connect(sender), connect(receiver)]);
    try {
      const pf = [...(await resolveClusterImage(bed.session, image)).platforms.values()][0]!;
      const layer = layersFor(pf, false)[0]!;
      await Promise.all([prepareRelay(s, layout, "transport"), prepareRelay(r, layout, "transport")]);
      const key = await relayKey(s, layout);
      await writeKnownHosts(s, layout, { ip: receiver, port: 22 }, await hostPublicKeys(r));
      await authorizeSender(r, layout, "transport", key);
      // The receiver's placer, as an apply runs one per host: "ok", or why the layer was refused.
      const placer = new RelayPlacer(r, layout, relayDir(layout), 60_000);
      const place = () =>
        placer.place({ blob: layer.digest, want: layer.digest, gzip: true, keep: false, withRegistry: false, dir: layer.dir }).then(
          () => "ok",
          (err: Error) => err.message,
        );
      const viaKey = (command: string) =>
        runOnHost(
          bed.sandbox,
          sender,
          `ssh -F /dev/null -i ${layout.root}/relay/key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${layout.root}/relay/known_hosts.${receiver} ${receiver} ${command} < /etc/hostname`,
        );
      // A shell command, or a name that is not a digest, is refused by the forced command.
      expect((await viaKey("'touch /tmp/owned'")).code).toBe(2);
      expect((await viaKey("../../etc/x")).code).toBe(2);
      expect((await runOnHost(bed.sandbox, receiver, "ls /tmp/owned")).code).not.toBe(0);
      // The layer's own digest as the name: the bytes land, but they are not the layer.
      const hex = layer.digest.slice(7);
      expect((await viaKey(hex)).code).toBe(0);
      expect(await place()).toContain(`not ${layer.digest}`);
      expect(await on(receiver, `ls -A ${layout.root}/relay; ls ${layout.root}/layers 2>/dev/null | wc -l`)).toBe("0");
      // The real blob, sent by the sender's ssh as an apply does: placed, same files as extracting it here.
      const blob = await bed.session.store.readBlob(layer.digest);
      await onHost(bed.sandbox, sender, `base64 -d > /tmp/blob.${hex}`, { input: blob.toString("base64") });
      await on(sender, `cp /tmp/blob.${hex} ${layout.root}/relay/incoming.${hex}`);
      const peer = { ip: receiver, port: 22, user: "root" };
      await sendBlob(s, layout, peer, layer, 60_000, true);
      expect(await place()).toBe("ok");
      expect(await on(receiver, `ls ${layout.root}/layers`)).toBe(layer.dir);
      await on(receiver, `rm -rf ${layout.root}/layers`);

      // Cut-through: the sender's copy still arriving (its first half, a pause, the rest) is passed
      // on as it grows, and all of it arrives; sent before any of it has arrived, it is waited for.
      const half = Math.floor(blob.length / 2);
      const arriving = (rest: string) =>
        on(
          sender,
          `rm -f ${layout.root}/relay/*.${hex}; setsid -f sh -c ${shellQuote(`sleep 1; (head -c ${half} /tmp/blob.${hex}; ${rest}) | { ${receiveCommand(layout, layer)}; }`)} > /dev/null 2>&1 < /dev/null`,
        );
      await arriving(`sleep 3; tail -c +${half + 1} /tmp/blob.${hex}`);
      const t0 = Date.now();
      // The sender says when it begins to read its copy (the hosts below the receiver are asked then): once the first half is there.
      let sendingAt = 0;
      await sendBlob(s, layout, peer, layer, 60_000, true, undefined, () => (sendingAt = Date.now()));
      expect(Date.now() - t0).toBeGreaterThan(3000);
      expect(sendingAt - t0).toBeGreaterThan(900);
      expect(Date.now() - sendingAt).toBeGreaterThan(2500);
      expect(await place()).toBe("ok");
      expect(await on(receiver, `ls ${layout.root}/layers`)).toBe(layer.dir);
      await on(receiver, `rm -rf ${layout.root}/layers`);
      // The sender's own copy cut short (its writer ended half-way): the receiver refuses what it got, nothing placed.
      await arriving("true");
      await sendBlob(s, layout, peer, layer, 60_000, true);
      expect(await place()).toContain(`not ${layer.digest}`);
      await placer.close();
      expect(await on(receiver, `ls -A ${layout.root}/relay; ls ${layout.root}/layers 2>/dev/null | wc -l`)).toBe("0");
      await Promise.all([cleanUpRelay(s, layout, "transport"), cleanUpRelay(r, layout, "transport")]);
      for (const ip of [sender, receiver]) expect(await leftovers(ip, "transport")).toBe("0\n0");
    } finally {
      await on(receiver, `rm -rf ${layout.root}`);
      await on(sender, `rm -rf ${layout.root} /tmp/blob.*`);
      await Promise.all([s.close(), r.close()]);
    }
  }, 120_000);
});
