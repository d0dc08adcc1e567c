import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

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

  it("both are listed in the CLI's help", () => {
    expect(sealant("--help").stdout).toMatch(/\n {2}backup {5}Back a Kubernetes cluster up.*\n {2}restore {4}Bring a Kubernetes cluster back/);
  });
});
