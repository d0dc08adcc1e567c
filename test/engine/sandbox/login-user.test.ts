/**
 * Sandbox hosts as production has them (`user` option): SSH as a user that is not root, the
 * real sudo (Debian's package, as setup installs it) asking for that user's password, and no
 * root login.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostExec, sandboxDown, sandboxUp, startHost, stopHost, type Sandbox } from "../../../src/engine/sandbox";
import { runOnHost } from "../../support/hosts";

// This file's hosts: 127.0.10.96-98 (the non-root cluster tests use 80-95).
const FIRST = 96;
let parent: string;
let sb: Sandbox;

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), "sealant-sandbox-user-"));
  sb = await sandboxUp(2, { name: "test-login-user", dir: join(parent, "sb"), firstIndex: FIRST, user: {} });
}, 60_000);

afterAll(async () => {
  if (sb) await sandboxDown(sb).catch(() => undefined);
  await rm(parent, { recursive: true, force: true });
});

describe("sandbox hosts with a login user that is not root", () => {
  it("GIVEN user: {} WHEN up THEN ssh logs in as deploy by key, and root logins are refused", async () => {
    expect(sb.ssh.user).toBe("deploy");
    expect(sb.ssh.sudo).toBe("password");
    const who = await runOnHost(sb, sb.hosts[0]!, "id -un; echo $HOME");
    expect(who).toMatchObject({ code: 0, stdout: "deploy\n/home/deploy" });
    const asRoot = await runOnHost({ ...sb, ssh: { ...sb.ssh, user: "root" } }, sb.hosts[0]!, "id -un");
    expect(asRoot.code).toBe(255);
    expect(asRoot.stderr).toMatch(/Permission denied/);
    const sshd = await hostExec(sb, sb.hosts[0]!, ["grep", "-x", "PermitRootLogin no", "/etc/ssh/sshd_config"]);
    expect(sshd.code).toBe(0);
  });

  it("GIVEN the host's real sudo WHEN run without a password THEN it refuses; with deploy's password on stdin it runs as root and the command still reads its own input", async () => {
    const h = sb.hosts[0]!;
    const which = await runOnHost(sb, h, "command -v sudo; ls -l /usr/bin/sudo | cut -c1-10");
    expect(which.stdout).toBe("/usr/bin/sudo\n-rwsr-xr-x"); // the real, setuid sudo: no stand-in
    const refused = await runOnHost(sb, h, "sudo -n true");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/a password is required/);
    const ok = await runOnHost(sb, h, "sudo -k -S -p '' -- sh -c 'id -u; cat'", { input: `${sb.ssh.passwd}\npayload after the password\n` });
    expect(ok).toMatchObject({ code: 0, stdout: "0\npayload after the password" });
    const wrong = await runOnHost(sb, h, "sudo -k -S -p '' -- id -u", { input: "not-the-password\n" });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/incorrect password/);
    // sudo's own log, on the host, names the commands it ran.
    const log = await hostExec(sb, h, ["cat", "/var/log/sudo.log"]);
    expect(log.stdout).toMatch(/: deploy : .*USER=root ; COMMAND=\/usr\/bin\/sh -c 'id -u; cat'$/m);
    expect(log.stdout).toMatch(/: deploy : 1 incorrect password attempt ; .*COMMAND=\/usr\/bin\/id -u$/m);
  });

  it("GIVEN sudo: nopasswd WHEN up THEN sudo -n works, and the machine's own sandbox files keep the password only in the sandbox dir", async () => {
    const dir = join(parent, "nopasswd");
    const other = await sandboxUp(1, { name: "test-login-nopw", dir, firstIndex: FIRST + 2, user: { name: "ops", sudo: "nopasswd" } });
    try {
      const r = await runOnHost(other, other.hosts[0]!, "id -un; sudo -n id -u");
      expect(r).toMatchObject({ code: 0, stdout: "ops\n0" });
      expect(JSON.parse(await readFile(join(dir, "sandbox.json"), "utf8")).ssh).toMatchObject({ user: "ops", sudo: "nopasswd" });
    } finally {
      await sandboxDown(other);
    }
  });

  it("GIVEN a stopped host WHEN started again THEN the same user logs in with the same password (nothing made twice)", async () => {
    const h = sb.hosts[1]!;
    await runOnHost(sb, h, "echo kept > ~/mark");
    await stopHost(sb, h.index);
    const again = await startHost(sb, h.index);
    const r = await runOnHost(sb, again, "cat ~/mark; sudo -k -S -p '' -- id -u", { input: `${sb.ssh.passwd}\n` });
    expect(r).toMatchObject({ code: 0, stdout: "kept\n0" });
    const users = await hostExec(sb, again, ["sh", "-c", "grep -c '^deploy:' /etc/passwd"]);
    expect(users.stdout.trim()).toBe("1");
  });

  it("refuses a user name that is not one, root, and Kubernetes mode, before starting anything", async () => {
    await expect(sandboxUp(1, { dir: join(parent, "bad"), firstIndex: 90, user: { name: "Bad User" } })).rejects.toThrow(
      /login user "Bad User": expected a Unix user name/,
    );
    await expect(sandboxUp(1, { dir: join(parent, "bad"), firstIndex: 90, user: { name: "root" } })).rejects.toThrow(/leave the option out for root/);
    await expect(sandboxUp(1, { dir: join(parent, "bad"), kubernetes: true, user: {} })).rejects.toThrow(/Kubernetes-mode hosts log in as root only/);
  });
});
