import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostKeyError, SshConnection, entryMatchesHost, parseKnownHosts, type HostKeyOptions, type Negotiated } from "../../../src/engine/ssh";
import { DEFAULT_PASSWORD, generateKey, startTestServer, type KeyPair, type TestServer } from "./support/server";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sealant-hostkeys-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function knownHostsFile(lines: string[]): string {
  const f = join(dir, `known_hosts_${++fileCount}`);
  writeFileSync(f, lines.map((l) => `${l}\n`).join(""));
  return f;
}

function line(server: TestServer, key: KeyPair, name = `[127.0.0.1]:${server.port}`): string {
  return `${name} ${key.public.split(" ").slice(0, 2).join(" ")}`;
}

async function tryConnect(server: TestServer, hostKey: HostKeyOptions): Promise<SshConnection | Error> {
  return SshConnection.connect({ host: server.host, port: server.port, password: DEFAULT_PASSWORD, hostKey, retry: { attempts: 3, initialDelayMs: 10 } }).catch(
    (e: unknown) => e as Error,
  );
}

/** Connects, runs a command, closes; returns the negotiated algorithms. */
async function expectConnects(server: TestServer, hostKey: HostKeyOptions): Promise<Negotiated | undefined> {
  const c = await tryConnect(server, hostKey);
  if (c instanceof Error) throw c;
  expect((await c.exec("echo ok")).stdout).toBe("ok\n");
  const negotiated = c.negotiated;
  await c.close();
  return negotiated;
}

describe("host key verification", () => {
  let server: TestServer;
  let key: KeyPair;
  beforeAll(async () => {
    key = generateKey("ed25519");
    server = await startTestServer({ hostKeys: [key] });
  });
  afterAll(async () => server?.close());

  it("computes fingerprints exactly as ssh-keygen -lf prints them", () => {
    for (const k of [key, generateKey("ecdsa"), generateKey("rsa")]) {
      const pub = join(dir, `k${++fileCount}.pub`);
      writeFileSync(pub, `${k.public}\n`);
      const out = execFileSync("ssh-keygen", ["-lf", pub], { encoding: "utf8" });
      expect(out.split(" ")[1]).toBe(k.fingerprint);
    }
  });

  it("strict (default): refuses an unknown key at once, naming the fingerprint to pin and how", async () => {
    const before = server.connections;
    const err = await tryConnect(server, {});
    expect(err).toBeInstanceOf(HostKeyError);
    const e = err as HostKeyError;
    expect(e.problem).toBe("unknown");
    expect(e.attempts).toBe(1);
    expect(server.connections - before).toBe(1);
    expect(e.presented).toEqual({ keyType: "ssh-ed25519", fingerprint: key.fingerprint });
    expect(e.message).toContain(`host key not trusted: the host presents ssh-ed25519 ${key.fingerprint}`);
    expect(e.message).toContain(`hostKey.fingerprints: ["${key.fingerprint}"]`);
    expect(e.message).toContain(`ssh-keyscan -p ${server.port} 127.0.0.1`);
  });

  it("accepts a pinned fingerprint (with or without the SHA256: prefix)", async () => {
    await expectConnects(server, { fingerprints: [key.fingerprint] });
    await expectConnects(server, { fingerprints: [generateKey().fingerprint, key.fingerprint.slice("SHA256:".length)] });
  });

  it("refuses a key that does not match the pinned fingerprint, naming both", async () => {
    const other = generateKey().fingerprint;
    const err = (await tryConnect(server, { fingerprints: [other] })) as HostKeyError;
    expect(err).toBeInstanceOf(HostKeyError);
    expect(err.problem).toBe("changed");
    expect(err.message).toContain("HOST KEY CHANGED");
    expect(err.message).toContain(key.fingerprint);
    expect(err.message).toContain(other);
  });

  it("accepts keys from a known_hosts file in [host]:port form", async () => {
    await expectConnects(server, {
      knownHosts: knownHostsFile([
        "# comment",
        "other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAhYpADTwC9DiEk6JySN+9AehokrJ5vbrEgku89rCar0",
        line(server, key),
      ]),
    });
  });

  it("accepts hashed known_hosts entries (hashed by ssh-keygen -H)", async () => {
    const f = knownHostsFile([line(server, key)]);
    execFileSync("ssh-keygen", ["-H", "-f", f], { stdio: "ignore" });
    expect(readFileSync(f, "utf8")).toMatch(/^\|1\|[^|]+\|[^ ]+ ssh-ed25519 /);
    await expectConnects(server, { knownHosts: f });
  });

  it("accepts what ssh-keyscan wrote", async () => {
    // async: the server runs in this process and must keep answering meanwhile
    const { stdout: scanned } = await promisify(execFile)("ssh-keyscan", ["-p", String(server.port), "-t", "ed25519", "127.0.0.1"], { encoding: "utf8" });
    expect(scanned).toContain(`[127.0.0.1]:${server.port} ssh-ed25519`);
    await expectConnects(server, { knownHosts: knownHostsFile([scanned.trim()]) });
  });

  it("refuses a key marked @revoked", async () => {
    const err = (await tryConnect(server, { knownHosts: knownHostsFile([line(server, key), `@revoked ${line(server, key)}`]) })) as HostKeyError;
    expect(err.problem).toBe("revoked");
    expect(err.message).toMatch(/is marked @revoked in .*known_hosts_\d+:2/);
  });

  it("insecure: accepts any key", async () => {
    await expectConnects(server, { policy: "insecure" });
  });
});

describe("accept-new", () => {
  it("records an unknown host's key on first use, then trusts it under strict", async () => {
    const key = generateKey();
    const server = await startTestServer({ hostKeys: [key] });
    try {
      const f = join(dir, "sub", "known_hosts_new");
      await expectConnects(server, { policy: "accept-new", knownHosts: f });
      expect(readFileSync(f, "utf8")).toBe(`${line(server, key)}\n`);
      await expectConnects(server, { policy: "accept-new", knownHosts: f });
      expect(readFileSync(f, "utf8").trim().split("\n")).toHaveLength(1);
      await expectConnects(server, { knownHosts: f });
    } finally {
      await server.close();
    }
  });

  it("refuses a changed key loudly, naming the old and new fingerprints, and leaves the file alone", async () => {
    const oldKey = generateKey();
    const newKey = generateKey();
    const server = await startTestServer({ hostKeys: [newKey] });
    try {
      const f = knownHostsFile([line(server, oldKey)]);
      const before = readFileSync(f, "utf8");
      const err = (await tryConnect(server, { policy: "accept-new", knownHosts: f })) as HostKeyError;
      expect(err).toBeInstanceOf(HostKeyError);
      expect(err.problem).toBe("changed");
      expect(err.message).toContain(`WARNING: HOST KEY CHANGED: the host now presents ssh-ed25519 ${newKey.fingerprint}`);
      expect(err.message).toContain(`ssh-ed25519 ${oldKey.fingerprint} (${f}:1)`);
      expect(err.message).toContain(`ssh-keygen -R "[127.0.0.1]:${server.port}" -f ${f}`);
      expect(err.expected.map((k) => k.fingerprint)).toEqual([oldKey.fingerprint]);
      expect(readFileSync(f, "utf8")).toBe(before);
    } finally {
      await server.close();
    }
  });

  it("records several hosts connecting at once without losing a line", async () => {
    const servers = await Promise.all(Array.from({ length: 5 }, () => startTestServer()));
    try {
      const f = join(dir, "known_hosts_parallel");
      await Promise.all(servers.map((s) => expectConnects(s, { policy: "accept-new", knownHosts: f })));
      const entries = parseKnownHosts(readFileSync(f, "utf8"));
      expect(entries).toHaveLength(5);
      for (const s of servers) expect(entries.some((e) => entryMatchesHost(e.hosts, "127.0.0.1", s.port) && e.key.equals(s.hostKeys[0]!.blob))).toBe(true);
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }
  });
});

describe("a host with several keys", () => {
  it("is asked for the key type on file (the known type is offered first)", async () => {
    const ed = generateKey("ed25519");
    const ec = generateKey("ecdsa");
    const server = await startTestServer({ hostKeys: [ed, ec] });
    try {
      expect((await expectConnects(server, { knownHosts: knownHostsFile([line(server, ec)]) }))?.serverHostKey).toBe("ecdsa-sha2-nistp256");
      expect((await expectConnects(server, { knownHosts: knownHostsFile([line(server, ed)]) }))?.serverHostKey).toBe("ssh-ed25519");
    } finally {
      await server.close();
    }
  });
});

describe("known_hosts matching", () => {
  it("matches plain names on port 22, [host]:port otherwise, wildcards and negations", () => {
    expect(entryMatchesHost("10.0.0.7", "10.0.0.7", 22)).toBe(true);
    expect(entryMatchesHost("10.0.0.7", "10.0.0.7", 2222)).toBe(false);
    expect(entryMatchesHost("[10.0.0.7]:2222", "10.0.0.7", 2222)).toBe(true);
    expect(entryMatchesHost("a.example,10.0.0.*", "10.0.0.9", 22)).toBe(true);
    expect(entryMatchesHost("10.0.0.*,!10.0.0.9", "10.0.0.9", 22)).toBe(false);
    expect(entryMatchesHost("Node-?.Example", "node-1.example", 22)).toBe(true);
  });

  it("skips comments, unknown markers and malformed lines", () => {
    const k = generateKey().public.split(" ").slice(0, 2).join(" ");
    const entries = parseKnownHosts(
      ["", "# c", `h1 ${k}`, "h2 ssh-ed25519 !!!", `@weird h3 ${k}`, `@cert-authority *.example ${k}`, "h4 ssh-rsa"].join("\n"),
      "f",
    );
    expect(entries.map((e) => [e.hosts, e.line, e.marker])).toEqual([
      ["h1", 3, undefined],
      ["*.example", 6, "cert-authority"],
    ]);
  });
});
