import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshConnectError, SshConnection } from "../../../src/engine/ssh";
import { freePort, generateKey, startTestServer, type KeyPair, type TestServer } from "./support/server";

describe("authentication", () => {
  let server: TestServer;
  let key: KeyPair;
  let keyWithPassphrase: KeyPair;
  const passphrase = "correct horse battery";
  const password = "p@ss w0rd'\"";
  let dir: string;
  beforeAll(async () => {
    key = generateKey("ed25519");
    keyWithPassphrase = generateKey("ecdsa", passphrase);
    server = await startTestServer({
      users: {
        root: { password },
        deploy: { publicKeys: [key.public, keyWithPassphrase.public] },
        kbd: { password: "kbd-pw", keyboardInteractive: true },
        otp: { password: "otp-pw", keyboardInteractive: true, keyboardPrompts: [{ prompt: "Verification code: ", echo: true }] },
        mfa: {
          password: "mfa-pw",
          keyboardInteractive: true,
          keyboardPrompts: [
            { prompt: "Password: ", echo: false },
            { prompt: "One-time code: ", echo: false },
          ],
        },
        echoed: { password: "echoed-pw", keyboardInteractive: true, keyboardPrompts: [{ prompt: "Password: ", echo: true }] },
      },
    });
    dir = mkdtempSync(join(tmpdir(), "sealant-ssh-auth-"));
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const base = (): { host: string; port: number; hostKey: { fingerprints: string[] } } => ({
    host: server.host,
    port: server.port,
    hostKey: { fingerprints: [server.hostKeys[0]!.fingerprint] },
  });

  it("logs in with a password", async () => {
    const c = await SshConnection.connect({ ...base(), user: "root", password });
    expect((await c.exec("echo hi")).stdout).toBe("hi\n");
    await c.close();
  });

  it("answers a keyboard-interactive password prompt with the password", async () => {
    const c = await SshConnection.connect({ ...base(), user: "kbd", password: "kbd-pw" });
    expect((await c.exec("echo kbd")).stdout).toBe("kbd\n");
    await c.close();
    expect(server.authAttempts.filter((a) => a.user === "kbd").map((a) => a.method)).toContain("keyboard-interactive");
  });

  it("GIVEN keyboard-interactive prompts that are not (only) the password WHEN logging in THEN it refuses, naming the host and the prompt, and the password is never sent as an answer", async () => {
    for (const [user, prompt] of [
      ["otp", "Verification code: "],
      ["mfa", "One-time code: "],
      ["echoed", "Password: "],
    ] as const) {
      const err = await SshConnection.connect({ ...base(), user, password: `${user}-pw`, retry: { attempts: 3, initialDelayMs: 10 } }).catch((e: unknown) => e);
      expect(err, user).toBeInstanceOf(SshConnectError);
      expect((err as SshConnectError).kind).toBe("auth");
      expect((err as Error).message).toContain(`${server.host}:${server.port}: keyboard-interactive login asked ${JSON.stringify(prompt)}`);
      expect((err as Error).message).toMatch(/not a password prompt/);
      expect((err as Error).message).not.toContain(`${user}-pw`);
    }
    expect(server.passwordAnswers.filter((a) => !a.startsWith("kbd: "))).toEqual([]);
  });

  it("logs in with a private key, given inline or as a path", async () => {
    const c = await SshConnection.connect({ ...base(), user: "deploy", privateKey: key.private });
    expect((await c.exec("echo key")).stdout).toBe("key\n");
    await c.close();
    const path = join(dir, "id_ed25519");
    writeFileSync(path, key.private, { mode: 0o600 });
    const c2 = await SshConnection.connect({ ...base(), user: "deploy", privateKeyPath: path });
    expect((await c2.exec("echo path")).stdout).toBe("path\n");
    await c2.close();
  });

  it("logs in with an encrypted key and its passphrase", async () => {
    const c = await SshConnection.connect({ ...base(), user: "deploy", privateKey: keyWithPassphrase.private, passphrase });
    expect((await c.exec("echo pp")).stdout).toBe("pp\n");
    await c.close();
  });

  it("says a wrong passphrase could not open the key, without the passphrase", async () => {
    const wrong = "wrong passphrase 123";
    const err = await SshConnection.connect({ ...base(), user: "deploy", privateKey: keyWithPassphrase.private, passphrase: wrong }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshConnectError);
    expect((err as SshConnectError).kind).toBe("auth");
    expect((err as Error).message).toMatch(/private key cannot be read: OpenSSH key integrity check failed -- bad passphrase\?/);
    expect((err as Error).message).not.toContain(wrong);
  });

  it("fails a wrong password at once, clearly, without the password and without retrying", async () => {
    const wrong = "hunter2-not-it";
    const before = server.connections;
    const err = await SshConnection.connect({ ...base(), user: "root", password: wrong, retry: { attempts: 5, initialDelayMs: 500 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshConnectError);
    const e = err as SshConnectError;
    expect(e.kind).toBe("auth");
    expect(e.retryable).toBe(false);
    expect(e.attempts).toBe(1);
    expect(e.message).toBe(
      `127.0.0.1:${server.port}: authentication failed for user "root" (tried: password, keyboard-interactive): All configured authentication methods failed`,
    );
    expect(e.message).not.toContain(wrong);
    expect(server.connections - before).toBe(1);
  });

  it("logs in through ssh-agent (SSH_AUTH_SOCK or a socket path)", async () => {
    const sock = join(dir, "agent.sock");
    const agent: ChildProcess = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
    try {
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
      const keyFile = join(dir, "agent_key");
      writeFileSync(keyFile, key.private, { mode: 0o600 });
      const add = spawnSync("ssh-add", [keyFile], { env: { ...process.env, SSH_AUTH_SOCK: sock }, encoding: "utf8" });
      expect(add.status, add.stderr).toBe(0);
      const c = await SshConnection.connect({ ...base(), user: "deploy", agent: sock });
      expect((await c.exec("echo agent")).stdout).toBe("agent\n");
      await c.close();
      expect(server.authAttempts.filter((a) => a.user === "deploy" && a.method === "publickey").length).toBeGreaterThan(0);
    } finally {
      agent.kill();
    }
  });

  it("refuses options that cannot log in before connecting", async () => {
    await expect(SshConnection.connect({ host: "127.0.0.1", port: server.port })).rejects.toThrow(
      /no way to log in to 127\.0\.0\.1:\d+: give password, privateKey, privateKeyPath or agent/,
    );
    await expect(SshConnection.connect({ host: "127.0.0.1", password: "x", hostKey: { policy: "accept-new" } })).rejects.toThrow(
      /accept-new" needs hostKey.knownHosts/,
    );
  });
});

describe("connect retries", () => {
  it("waits for a host that is still booting (server starts late on its port)", async () => {
    // GIVEN nothing listens on the port yet
    const port = await freePort();
    const hostKey = generateKey();
    const lines: string[] = [];
    const connecting = SshConnection.connect({
      host: "127.0.0.1",
      port,
      password: "root-pw",
      hostKey: { fingerprints: [hostKey.fingerprint] },
      retry: { attempts: 20, initialDelayMs: 50, maxDelayMs: 200 },
      log: (l) => lines.push(l),
    });
    // WHEN the server comes up 600 ms later
    await new Promise((r) => setTimeout(r, 600));
    const server = await startTestServer({ port, hostKeys: [hostKey] });
    try {
      // THEN the connection is made, after some refused attempts
      const c = await connecting;
      expect((await c.exec("echo up")).stdout).toBe("up\n");
      await c.close();
      expect(lines.some((l) => /connect: ECONNREFUSED; retrying in \d+ ms/.test(l))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it("gives up after the configured attempts, saying how many", async () => {
    const port = await freePort();
    const err = await SshConnection.connect({
      host: "127.0.0.1",
      port,
      password: "x",
      hostKey: { policy: "insecure" },
      retry: { attempts: 3, initialDelayMs: 20 },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshConnectError);
    expect((err as SshConnectError).kind).toBe("refused");
    expect((err as SshConnectError).attempts).toBe(3);
    expect((err as Error).message).toMatch(new RegExp(`^127\\.0\\.0\\.1:${port}: connect: ECONNREFUSED \\(gave up after 3 attempts in [0-9.]+ s\\)$`));
  });

  it("stops retrying when the caller aborts", async () => {
    const port = await freePort();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 150);
    const started = Date.now();
    const err = await SshConnection.connect(
      { host: "127.0.0.1", port, password: "x", hostKey: { policy: "insecure" }, retry: { attempts: 100, initialDelayMs: 50 } },
      ac.signal,
    ).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/connect aborted/);
    expect(Date.now() - started).toBeLessThan(5000); // 100 attempts would take minutes; a loaded machine may take seconds
  });
});
