import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostKeyError, SshConnection, type SshEndpoint } from "../../../src/engine/ssh";
import { freePort, generateKey, startTestServer, type TestServer } from "./support/server";

describe("through a bastion (jump host)", () => {
  let jump: TestServer;
  let target: TestServer;
  const bastionPassword = "jump-pw";
  beforeAll(async () => {
    jump = await startTestServer({ forwarding: true, users: { jumper: { password: bastionPassword } } });
    target = await startTestServer();
  });
  afterAll(async () => {
    await target?.close();
    await jump?.close();
  });
  const bastion = (): SshEndpoint => ({
    host: jump.host,
    port: jump.port,
    user: "jumper",
    password: bastionPassword,
    hostKey: { fingerprints: [jump.hostKeys[0]!.fingerprint] },
  });

  it("reaches the target over a forwarded channel and runs commands there", async () => {
    const c = await SshConnection.connect({
      host: target.host,
      port: target.port,
      password: "root-pw",
      hostKey: { fingerprints: [target.hostKeys[0]!.fingerprint] },
      bastion: bastion(),
    });
    try {
      expect((await c.exec("pwd")).stdout.trim()).toBe(target.dir);
      for (let i = 0; i < 20; i++) expect((await c.exec(`echo ${i}`)).stdout).toBe(`${i}\n`);
      expect(jump.forwards).toBe(1);
      expect(target.execs.some((e) => e.endsWith("; pwd"))).toBe(true);
      expect(jump.execs).toEqual([]);
    } finally {
      await c.close();
    }
  });

  it("verifies the target's own host key (not just the bastion's)", async () => {
    const err = await SshConnection.connect({
      host: target.host,
      port: target.port,
      password: "root-pw",
      hostKey: { fingerprints: [generateKey().fingerprint] },
      bastion: bastion(),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyError);
    expect((err as Error).message).toMatch(new RegExp(`^127\\.0\\.0\\.1:${target.port}: WARNING: HOST KEY CHANGED`));
  });

  it("names the bastion when the bastion's key is unknown", async () => {
    const err = await SshConnection.connect({
      host: target.host,
      port: target.port,
      password: "root-pw",
      hostKey: { policy: "insecure" },
      bastion: { ...bastion(), hostKey: {} },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyError);
    expect((err as Error).message).toMatch(new RegExp(`^127\\.0\\.0\\.1:${jump.port}: host key not trusted`));
  });

  it("retries while the target behind the bastion is still booting", async () => {
    const port = await freePort();
    const key = generateKey();
    const connecting = SshConnection.connect({
      host: "127.0.0.1",
      port,
      password: "root-pw",
      hostKey: { fingerprints: [key.fingerprint] },
      bastion: bastion(),
      retry: { attempts: 20, initialDelayMs: 50, maxDelayMs: 200 },
    });
    await new Promise((r) => setTimeout(r, 400));
    const late = await startTestServer({ port, hostKeys: [key] });
    try {
      const c = await connecting;
      expect((await c.exec("echo late")).stdout).toBe("late\n");
      await c.close();
    } finally {
      await late.close();
    }
  });
});
