import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Digest } from "../../../../src/engine/image/digest";
import { HostLayout } from "../../../../src/engine/cluster/host/layout";
import {
  authorizeSender,
  cleanUpRelay,
  hostPublicKeys,
  prepareRelay,
  receiveCommand,
  relayKey,
  writeKnownHosts,
} from "../../../../src/engine/cluster/host/relay";
import { RelayStream } from "../../../../src/engine/cluster/host/relay-stream";
import type { HostLayer } from "../../../../src/engine/cluster/host/distribute";
import { sandboxDown, sandboxUp, type Sandbox } from "../../../../src/engine/sandbox";
import { shellQuote, SshConnection } from "../../../../src/engine/ssh";
import { onHost } from "../../../support/hosts";

/**
 * All the layers one host passes another go in one SSH session (relay-stream.ts), each written
 * on the receiver exactly: its own bytes, no byte of the next. One sandbox host plays sender and
 * receiver (two data roots, ssh to itself with the relay's key), as the apply sets them up.
 */
describe("relay: one stream per pair of hosts", () => {
  let sb: Sandbox;
  let home: string;
  let conn: SshConnection;
  const sender = new HostLayout("/var/lib/sealant/streamfrom");
  const receiver = new HostLayout("/var/lib/sealant/streamto");
  const ip = () => sb.hosts[0]!.ip;
  const on = (cmd: string) => onHost(sb, ip(), cmd);

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "sealant-relay-stream-"));
    sb = await sandboxUp(1, { name: "relay-stream", dir: join(home, "sandbox"), firstIndex: 254 }); // 127.0.10.254
    conn = await SshConnection.connect({ host: ip(), user: "root", privateKeyPath: sb.ssh.pk, hostKey: { knownHosts: [sb.ssh.knownHosts] } });
    await Promise.all([prepareRelay(conn, sender, "streamfrom"), prepareRelay(conn, receiver, "streamto")]);
    await writeKnownHosts(conn, sender, { ip: ip(), port: 22 }, await hostPublicKeys(conn));
    expect(await authorizeSender(conn, receiver, "streamto", await relayKey(conn, sender))).toBe(true);
  }, 60_000);
  afterAll(async () => {
    if (conn) await Promise.all([cleanUpRelay(conn, sender, "streamfrom"), cleanUpRelay(conn, receiver, "streamto")]).catch(() => undefined);
    await conn?.close();
    if (sb) await sandboxDown(sb).catch(() => undefined);
    if (home) await rm(home, { recursive: true, force: true });
  });

  const layerOf = (bytes: Buffer): HostLayer => {
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}` as Digest;
    return { digest, size: bytes.length, mediaType: "application/vnd.oci.image.layer.v1.tar", registryOnly: false, withRegistry: true, dir: digest.slice(7) };
  };
  /** The blob arriving on the sender as the operator's receive writes it, `pause` seconds in. */
  const arriving = (layer: HostLayer, bytes: Buffer, pause: number) => {
    const half = Math.floor(bytes.length / 2);
    const file = `/tmp/stream.${layer.digest.slice(7)}`;
    return onHost(sb, ip(), `base64 -d > ${file}`, { input: bytes.toString("base64") }).then(() =>
      on(
        `setsid -f sh -c ${shellQuote(`(head -c ${half} ${file}; sleep ${pause}; tail -c +${half + 1} ${file}; rm -f ${file}) | { ${receiveCommand(sender, layer)}; }`)} > /dev/null 2>&1 < /dev/null`,
      ),
    );
  };
  const received = (layer: HostLayer) => on(`sha256sum < ${receiver.root}/relay/incoming.${layer.digest.slice(7)} | cut -c 1-64`);

  it("GIVEN three layers, one still arriving on the sender WHEN streamed in one session THEN each lands whole on the receiver, no byte of the next in it", async () => {
    const blobs = [randomBytes(300_000), randomBytes(5), randomBytes(1 << 20)];
    const layers = blobs.map(layerOf);
    await arriving(layers[0]!, blobs[0]!, 0);
    await arriving(layers[1]!, blobs[1]!, 0);
    await arriving(layers[2]!, blobs[2]!, 2);
    const stream = new RelayStream(conn, sender, { ip: ip(), port: 22, user: "root" }, true, 60_000);
    const sending: string[] = [];
    const t0 = Date.now();
    await Promise.all(layers.map((l) => stream.send(l.digest, l.size, () => sending.push(l.digest))));
    // The last one was read on as it grew: done only once its second half had come.
    expect(Date.now() - t0).toBeGreaterThan(1500);
    expect(sending).toEqual(layers.map((l) => l.digest));
    for (const l of layers) expect(await received(l)).toBe(l.digest.slice(7));
    // Nothing of the stream left running once it is closed.
    await stream.close();
    expect(await on("ps -eo args | grep -c '[h]ead -c' || true")).toBe("0");
  }, 60_000);

  it("GIVEN the sender's copy of a layer cut short WHEN the stream is stopped THEN the receiver's copy is short and the stream refuses later layers", async () => {
    const blob = randomBytes(400_000);
    const layer = layerOf(blob);
    const file = `/tmp/stream.${layer.digest.slice(7)}`;
    await onHost(sb, ip(), `base64 -d > ${file}`, { input: blob.toString("base64") });
    // Half of it, then its writer ends: the upstream copy failed.
    await on(`head -c 200000 ${file} | { ${receiveCommand(sender, layer)}; }; rm -f ${file}`);
    const stream = new RelayStream(conn, sender, { ip: ip(), port: 22, user: "root" }, true, 60_000);
    const sent = stream.send(layer.digest, layer.size);
    await new Promise((r) => setTimeout(r, 1500));
    stream.stop(new Error("the source's copy failed"));
    await expect(sent).rejects.toThrow("the source's copy failed");
    await expect(stream.send(layerOf(randomBytes(10)).digest, 10)).rejects.toThrow("the source's copy failed");
    await stream.close();
    expect(await on(`wc -c < ${receiver.root}/relay/incoming.${layer.digest.slice(7)}`)).toBe("200000");
    expect(await on("ps -eo args | grep -c '[h]ead -c' || true")).toBe("0");
  }, 60_000);
});
