/**
 * Sending an image's layers to a real host (a sandbox host: real sshd, real tar) on the bulk
 * path: each layer file streams from a worker thread; a send whose worker dies is sent again;
 * an aborted one leaves no half layer.
 */
import { createHash, randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { build } from "../../../../src/engine/build";
import type { ClusterEvent } from "../../../../src/engine/cluster";
import type { HostFacts } from "../../../../src/engine/cluster/host/context";
import { distributeTo, layersFor } from "../../../../src/engine/cluster/host/distribute";
import { resolveClusterImage, type ClusterImage } from "../../../../src/engine/cluster/host/image";
import { HostLayout } from "../../../../src/engine/cluster/host/layout";
import { sandboxDown, sandboxUp, type Sandbox } from "../../../../src/engine/sandbox";
import { Session } from "../../../../src/engine/session";
import { bulkPool, SshConnection } from "../../../../src/engine/ssh";
import { onHost } from "../../../support/hosts";

const MiB = 1 << 20;
let home: string;
let session: Session;
let sb: Sandbox;
let ip: string;
let conn: SshConnection;
let image: ClusterImage;
const sha: Record<string, string> = {};
let savedTmpdir: string | undefined;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "sealant-distribute-"));
  // Plain copies of layers go to the temp directory: this file's own, so others' never show.
  await mkdir(join(home, "tmp"));
  savedTmpdir = process.env["TMPDIR"];
  process.env["TMPDIR"] = join(home, "tmp");
  session = await Session.open({ home });
  // 127.0.10.195: a fixed number, so test files starting at the same moment never pick the same free one.
  sb = await sandboxUp(1, { name: "test-distribute", dir: join(home, "sb"), firstIndex: 195 });
  ip = sb.hosts[0]!.ip;
  conn = await SshConnection.connect({ host: ip, privateKeyPath: sb.ssh.pk, hostKey: { knownHosts: sb.ssh.knownHosts } });
  // Two layers of random bytes (gzip cannot shrink them: sent as plain tar, gunzipped on the worker).
  const ctx = join(home, "ctx");
  for (const [name, size] of [
    ["a", 48 * MiB],
    ["b", 8 * MiB],
  ] as const) {
    await mkdir(join(ctx, name), { recursive: true });
    const data = randomBytes(size);
    sha[name] = createHash("sha256").update(data).digest("hex");
    await writeFile(join(ctx, name, "blob"), data);
  }
  await writeFile(join(ctx, "Kubefile"), "FROM scratch\nCOPY a a\nCOPY b b\n");
  await build(session, { context: ctx, tag: "distribute:1" });
  image = await resolveClusterImage(session, "distribute:1");
});

afterAll(async () => {
  if (savedTmpdir === undefined) delete process.env["TMPDIR"];
  else process.env["TMPDIR"] = savedTmpdir;
  await conn?.close().catch(() => undefined);
  if (sb) await sandboxDown(sb).catch(() => undefined);
  session?.close();
  await rm(home, { recursive: true, force: true });
});

/** The plain copies of layers (sealant-wire-*) in the temp directory now. */
const wireCopies = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith("sealant-wire-"));

const freshFacts = (): HostFacts => ({ arch: "amd64", hostname: "h", freeBytes: 1 << 40, clockSkewMs: 0, layers: new Set(), images: new Set() });

describe("distributing layers on worker threads", () => {
  it("GIVEN a worker thread that dies in the middle of a layer WHEN the layers are sent THEN that layer is sent again, and every byte arrives (digests checked on the host)", async () => {
    const root = "/var/tmp/dist-retry";
    const before = bulkPool().sends;
    const events: ClusterEvent[] = [];
    let killed: Promise<void> | undefined;
    const facts = freshFacts();
    const layout = new HostLayout(root);
    const platform = [...image.platforms.values()][0]!;
    await distributeTo(conn, {
      store: session.store,
      layout,
      imageDigest: image.digest,
      layers: layersFor(platform, false),
      facts,
      emit: (e) => {
        events.push(e);
        if (e.type === "progress" && e.bytes > 0) killed ??= bulkPool().stop();
      },
    });
    await killed;
    const warnings = events.filter((e) => e.type === "warning").map((e) => (e as { text: string }).text);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^sending layer sha256:[0-9a-f]{64} failed \(uploading to .*: sending .* \(worker thread\): the bulk-send worker thread exited .*\); sending it again$/,
    );
    // Both layers, plus the retried one, went through the pool.
    expect(bulkPool().sends - before).toBe(3);
    const rootfs = layout.rootfs(image.digest);
    const onHostSha = await onHost(sb, ip, `cd ${rootfs} && sha256sum a/blob b/blob`);
    expect(onHostSha.trim().split("\n")).toEqual([`${sha["a"]}  a/blob`, `${sha["b"]}  b/blob`]);
    expect(await onHost(sb, ip, `ls -A ${layout.layers}`)).not.toMatch(/upload/);
    expect(wireCopies()).toEqual([]);
  });

  it("GIVEN two hosts sent a layer at once WHEN it travels as plain tar THEN it is gunzipped once for both, both get every byte, and the copy is gone afterwards", async () => {
    const platform = [...image.platforms.values()][0]!;
    const big = [...platform.layers].sort((x, y) => y.size - x.size)[0]!;
    const copiesSeen = new Set<string>();
    const watch = setInterval(() => wireCopies().forEach((n) => copiesSeen.add(n)), 2);
    const roots = ["/var/tmp/dist-two-a", "/var/tmp/dist-two-b"];
    try {
      await Promise.all(
        roots.map((root) =>
          distributeTo(conn, {
            store: session.store,
            layout: new HostLayout(root),
            imageDigest: image.digest,
            layers: layersFor(platform, false).filter((l) => l.digest === big.digest),
            facts: freshFacts(),
            emit: () => undefined,
          }),
        ),
      );
    } finally {
      clearInterval(watch);
    }
    expect(copiesSeen.size).toBe(1);
    for (const root of roots) {
      const sums = await onHost(sb, ip, `cd ${new HostLayout(root).rootfs(image.digest)} && sha256sum a/blob`);
      expect(sums.trim()).toBe(`${sha["a"]}  a/blob`);
    }
    expect(wireCopies()).toEqual([]);
  });

  it("GIVEN a layer blob that no longer gunzips WHEN one host, then two at once (reading the shared copy), are sent it THEN each fails with one error naming the host and the layer, and nothing is left", async () => {
    const platform = [...image.platforms.values()][0]!;
    const big = [...platform.layers].sort((x, y) => y.size - x.size)[0]!;
    const blob = session.store.blobPath(big.digest);
    const saved = join(home, "saved-blob");
    await copyFile(blob, saved);
    await truncate(blob, Math.floor(big.size / 2));
    const roots = ["/var/tmp/dist-broken-a", "/var/tmp/dist-broken-b", "/var/tmp/dist-broken-c"];
    const sendTo = (root: string): Promise<number> =>
      distributeTo(conn, {
        store: session.store,
        layout: new HostLayout(root),
        imageDigest: image.digest,
        layers: layersFor(platform, false).filter((l) => l.digest === big.digest),
        facts: freshFacts(),
        emit: () => undefined,
      });
    let alone: PromiseSettledResult<number>[];
    let together: PromiseSettledResult<number>[];
    try {
      alone = await Promise.allSettled([sendTo(roots[0]!)]);
      together = await Promise.allSettled(roots.slice(1).map(sendTo));
    } finally {
      await copyFile(saved, blob);
    }
    const host = ip.replace(/\./g, "\\.");
    const messages = [...alone, ...together].map((r) => (r.status === "rejected" ? (r.reason as Error).message : "sent"));
    expect(messages[0]).toMatch(new RegExp(`^${host}: sending layer ${big.digest} \\(2 attempts\\): uploading to .*: reading .*: unexpected end of file$`));
    for (const m of messages.slice(1)) expect(m).toMatch(new RegExp(`^${host}: unpacking layer ${big.digest} for the wire: unexpected end of file$`));
    for (const root of roots) expect(await onHost(sb, ip, `ls -A ${new HostLayout(root).layers} 2>/dev/null || true`)).toBe("");
    expect(wireCopies()).toEqual([]);
  });

  it("GIVEN a send under way WHEN the apply is aborted THEN it fails as aborted, without a retry, and no half layer is left", async () => {
    const root = "/var/tmp/dist-abort";
    const ac = new AbortController();
    const events: ClusterEvent[] = [];
    const facts = freshFacts();
    const layout = new HostLayout(root);
    const platform = [...image.platforms.values()][0]!;
    const sent = distributeTo(conn, {
      store: session.store,
      layout,
      imageDigest: image.digest,
      layers: layersFor(platform, false),
      facts,
      emit: (e) => {
        events.push(e);
        if (e.type === "progress" && e.bytes > 0) ac.abort(new Error("stopped by the test"));
      },
      signal: ac.signal,
    });
    await expect(sent).rejects.toThrow(new RegExp(`^${ip.replace(/\./g, "\\.")}: sending layer sha256:[0-9a-f]{64}: uploading to .* aborted`));
    expect(events.filter((e) => e.type === "warning")).toEqual([]);
    // Layers sent before the abort stay (complete, and known); the one under way left nothing.
    expect(facts.layers.size).toBeLessThan(2);
    const onDisk = (await onHost(sb, ip, `ls -A ${layout.layers} 2>/dev/null || true`)).split("\n").filter(Boolean);
    expect(onDisk).toEqual([...facts.layers].sort());
    expect(await onHost(sb, ip, `ls -A ${layout.images} 2>/dev/null || true`)).toBe("");
    expect(await onHost(sb, ip, "pgrep -x tar || true")).toBe("");
  });
});
