/**
 * Secrets on a real host (a sandbox host: real sshd, real sh, real ps): a command's env values
 * travel on its stdin, never in a command line every user of the host can read.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxDown, sandboxUp, type Sandbox } from "../../../src/engine/sandbox";
import { RemoteCommandError, SshConnection } from "../../../src/engine/ssh";
import { runOnHost } from "../../support/hosts";

// This file's host: 127.0.10.72 (other test files use other ranges).
const FIRST = 72;

/**
 * The real sudo (Debian's, which setup installs; the hosts see the machine's binaries), with its
 * own log file: it logs the command line it was given and shows it in ps while the command runs.
 */
const SUDOERS = `Defaults logfile=/var/log/sudo.log
Defaults !syslog
Defaults loglinelen=0
deploy ALL=(ALL:ALL) ALL
`;

let parent: string;
let sb: Sandbox;
let conn: SshConnection;
/** A login that is not root: its commands go through sudo. */
let deploy: SshConnection;

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), "sealant-secrets-host-"));
  sb = await sandboxUp(1, { name: "test-secrets-host", dir: join(parent, "sb"), firstIndex: FIRST });
  const host = sb.hosts[0]!;
  conn = await SshConnection.connect({ host: host.ip, privateKeyPath: sb.ssh.pk, hostKey: { knownHosts: sb.ssh.knownHosts } });
  await conn.run(
    "useradd -m deploy && echo 'deploy:deploy-sudo-pw' | chpasswd && mkdir -p ~deploy/.ssh && cp /root/.ssh/authorized_keys ~deploy/.ssh/ && chown -R deploy ~deploy/.ssh && " +
      "cat > /etc/sudoers.d/deploy && chmod 440 /etc/sudoers.d/deploy",
    { stdin: SUDOERS },
  );
  deploy = await SshConnection.connect({
    host: host.ip,
    user: "deploy",
    privateKeyPath: sb.ssh.pk,
    sudoPassword: "deploy-sudo-pw",
    hostKey: { knownHosts: sb.ssh.knownHosts },
  });
});

afterAll(async () => {
  await conn?.close().catch(() => undefined);
  await deploy?.close().catch(() => undefined);
  if (sb) await sandboxDown(sb).catch(() => undefined);
  await rm(parent, { recursive: true, force: true });
});

describe("a command's env on a real host", () => {
  const secret = "s3cr3t-Pa55word-7f1c";
  const env = { DB_PASSWORD: secret, MULTI: "line one\nline 'two'\n$HOME `x`", EMPTY: "" };

  it("GIVEN env with a password WHEN the command runs THEN ps on the host shows no value, and the command sees every value exactly", async () => {
    // WHEN a command runs for a while with the env, through sudo (which logs its argv and shows it in ps while it runs) ...
    const running = deploy.run('printf "%s|%s|%s" "$DB_PASSWORD" "$MULTI" "$EMPTY"; sleep 2', { env, sudo: true });
    let seen = "";
    for (let i = 0; i < 50 && !seen.includes("sleep 2"); i++) {
      seen = (await runOnHost(sb, sb.hosts[0]!, "ps -eo args")).stdout;
      if (!seen.includes("sleep 2")) await new Promise((r) => setTimeout(r, 50));
    }
    const result = await running;
    // THEN the process list, read while it ran, holds the command but none of the values ...
    expect(seen).toContain("sleep 2");
    expect(seen).not.toContain(secret);
    expect(seen).not.toContain("line 'two'");
    const log = (await runOnHost(sb, sb.hosts[0]!, "cat /var/log/sudo.log")).stdout;
    expect(log).toMatch(/deploy : .*USER=root ; COMMAND=\/usr\/bin\/sh -c /);
    expect(log).not.toContain(secret);
    // ... and the command got them, newlines and quotes and all.
    expect(result.stdout).toBe(`${secret}|line one\nline 'two'\n$HOME \`x\`|`);
  });

  it("GIVEN env and stdin WHEN the command reads its stdin THEN it gets exactly the caller's input (the env block is not part of it)", async () => {
    const input = `first line\n${"x".repeat(100_000)}\nlast`;
    const r = await conn.run("cat", { env, stdin: input });
    expect(r.stdout).toBe(input);
    const head = await conn.run('head -c 5; echo "<$DB_PASSWORD>"', { env, stdin: "12345rest" });
    expect(head.stdout).toBe(`12345<${secret}>\n`);
    // Through sudo with a password: the password line, then the env block, then the input.
    const viaSudo = await deploy.run('read -r line; echo "$line|$DB_PASSWORD"', { env, sudo: true, stdin: "input line\n" });
    expect(viaSudo.stdout).toBe(`input line|${secret}\n`);
  });

  it("GIVEN a failing command that traces itself WHEN it fails THEN the error shows neither the env value nor the secret it was given", async () => {
    // set -x echoes every command with its expanded words: the password among them.
    const err = await conn.run('set -x; echo "connecting with $DB_PASSWORD"; exit 3', { env, secrets: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteCommandError);
    expect((err as Error).message).toMatch(/exited 3/);
    expect((err as Error).message).not.toContain(secret);
  });
});
