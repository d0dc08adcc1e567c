import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCluster, resetCluster, type ClusterEvent } from "../../../../src/engine/cluster";
import { extractedSize } from "../../../../src/engine/cluster/host/distribute";
import { resolveClusterImage } from "../../../../src/engine/cluster/host/image";
import { parseClusterSpec } from "../../../../src/engine/cluster/spec";
import { build } from "../../../../src/engine/build";
import { openBed, type Bed } from "../../../support/bed";
import { onHost } from "../../../support/hosts";

/**
 * A gzip layer gzip hardly shrinks (random bytes here; the registry/ layer of a cluster image in
 * practice) travels down the relay tree as plain tar — the operator gunzips it once, no host runs
 * `gzip -d` for it, each checks the tar against the layer's diffID — while a layer gzip does
 * shrink stays gzip on the wire (the operator's link is the scarce thing). Every host's gzip is
 * a wrapper that logs each run, so what the hosts inflated is counted.
 */
describe("relay: incompressible layers travel as plain tar", () => {
  let bed: Bed;
  let image: string;
  beforeAll(async () => {
    bed = await openBed(3, 251); // 127.0.10.251-253
    const context = join(bed.home, "context");
    await mkdir(join(context, "noise"), { recursive: true });
    await mkdir(join(context, "text"), { recursive: true });
    await writeFile(join(context, "noise", "data.bin"), randomBytes(3 << 20));
    await writeFile(join(context, "text", "words"), "relayed as gzip\n".repeat(100_000));
    await writeFile(join(context, "Kubefile"), "FROM scratch\nLABEL io.sealant.runtime=hooks\nCOPY noise noise\nCOPY text text\n");
    const r = await build(bed.session, { context, tag: "relay/plain:1" });
    image = `relay/plain:1@${r.digest}`;
    for (const ip of bed.ips)
      await onHost(bed.sandbox, ip, "cat > /usr/local/bin/gzip && chmod 755 /usr/local/bin/gzip", {
        input: '#!/bin/sh\necho "$*" >> /tmp/gzip-runs\nexec /bin/gzip "$@"\n',
      });
  }, 180_000);
  afterAll(async () => {
    await bed?.close();
  });

  it("GIVEN a chain of 3 hosts WHEN applied THEN the random layer reaches every host as plain tar, no host inflates it, the text layer stays gzip", async () => {
    const spec = parseClusterSpec({
      name: "relayplain",
      image,
      hosts: [{ ips: bed.ips, roles: ["master"] }],
      ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts },
      distribution: { mode: "relay", fanout: 1 },
    });
    const events: ClusterEvent[] = [];
    const r = await applyCluster({ session: bed.session, spec, onEvent: (e) => events.push(e) });
    expect(events.filter((e) => e.type === "warning")).toEqual([]);

    const [noise, text] = [...(await resolveClusterImage(bed.session, image)).platforms.values()][0]!.layers;
    // The seed got the random layer's tar (not its blob) and the text layer's blob; the others nothing from the operator.
    expect(r.sent[bed.ips[0]!]).toBe((await extractedSize(bed.session.store, noise!)) + text!.size);
    expect(r.sent[bed.ips[1]!]).toBe(0);
    expect(r.sent[bed.ips[2]!]).toBe(0);
    for (const ip of bed.ips) {
      // One inflation per host: the text layer's.
      expect(await onHost(bed.sandbox, ip, "cat /tmp/gzip-runs")).toBe("-d");
      expect(await onHost(bed.sandbox, ip, "sha256sum < /var/lib/sealant/relayplain/rootfs/noise/data.bin")).toBe(
        await onHost(bed.sandbox, bed.ips[0]!, "sha256sum < /var/lib/sealant/relayplain/rootfs/noise/data.bin"),
      );
      expect(await onHost(bed.sandbox, ip, "wc -c < /var/lib/sealant/relayplain/rootfs/text/words")).toBe("1600000");
      expect(await onHost(bed.sandbox, ip, "ls -d /var/lib/sealant/relayplain/relay 2>/dev/null || true")).toBe("");
    }
    await resetCluster({ session: bed.session, spec });
  }, 300_000);
});
