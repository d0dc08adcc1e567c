import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Digest } from "../../../../src/engine/image/digest";
import type { HostLayer } from "../../../../src/engine/cluster/host/distribute";
import { HostLayout } from "../../../../src/engine/cluster/host/layout";
import { prepareRelay, relayDir } from "../../../../src/engine/cluster/host/relay";
import { RelayPlacer } from "../../../../src/engine/cluster/host/relay-placer";
import { sandboxDown, sandboxUp, type Sandbox } from "../../../../src/engine/sandbox";
import { SshConnection } from "../../../../src/engine/ssh";
import { onHost } from "../../../support/hosts";

/**
 * A relayed blob's digest is checked with whichever of openssl and sha256sum the host has
 * (openssl's SHA-256 is about 4x sha256sum's where the CPU has SHA instructions, and every host
 * hashes every layer): a host with only one of them still places the right blob and refuses a
 * wrong one, nothing placed.
 */
describe("relay: checking a blob's digest", () => {
  let sb: Sandbox;
  let home: string;
  let conn: SshConnection;
  let blob: Buffer;
  let layer: HostLayer;
  const layout = new HostLayout("/var/lib/sealant/relayhash");
  const ip = () => sb.hosts[0]!.ip;

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "sealant-relay-hash-"));
    sb = await sandboxUp(1, { name: "relay-hash", dir: join(home, "sandbox"), firstIndex: 250 }); // 127.0.10.250
    conn = await SshConnection.connect({ host: ip(), user: "root", privateKeyPath: sb.ssh.pk, hostKey: { knownHosts: [sb.ssh.knownHosts] } });
    // A layer as the image store holds it: a gzip'd tar of one file.
    const src = join(home, "layer");
    await mkdir(join(src, "etc"), { recursive: true });
    await writeFile(join(src, "etc", "relayed"), "relayed layer\n");
    execFileSync("tar", ["-czf", join(home, "layer.tar.gz"), "-C", src, "etc"]);
    blob = await readFile(join(home, "layer.tar.gz"));
    const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}` as Digest;
    layer = { digest, size: blob.length, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", registryOnly: false, withRegistry: false, dir: "" };
    layer.dir = layout.layer(digest, false).split("/").at(-1)!;
  }, 60_000);
  afterAll(async () => {
    await conn?.close();
    if (sb) await sandboxDown(sb).catch(() => undefined);
    if (home) await rm(home, { recursive: true, force: true });
  });

  /** The blob as it lands in the host's relay directory, then what the placer answers ("ok" or why not). */
  async function place(bytes: Buffer): Promise<string> {
    await prepareRelay(conn, layout, "relayhash");
    await onHost(sb, ip(), `base64 -d > ${layout.root}/relay/incoming.${layer.digest.slice(7)}`, { input: bytes.toString("base64") });
    const placer = new RelayPlacer(conn, layout, relayDir(layout), 30_000);
    try {
      await placer.place({ blob: layer.digest, want: layer.digest, gzip: true, keep: false, withRegistry: false, dir: layer.dir });
      return "ok";
    } catch (err) {
      return (err as Error).message;
    } finally {
      await placer.close();
    }
  }

  for (const hidden of ["/usr/bin/sha256sum", "/usr/bin/openssl"]) {
    it(`GIVEN a host without ${hidden} WHEN a blob is placed THEN the right one is extracted and a wrong one refused, nothing placed`, async () => {
      await onHost(sb, ip(), `mv ${hidden} ${hidden}.hidden`);
      try {
        const wrong = Buffer.from(blob);
        wrong[wrong.length - 1]! ^= 0xff;
        expect(await place(wrong)).toContain(`not ${layer.digest}`);
        expect(await onHost(sb, ip(), `ls -A ${layout.root}/relay; ls ${layout.root}/layers 2>/dev/null | wc -l`)).toBe("0");

        expect(await place(blob)).toBe("ok");
        expect(await onHost(sb, ip(), `cat ${layout.layer(layer.digest, false)}/etc/relayed; ls -A ${layout.root}/relay`)).toBe("relayed layer");
      } finally {
        await onHost(sb, ip(), `mv ${hidden}.hidden ${hidden}; rm -rf ${layout.root}`);
      }
    }, 60_000);
  }
});
