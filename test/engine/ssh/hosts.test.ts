import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectionPool, FakeConnection, Hosts, HostsError, RemoteCommandError, type HostLike } from "../../../src/engine/ssh";
import { DEFAULT_PASSWORD, freePort, startTestServer, type TestServer } from "./support/server";

interface Host extends HostLike {
  roles: string[];
}

describe("Hosts", () => {
  const many = new Hosts<Host>(
    Array.from({ length: 40 }, (_, i) => ({ address: `10.0.0.${i + 1}`, roles: i < 3 ? ["master"] : i % 2 ? ["node"] : ["worker", "ingress"] })),
  );

  it("filters by role", () => {
    expect(
      many
        .masters()
        .toArray()
        .map((h) => h.address),
    ).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    expect(many.workers().length).toBe(37);
    expect(many.withRole("ingress").length).toBe(18);
    expect(many.filter((h) => h.address.endsWith(".7")).first()?.address).toBe("10.0.0.7");
    expect(many.find("10.0.0.40")?.roles).toEqual(["node"]);
    expect(() => new Hosts([{ address: "a" }, { address: "a" }])).toThrow(/host a is listed twice/);
  });

  it("parallelEach never runs more than `limit` at once, and runs every host", async () => {
    for (const limit of [1, 5, 16]) {
      let running = 0;
      let peak = 0;
      const done: string[] = [];
      await many.parallelEach(limit, async (h) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        done.push(h.address);
      });
      expect(peak).toBe(limit);
      expect(done.sort()).toEqual(
        many
          .toArray()
          .map((h) => h.address)
          .sort(),
      );
    }
  });

  it("uses 16 at once by default and collects results in host order", async () => {
    let running = 0;
    let peak = 0;
    const out = await many.parallelMap(async (h) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 1 + Math.random() * 3));
      running--;
      return h.address;
    });
    expect(peak).toBe(16);
    expect(out).toEqual(many.toArray().map((h) => h.address));
  });

  it("attempts every host and throws ONE error naming each failure", async () => {
    const hosts = new Hosts<Host>([1, 2, 3, 4].map((i) => ({ address: `127.0.10.${i}`, roles: [] })));
    const err = await hosts
      .parallelEach(async (h) => {
        if (h.address === "127.0.10.2")
          throw new RemoteCommandError({
            host: h.address,
            command: "systemctl start etcd",
            exitCode: 1,
            stderrTail: "Job for etcd.service failed.\nSee journalctl",
          });
        if (h.address === "127.0.10.4") throw new Error("127.0.10.4: connect: ECONNREFUSED");
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostsError);
    expect((err as HostsError).hosts).toEqual(["127.0.10.2", "127.0.10.4"]);
    expect((err as Error).message).toBe(
      "2 hosts failed (of 4):\n" +
        "  127.0.10.2: systemctl start etcd exited 1: Job for etcd.service failed.\n    See journalctl\n" +
        "  127.0.10.4: connect: ECONNREFUSED",
    );
  });

  it("failFast stops starting hosts and aborts the running ones", async () => {
    const started: string[] = [];
    const err = await many
      .parallelEach(
        async (h, signal) => {
          started.push(h.address);
          if (h.address === "10.0.0.1") throw new Error("boom");
          await new Promise((resolve, reject) => {
            const t = setTimeout(resolve, 5000);
            signal.addEventListener("abort", () => {
              clearTimeout(t);
              reject(new Error("stopped"));
            });
          });
        },
        { limit: 4, failFast: true },
      )
      .catch((e: unknown) => e);
    expect(started).toHaveLength(4);
    expect((err as Error).message).toMatch(/^4 hosts failed \(of 40\):\n  10\.0\.0\.1: boom\n  10\.0\.0\.2: stopped/);
  });

  it("stops starting hosts when the caller aborts", async () => {
    const ac = new AbortController();
    let ran = 0;
    const p = many.parallelEach(
      2,
      async () => {
        ran++;
        if (ran === 4) ac.abort(new Error("cancelled by user"));
        await new Promise((r) => setTimeout(r, 1));
      },
      ac.signal,
    );
    await expect(p).rejects.toThrow("cancelled by user");
    expect(ran).toBeLessThan(8);
  });
});

describe("ConnectionPool over real SSH connections", () => {
  let servers: TestServer[];
  const secret = "db-password-123";
  beforeAll(async () => {
    servers = await Promise.all([startTestServer(), startTestServer()]);
  });
  afterAll(async () => Promise.all(servers.map((s) => s.close())));

  it("opens one connection per host lazily, reuses it, closes all; failures are aggregated with their causes", async () => {
    const refusedPort = await freePort();
    const hosts = new Hosts<Host>([
      { address: "127.0.0.1", port: servers[0]!.port, roles: ["master"] },
      { address: "127.0.0.1", port: servers[1]!.port, roles: ["node"] },
      { address: "127.0.0.1", port: refusedPort, roles: ["node"] },
    ]);
    const fingerprints = servers.map((s) => s.hostKeys[0]!.fingerprint);
    const pool = ConnectionPool.ssh<Host>((h) => ({
      host: h.address,
      port: h.port!,
      password: DEFAULT_PASSWORD,
      hostKey: { fingerprints },
      retry: { attempts: 1 },
    }));
    expect(pool.size).toBe(0);
    try {
      // three commands per host, in parallel over hosts
      const err = await hosts
        .parallelEach(async (h, signal) => {
          const c = await pool.get(h, signal);
          await c.run("echo one", { signal });
          await c.run("echo two", { signal });
          if (h.roles.includes("node")) await c.run(`echo "cannot log in with ${secret}" >&2; exit 1`, { signal, secrets: [secret] });
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HostsError);
      const msg = (err as Error).message;
      expect(msg).toBe(
        "2 hosts failed (of 3):\n" +
          `  127.0.0.1:${servers[1]!.port}: echo "cannot log in with ***" >&2; exit 1 exited 1: cannot log in with ***\n` +
          `  127.0.0.1:${refusedPort}: connect: ECONNREFUSED`,
      );
      expect(msg).not.toContain(secret);
      expect(servers.map((s) => s.connections)).toEqual([1, 1]);
      expect(pool.size).toBe(2);
      // the same connection again
      const again = await pool.get(hosts.first()!);
      await again.run("true");
      expect(servers[0]!.connections).toBe(1);
    } finally {
      await pool.closeAll();
    }
    await expect(pool.get(hosts.first()!)).rejects.toThrow(/pool is closed/);
  });
});

describe("FakeConnection", () => {
  it("answers from rules, records commands, and fails loudly on an unexpected command", async () => {
    const fake = new FakeConnection("10.0.0.7")
      .on(/^kubeadm join (\S+)/, (_cmd, m) => ({ code: 1, stderr: `token ${m[1]} expired` }), 1)
      .on(/^kubeadm join/, { stdout: "joined\n" })
      .on("uname -m", { stdout: "x86_64\n" });
    expect((await fake.exec("uname -m")).stdout).toBe("x86_64\n");
    const err = await fake.run("kubeadm join tok123", { sudo: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteCommandError);
    expect((err as Error).message).toBe("10.0.0.7: kubeadm join tok123 exited 1: token tok123 expired");
    expect((await fake.run("kubeadm join tok123")).stdout).toBe("joined\n");
    await expect(fake.exec("rm -rf /")).rejects.toThrow("10.0.0.7: no fake rule matches the command: rm -rf /");
    expect(fake.commands.map((c) => [c.command, c.sudo])).toEqual([
      ["uname -m", false],
      ["kubeadm join tok123", true],
      ["kubeadm join tok123", false],
      ["rm -rf /", false],
    ]);
    expect(fake.ran(/^kubeadm/)).toHaveLength(2);
  });

  it("records uploads (entries and tar streams) with their files", async () => {
    const fake = new FakeConnection("h", [], { unmatched: "ok" });
    await fake.upload("/opt/app", [{ content: "a=1\n", path: "etc/app.conf" }], { sudo: true });
    expect(fake.uploads[0]!.files.get("etc/app.conf")?.toString()).toBe("a=1\n");
    expect(fake.uploads[0]!.sudo).toBe(true);
    expect((await fake.exec("anything")).code).toBe(0);
  });
});
