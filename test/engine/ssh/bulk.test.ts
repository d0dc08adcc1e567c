/**
 * The bulk path on a real host (a sandbox host: real sshd, real tar): an upload of a tar file
 * streams from a worker thread over a data connection of its own, which accepts only the host
 * key the main connection verified.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxDown, sandboxUp, type Sandbox } from "../../../src/engine/sandbox";
import { bulkPool, CIPHERS, SshConnection, SshError, type UploadProgress } from "../../../src/engine/ssh";
import { PID_MARKER } from "../../../src/engine/ssh/shell";
import { onHost } from "../../support/hosts";

const MiB = 1 << 20;
let parent: string;
let sb: Sandbox;
let ip: string;
let conn: SshConnection;
/** A tar of one file of random bytes, and that file's sha256. */
let small: { tar: string; gz: string; sha: string };
let big: { tar: string; gz: string; sha: string };

async function tarOf(name: string, bytes: number): Promise<{ tar: string; gz: string; sha: string }> {
  const dir = join(parent, name);
  execFileSync("mkdir", ["-p", join(dir, "data")]);
  const data = randomBytes(bytes);
  await writeFile(join(dir, "data", "blob"), data);
  execFileSync("tar", ["-cf", join(parent, `${name}.tar`), "-C", dir, "data"]);
  execFileSync("sh", ["-c", `gzip -1 -c ${join(parent, `${name}.tar`)} > ${join(parent, `${name}.tar.gz`)}`]);
  return { tar: join(parent, `${name}.tar`), gz: join(parent, `${name}.tar.gz`), sha: createHash("sha256").update(data).digest("hex") };
}

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), "sealant-bulk-"));
  // 127.0.10.190: a fixed number, so test files starting at the same moment never pick the same free one.
  sb = await sandboxUp(1, { name: "test-bulk", dir: join(parent, "sb"), firstIndex: 190 });
  ip = sb.hosts[0]!.ip;
  conn = await SshConnection.connect({ host: ip, privateKeyPath: sb.ssh.pk, hostKey: { knownHosts: sb.ssh.knownHosts } });
  small = await tarOf("small", 24 * MiB);
  big = await tarOf("big", 160 * MiB);
});

afterAll(async () => {
  await conn?.close().catch(() => undefined);
  if (sb) await sandboxDown(sb).catch(() => undefined);
  await rm(parent, { recursive: true, force: true });
});

const shaOnHost = (path: string): Promise<string> => onHost(sb, ip, `sha256sum ${path} | cut -d' ' -f1`).then((s) => s.trim());
const leftovers = (dir: string): Promise<string> => onHost(sb, ip, `ls -A ${dir} 2>/dev/null || true`).then((s) => s.trim());

describe("upload of a tar file on a worker thread", () => {
  it("GIVEN a gzip layer file WHEN it is uploaded gunzipped on the way THEN every byte arrives (digest checked on the host) over a second connection from a worker", async () => {
    const pool = bulkPool();
    const before = pool.sends;
    const progress: UploadProgress[] = [];
    const r = await conn.upload("/var/tmp/bulk/plain", { tarFile: small.gz, gunzip: true }, { onProgress: (p) => progress.push(p), progressIntervalMs: 0 });
    expect(await shaOnHost("/var/tmp/bulk/plain/data/blob")).toBe(small.sha);
    expect(r.bytes).toBe((await import("node:fs")).statSync(small.tar).size);
    expect(progress.at(-1)!.bytes).toBe(r.bytes);
    expect(pool.sends).toBe(before + 1);
    // The main connection was opened once; the host saw one more login (the worker's).
    expect(conn.connects).toBe(1);
    expect(await leftovers("/var/tmp/bulk")).toBe("plain");
  });

  it("GIVEN a gzip file sent as gzip WHEN the host extracts with tar -xz THEN the bytes arrive intact", async () => {
    const r = await conn.upload("/var/tmp/bulk/gz", { tarFile: small.gz, gzip: true });
    expect(r.bytes).toBe((await import("node:fs")).statSync(small.gz).size);
    expect(await shaOnHost("/var/tmp/bulk/gz/data/blob")).toBe(small.sha);
  });

  it("GIVEN a send under way WHEN it is aborted THEN it fails as aborted, no half layer is left and tar is no longer running", async () => {
    const ac = new AbortController();
    const sent = conn.upload(
      "/var/tmp/bulk/aborted",
      { tarFile: big.tar },
      { progressIntervalMs: 0, signal: ac.signal, onProgress: (p) => (p.bytes > 8 * MiB ? ac.abort(new Error("stop")) : undefined) },
    );
    await expect(sent).rejects.toThrow(/aborted/);
    expect(await leftovers("/var/tmp/bulk")).not.toMatch(/aborted/);
    expect(await onHost(sb, ip, "pgrep -x tar || true")).toBe("");
  });

  it("GIVEN the worker thread dies mid-send WHEN the upload fails THEN the error names the host and the worker, nothing is left, and the next upload succeeds", async () => {
    let stopped: Promise<void> | undefined;
    const sent = conn.upload(
      "/var/tmp/bulk/died",
      { tarFile: big.tar },
      { progressIntervalMs: 0, onProgress: (p) => void (p.bytes > 8 * MiB ? (stopped ??= bulkPool().stop()) : undefined) },
    );
    const err = await sent.then(
      () => undefined,
      (e: unknown) => e,
    );
    await stopped;
    expect(err).toBeInstanceOf(SshError);
    expect((err as SshError).message).toMatch(
      new RegExp(`^${ip.replace(/\./g, "\\.")}: uploading to /var/tmp/bulk/died: sending .*big\\.tar \\(worker thread\\): the bulk-send worker thread exited`),
    );
    expect(await leftovers("/var/tmp/bulk")).not.toMatch(/died/);
    await conn.upload("/var/tmp/bulk/died", { tarFile: big.tar });
    expect(await shaOnHost("/var/tmp/bulk/died/data/blob")).toBe(big.sha);
  });

  it("GIVEN a worker told to expect another host key WHEN it connects THEN it refuses the host", async () => {
    const key = randomBytes(51);
    const pk = (await import("node:fs")).readFileSync(sb.ssh.pk);
    const sent = bulkPool().send(ip, {
      connect: { key: "other-key", host: ip, port: 22, username: "root", privateKey: pk, readyTimeout: 10_000, ciphers: [...CIPHERS], hostKey: key },
      line: "cat > /dev/null",
      file: small.tar,
      gunzip: false,
      pidMarker: PID_MARKER,
    });
    await expect(sent).rejects.toThrow(/different host key than the verified one/);
  });
});
