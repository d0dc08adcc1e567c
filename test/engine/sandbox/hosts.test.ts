import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxAdd, sandboxDown, sandboxGet, sandboxUp, startHost, stopHost, type Sandbox } from "../../../src/engine/sandbox";
import { eventually, httpGet, mountsMentioning, pidNamespace, processesIn, processesMatching } from "./support";
import { onHost, runOnHost } from "../../support/hosts";

// This file's hosts: 127.0.10.101-105 (test/engine/sandbox/cli.test.ts uses 121-...), so files running in parallel never collide.
const FIRST = 101;
let parent: string;
let dir: string;
let sb: Sandbox;
let upSeconds: number;

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), "sealant-sandbox-test-"));
  dir = join(parent, "hosts");
  const started = Date.now();
  sb = await sandboxUp(3, { name: "test-hosts", dir, firstIndex: FIRST });
  upSeconds = (Date.now() - started) / 1000;
});

afterAll(async () => {
  // Always tear down, whatever failed above.
  await sandboxDown(dir).catch(() => undefined);
  await rm(parent, { recursive: true, force: true });
});

describe("sandboxUp", () => {
  it("GIVEN 3 requested hosts WHEN up returns THEN each answers ssh by key with its own hostname, within seconds", async () => {
    expect(upSeconds).toBeLessThan(5);
    expect(sb.hosts.map((h) => [h.ip, h.hostname, h.running])).toEqual([
      ["127.0.10.101", "host101", true],
      ["127.0.10.102", "host102", true],
      ["127.0.10.103", "host103", true],
    ]);
    const names = await Promise.all(sb.hosts.map((h) => onHost(sb, h, "hostname; cat /etc/hostname; id -un")));
    expect(names).toEqual(["host101\nhost101\nroot", "host102\nhost102\nroot", "host103\nhost103\nroot"]);
    // sshd is PID 1 of the host's own PID namespace, and the host sees only its own processes.
    expect(await onHost(sb, "host101", "cat /proc/1/comm; ls /proc | grep -c '^[0-9]'")).toMatch(/^sshd\n[1-9]$/);
    expect((await readFile(sb.ssh.pk)).length).toBeGreaterThan(0);
    expect(((await import("node:fs")).statSync(sb.ssh.pk).mode & 0o777).toString(8)).toBe("600");
  });

  it("GIVEN the sandbox password WHEN root logs in with it THEN the host accepts it and its key matches known_hosts", async () => {
    const known = await readFile(sb.ssh.knownHosts, "utf8");
    const line = known.split("\n").find((l) => l.startsWith("127.0.10.102 "))!;
    const expectedKey = Buffer.from(line.split(" ")[2]!, "base64");
    const out = await new Promise<string>((resolve, reject) => {
      const c = new Client();
      c.on("ready", () =>
        c.exec("hostname", (err, stream) => {
          if (err) return reject(err);
          let s = "";
          stream.on("data", (d: Buffer) => (s += d));
          stream.on("close", () => {
            c.end();
            resolve(s.trim());
          });
        }),
      );
      c.on("error", reject);
      c.connect({
        host: "127.0.10.102",
        port: 22,
        username: "root",
        password: sb.ssh.passwd,
        tryKeyboard: false,
        agent: undefined,
        hostVerifier: (key: Buffer) => key.equals(expectedKey),
      });
    });
    expect(out).toBe("host102");
    // The machine's own root password is untouched: the host's /etc/shadow lives in its upper dir.
    expect(existsSync(join(sb.hosts[1]!.upper, "etc/shadow"))).toBe(true);
    expect(await readFile("/etc/shadow", "utf8")).not.toEqual(await readFile(join(sb.hosts[1]!.upper, "etc/shadow"), "utf8"));
  });

  it("GIVEN a file written on host1 WHEN host2 and the machine look THEN only host1 (and its upper dir) has it", async () => {
    await onHost(sb, "host101", "echo written-on-host1 > /etc/sandbox-marker && mkdir -p /opt/m && echo x > /opt/m/f");
    expect(await onHost(sb, "host101", "cat /etc/sandbox-marker")).toBe("written-on-host1");
    expect((await runOnHost(sb, "host102", "test -e /etc/sandbox-marker")).code).toBe(1);
    expect(existsSync("/etc/sandbox-marker")).toBe(false);
    expect(existsSync("/opt/m/f")).toBe(false);
    expect(await readFile(join(sb.hosts[0]!.upper, "etc/sandbox-marker"), "utf8")).toBe("written-on-host1\n");
    // The host still sees the machine's programs through the overlay.
    expect(await onHost(sb, "host102", "command -v node sshd")).toContain("sshd");
  });

  it("GIVEN a daemon on host1 bound to 127.0.10.101 WHEN the machine and host2 connect THEN it answers, and ssh does not hang", async () => {
    const server = `require("http").createServer((q, s) => s.end(require("os").hostname())).listen(8080, process.argv[2]);`;
    await onHost(sb, "host101", "cat > /tmp/srv.js", { input: server });
    const started = Date.now();
    await onHost(sb, "host101", "setsid -f node /tmp/srv.js 127.0.10.101 > /tmp/srv.log 2>&1 < /dev/null");
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await eventually(() => httpGet("http://127.0.10.101:8080/"))).toBe("host101");
    expect(await onHost(sb, "host102", "curl -s http://127.0.10.101:8080/")).toBe("host101");
    // The host's /tmp is its own tmpfs.
    expect(existsSync("/tmp/srv.js")).toBe(false);
  });

  it("GIVEN /var/lib/containerd WHEN a host writes there THEN it is a real (non-overlay) per-host directory", async () => {
    const fsType = await onHost(sb, "host103", "stat -f -c %T / /var/lib/containerd /var/lib/sealant-real");
    expect(fsType.split("\n")).toEqual(["overlayfs", expect.not.stringMatching(/overlay/), expect.not.stringMatching(/overlay/)]);
    await onHost(sb, "host103", "echo real > /var/lib/containerd/probe");
    expect(await readFile(join(sb.hosts[2]!.dir, "real/var-lib-containerd/probe"), "utf8")).toBe("real\n");
    // ... so an overlay can be mounted inside the host with its layers there (what containerd's snapshotter does).
    const out = await onHost(
      sb,
      "host103",
      "cd /var/lib/sealant-real && mkdir -p l u w m && echo low > l/a && mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w m && echo up > m/b && cat m/a && umount m && cat u/b",
    );
    expect(out).toBe("low\nup");
  });

  it("GIVEN a running sandbox WHEN another up uses the same dir THEN it fails clearly and the sandbox keeps running", async () => {
    await expect(sandboxUp(2, { name: "test-hosts", dir, firstIndex: 110 })).rejects.toThrow(/sandbox "test-hosts" is already up .*host101 127\.0\.10\.101/);
    expect(await onHost(sb, "host101", "hostname")).toBe("host101");
  });

  it("GIVEN host102 with a file and a daemon WHEN it is stopped and started THEN it is unreachable meanwhile, then back with its disk and host key", async () => {
    await onHost(sb, "host102", "echo kept > /root/kept && setsid -f sleep 777.102 > /dev/null 2>&1 < /dev/null");
    const ns = await pidNamespace(sb.hosts[1]!.pid);
    expect(await processesMatching("sleep 777.102")).toHaveLength(1);

    const stopped = await stopHost(sb, "host102");
    expect(stopped.running).toBe(false);
    const down = await runOnHost(sb, "host102", "true");
    expect(down.code).toBe(255);
    expect(down.stderr).toMatch(/refused/i);
    expect(await processesIn([ns!])).toEqual([]);
    expect(await processesMatching("sleep 777.102")).toEqual([]);
    expect(await onHost(sb, "host103", "hostname")).toBe("host103");

    const started = await startHost(sb, "127.0.10.102");
    expect(started.running).toBe(true);
    expect(started.pid).not.toBe(sb.hosts[1]!.pid);
    // StrictHostKeyChecking=yes against the unchanged known_hosts: the same host key.
    expect(await onHost(sb, "host102", "cat /root/kept; hostname")).toBe("kept\nhost102");
    expect(await processesMatching("sleep 777.102")).toEqual([]);
  });

  it("GIVEN 3 hosts WHEN 2 are added THEN 5 answer and known_hosts names all of them", async () => {
    sb = await sandboxAdd(sb, 2);
    expect(sb.hosts.map((h) => h.hostname)).toEqual(["host101", "host102", "host103", "host104", "host105"]);
    expect(await Promise.all(sb.hosts.slice(3).map((h) => onHost(sb, h, "hostname")))).toEqual(["host104", "host105"]);
    const known = (await readFile(sb.ssh.knownHosts, "utf8")).trim().split("\n");
    expect(known.map((l) => l.split(" ")[0])).toEqual(["127.0.10.101", "127.0.10.102", "127.0.10.103", "127.0.10.104", "127.0.10.105"]);
  });

  it("GIVEN the sandbox WHEN it is brought down THEN no host process, no mount and no file remain", async () => {
    const current = (await sandboxGet(dir))!;
    const namespaces = (await Promise.all(current.hosts.map((h) => pidNamespace(h.pid)))).filter((n): n is string => !!n);
    expect(namespaces).toHaveLength(5);
    expect(await processesMatching("/tmp/srv.js 127.0.10.101")).toHaveLength(1);
    expect((await mountsMentioning(dir)).length).toBeGreaterThan(0);

    expect(await sandboxDown(dir)).toBe(true);

    expect(await processesIn(namespaces)).toEqual([]);
    expect(await processesMatching("/tmp/srv.js 127.0.10.101")).toEqual([]);
    expect(await processesMatching(`${dir}/`)).toEqual([]);
    expect(await mountsMentioning(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    expect(await httpGet("http://127.0.10.101:8080/")).toBeUndefined();
    expect(await sandboxDown(dir)).toBe(false);
  });
});
