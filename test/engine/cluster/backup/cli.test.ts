import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../../../src/engine/cluster/spec";
import { pushBackup } from "../../../../src/engine/cluster/backup/oci";
import { Session } from "../../../../src/engine/session";
import { startRegistry } from "../../../support/registry";
import { archive } from "./archive";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\na secret key\n-----END OPENSSH PRIVATE KEY-----\n";

/** sealant backup and restore refusing what they cannot use, before any host is touched: one `sealant: ...` line each. */
const CLI = process.env["SEALANT_TEST_CLI"] ?? resolve(__dirname, "../../../../dist/cli/main.js");

describe("sealant backup / restore: bad input", () => {
  let dir: string;
  const sealant = (...args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, SEALANT_HOME: join(dir, "home") }, encoding: "utf8" });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sealant-backup-cli-"));
    // No host answers on this address: each refusal must come before any connection.
    await writeFile(
      join(dir, "Clusterfile"),
      `apiVersion: sealant.io/v1\nkind: Cluster\nmetadata: {name: prod}\nspec:\n  image: example/hello:1@sha256:${"0".repeat(64)}\n  hosts: [{ips: [127.0.10.250], roles: [master]}]\n`,
    );
    await writeFile(join(dir, "not-a-backup.tar.gz"), "hello");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("backup without --to and restore without --from are usage errors (exit 2)", () => {
    const b = sealant("backup");
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/^sealant: backup needs --to DIR: where the archive is written\n/);
    const r = sealant("restore");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^sealant: restore needs --from ARCHIVE: the archive sealant backup wrote\n/);
  });

  it("restore from a file that is no backup names the file and why, and stops there", () => {
    const r = sealant("restore", "--from", "not-a-backup.tar.gz", "--dry-run");
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^sealant: backup not-a-backup\.tar\.gz: not a readable gzip'd tar \(/)]);
    expect(r.stdout).toBe("");
  });

  it("restore without -f takes the archive's own spec: a key file it names gone since is one line naming the field, the file and what to do", async () => {
    const spec = parseClusterSpec({ name: "prod", image: `example/hello:1@sha256:${"0".repeat(64)}`, hosts: [{ ips: ["127.0.10.251"], roles: ["master"] }] });
    const ssh = { privateKeyPath: join(dir, "gone-key"), privateKey: KEY };
    await archive(join(dir, "prod.tar.gz"), { "cluster.json": JSON.stringify({ ...spec, ssh }), "etcd/snapshot.db": "s", "pki/ca.crt": "CERT" });
    const r = sealant("restore", "--from", "prod.tar.gz", "--dry-run");
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toEqual([
      "sealant: the cluster spec in backup prod.tar.gz (cluster.json) is invalid:",
      `  the cluster spec in backup prod.tar.gz (cluster.json): ssh.privateKeyPath: cannot read private key file "${join(dir, "gone-key")}": no such file: put the file back, or restore with -f Clusterfile naming the hosts and their SSH settings`,
    ]);
    expect(r.stderr + r.stdout).not.toContain("a secret key");
  });

  it("restore --from oci://REF pulls the pushed archive into $SEALANT_HOME/backups first (digest checked), then reads it as any", async () => {
    const reg = await startRegistry();
    const session = await Session.open({ home: join(dir, "pusher") });
    try {
      const spec = parseClusterSpec({ name: "prod", image: `example/hello:1@sha256:${"0".repeat(64)}`, hosts: [{ ips: ["127.0.10.251"], roles: ["master"] }] });
      const path = await archive(join(dir, "prod-20261205T080000Z.sealant-backup.tar.gz"), {
        "cluster.json": JSON.stringify({ ...spec, ssh: { privateKeyPath: join(dir, "gone-key") } }),
        "etcd/snapshot.db": "s",
        "pki/ca.crt": "CERT",
      });
      await pushBackup(session, path, `${reg.host}/backups/prod:1`);
      const pulled = join(dir, "home", "backups", "prod-20261205T080000Z.sealant-backup.tar.gz");
      const r = sealant("restore", "--from", `oci://${reg.host}/backups/prod:1`, "--dry-run");
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`pulled oci://${reg.host}/backups/prod:1 to ${pulled}\n`);
      expect(r.stderr).toContain(`sealant: the cluster spec in backup ${pulled} (cluster.json) is invalid:`);
      expect((await readFile(pulled)).equals(await readFile(path))).toBe(true);

      const missing = sealant("restore", "--from", `oci://${reg.host}/backups/none:1`, "--dry-run");
      expect(missing.code).toBe(1);
      expect(missing.stderr.trim().split("\n").pop()).toMatch(/^sealant: .*backups\/none.*(not found|unknown)/i);
    } finally {
      session.close();
      await reg.stop();
    }
  }, 60_000);

  it("both are listed in the CLI's help", () => {
    expect(sealant("--help").stdout).toMatch(/\n {2}backup {5}Back a Kubernetes cluster up.*\n {2}restore {4}Bring a Kubernetes cluster back/);
  });
});
