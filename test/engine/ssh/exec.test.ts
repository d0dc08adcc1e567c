import { performance } from "node:perf_hooks";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RemoteCommandError, SshConnection, SshError } from "../../../src/engine/ssh";
import { DEFAULT_PASSWORD, fakeSudoEnv, generateKey, startTestServer, type TestServer } from "./support/server";

function connectTo(server: TestServer, extra: Partial<Parameters<typeof SshConnection.connect>[0]> = {}): Promise<SshConnection> {
  return SshConnection.connect({
    host: server.host,
    port: server.port,
    user: "root",
    password: DEFAULT_PASSWORD,
    hostKey: { fingerprints: [server.hostKeys[0]!.fingerprint] },
    ...extra,
  });
}

describe("SshConnection exec", () => {
  let server: TestServer;
  let conn: SshConnection;
  beforeAll(async () => {
    server = await startTestServer();
    conn = await connectTo(server);
  });
  afterAll(async () => {
    await conn?.close();
    await server?.close();
  });

  it("returns stdout, stderr and the exit code of a real command", async () => {
    // GIVEN a command that writes to both streams and exits 3
    const r = await conn.exec("echo out; echo err >&2; exit 3");
    // THEN all three come back
    expect(r).toEqual({ code: 3, stdout: "out\n", stderr: "err\n" });
    expect((await conn.exec("pwd")).stdout.trim()).toBe(server.dir);
  });

  it("negotiates aes128-gcm and no compression", () => {
    expect(conn.negotiated?.cipher).toBe("aes128-gcm@openssh.com");
    expect(conn.negotiated?.compress).toBe("none");
  });

  it("runs many commands over one TCP connection, quickly", async () => {
    const before = server.connections;
    const n = 200;
    const started = performance.now();
    for (let i = 0; i < n; i++) {
      const r = await conn.exec(`echo ${i}`);
      expect(r.stdout).toBe(`${i}\n`);
    }
    const perExec = (performance.now() - started) / n;
    console.log(`[ssh] ${n} sequential execs over one connection: ${perExec.toFixed(2)} ms per exec (incl. spawning sh)`);
    expect(server.connections).toBe(before);
    expect(conn.connects).toBe(1);
  });

  it("runs more concurrent commands than a connection has sessions (they queue)", async () => {
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => conn.exec(`sleep 0.02; echo ${i}`)));
    expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 30 }, (_, i) => String(i)));
  });

  it("feeds stdin from a string, a Buffer and a stream", async () => {
    expect((await conn.exec("cat", { stdin: "hello\n" })).stdout).toBe("hello\n");
    expect((await conn.exec("wc -c", { stdin: Buffer.alloc(1000, 1) })).stdout.trim()).toBe("1000");
    const chunks = Array.from({ length: 64 }, () => Buffer.alloc(64 * 1024, 7));
    const r = await conn.exec("wc -c", { stdin: Readable.from(chunks) });
    expect(r.stdout.trim()).toBe(String(64 * 64 * 1024));
  });

  it("closes stdin when none is given (a command reading it does not hang)", async () => {
    expect(await conn.exec("cat; echo done")).toMatchObject({ code: 0, stdout: "done\n" });
  });

  it("does not hang when the command exits without reading a large stdin", async () => {
    const big = Readable.from(Array.from({ length: 200 }, () => Buffer.alloc(64 * 1024)));
    const r = await conn.exec("exit 0", { stdin: big, timeoutMs: 10_000 });
    expect(r.code).toBe(0);
  });

  it("sets environment variables for the command", async () => {
    const r = await conn.exec(`printf '%s|%s' "$A" "$B"`, { env: { A: "x y", B: "it's" } });
    expect(r.stdout).toBe("x y|it's");
  });

  it("streams output live and keeps only the tail beyond the cap", async () => {
    const seen: Buffer[] = [];
    const r = await conn.exec("seq 1 100000", { maxStdoutBytes: 1000, onStdout: (c) => seen.push(c) });
    expect(Buffer.concat(seen).toString().split("\n")[0]).toBe("1");
    expect(r.stdout.length).toBe(1000);
    expect(r.stdout.endsWith("99999\n100000\n")).toBe(true);
    expect(r.truncatedBytes).toBeGreaterThan(500_000);
  });

  it("kills a command that runs past its timeout and says so", async () => {
    const started = performance.now();
    const err = await conn.exec("echo $$ > timeout.pid; echo started >&2; exec sleep 30", { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteCommandError);
    expect((err as RemoteCommandError).message).toMatch(/sleep 30 timed out after 1000 ms: started/);
    expect((err as RemoteCommandError).timedOut).toBe(true);
    expect(performance.now() - started).toBeLessThan(5000);
    // the remote process is gone (its kill is asynchronous: on a loaded machine it may take a moment)
    expect(
      (
        await conn.exec(
          "for i in $(seq 1 50); do kill -0 $(cat timeout.pid) 2>/dev/null || break; sleep 0.1; done; kill -0 $(cat timeout.pid) 2>/dev/null && echo alive || echo gone",
        )
      ).stdout,
    ).toBe("gone\n");
    // the connection is still good
    expect((await conn.exec("echo ok")).stdout).toBe("ok\n");
  });

  it("kills the whole command even where signals are refused and a closed channel leaves it running (OpenSSH, root)", async () => {
    const stubborn = await startTestServer({ likeOpenSshRoot: true });
    const c = await connectTo(stubborn);
    try {
      // GIVEN a command with a child process, that outlives its channel on this server
      const err = await c
        .exec("sleep 30 & echo $! > child.pid; echo $$ > parent.pid; wait", { timeoutMs: 300, stdin: new Readable({ read() {} }) })
        .catch((e: unknown) => e);
      expect((err as RemoteCommandError).timedOut).toBe(true);
      // THEN the signal request was sent (and ignored), and both processes are gone anyway
      expect(stubborn.signals).toEqual(["KILL"]);
      // (a killed orphan may linger as a zombie where PID 1 does not reap: that counts as gone)
      const check = await c.exec(`for f in parent.pid child.pid; do s=$(ps -o stat= -p $(cat $f)); case "$s" in ""|Z*) echo gone;; *) echo alive;; esac; done`);
      expect(check.stdout).toBe("gone\ngone\n");
      expect(stubborn.execs.some((e) => /kill -s KILL -- -\d+/.test(e))).toBe(true);
    } finally {
      await c.close();
      await stubborn.close();
    }
  });

  it("keeps its own PID line out of stderr, even after other output", async () => {
    const seen: string[] = [];
    const r = await conn.exec("echo real >&2", { onStderr: (c) => seen.push(c.toString()) });
    expect(r.stderr).toBe("real\n");
    expect(seen.join("")).toBe("real\n");
  });

  it("sends KILL to a timed-out command whose stdin is still open", async () => {
    const endless = new Readable({ read() {} }); // never ends: no EOF is sent
    const err = await conn.exec("sleep 30", { timeoutMs: 200, stdin: endless }).catch((e: unknown) => e);
    expect((err as RemoteCommandError).timedOut).toBe(true);
    expect(server.signals).toContain("KILL");
  });

  it("aborts a running command on the caller's signal", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("user pressed ^C")), 200);
    const err = await conn.exec("sleep 30", { signal: ac.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteCommandError);
    expect((err as RemoteCommandError).aborted).toBe(true);
    expect((err as Error).message).toBe(`${conn.host}: sleep 30 aborted`);
    await expect(conn.exec("true", { signal: ac.signal })).rejects.toThrow(/aborted/);
  });

  it("run() throws host, command, exit code and stderr tail; exec() does not", async () => {
    const err = await conn.run("echo line1 >&2; echo 'etcd: bind failed' >&2; exit 1").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteCommandError);
    const e = err as RemoteCommandError;
    expect(e.host).toBe(`127.0.0.1:${server.port}`);
    expect(e.exitCode).toBe(1);
    expect(e.stderrTail).toBe("line1\netcd: bind failed");
    expect(e.message).toBe(`127.0.0.1:${server.port}: echo line1 >&2; echo 'etcd: bind failed' >&2; exit 1 exited 1: line1\netcd: bind failed`);
    expect((await conn.run("echo fine")).stdout).toBe("fine\n");
  });

  it("reports a command killed by a signal", async () => {
    const r = await conn.exec("kill -TERM $$");
    expect(r.signal).toBe("SIGTERM");
    expect(r.code).toBe(-1);
    await expect(conn.run("kill -TERM $$")).rejects.toThrow(/was killed by SIGTERM/);
  });

  it("redacts secrets from the command and its output in errors", async () => {
    const token = "abcdef.0123456789abcdef";
    const err = (await conn.run(`echo "bad token ${token}" >&2; exit 2`, { secrets: [token] }).catch((e: unknown) => e)) as Error;
    expect(err.message).not.toContain(token);
    expect(err.message).toContain("bad token ***");
    expect(err.message).toMatch(/echo "bad token \*\*\*" >&2; exit 2 exited 2/);
  });

  it("reconnects on the next command when the connection was lost", async () => {
    const c = await connectTo(server);
    try {
      // GIVEN the server drops every client connection
      const before = server.connections;
      await c.exec("echo hi");
      // sever the TCP connection under the client
      (c as unknown as { dialed: { client: { destroy(): void } } }).dialed.client.destroy();
      await new Promise((r) => setTimeout(r, 100));
      // WHEN the next command runs THEN it runs on a new connection
      expect((await c.exec("echo again")).stdout).toBe("again\n");
      expect(c.connects).toBe(2);
      expect(server.connections).toBe(before + 1);
    } finally {
      await c.close();
    }
    await expect(c.exec("true")).rejects.toThrow(/connection is closed/);
  });
});

describe("sudo for a non-root user", () => {
  it("uses sudo -n when it needs no password", async () => {
    const sudo = fakeSudoEnv({ nopasswd: true });
    const server = await startTestServer({ users: { deploy: { password: "deploy-pw" } }, env: sudo.env });
    const conn = await connectTo(server, { user: "deploy", password: "deploy-pw" });
    try {
      expect((await conn.exec("echo $SUDO_OK", { sudo: true })).stdout).toBe("1\n");
      expect((await conn.exec("echo ${SUDO_OK:-no}")).stdout).toBe("no\n");
      expect(server.execs.at(-2)).toBe(`echo "@sealant-pid $$" >&2; sudo -n -- sh -c 'echo $SUDO_OK'`);
    } finally {
      await conn.close();
      await server.close();
      sudo.cleanup();
    }
  });

  it("gives the sudo password on stdin, never on the command line, and keeps the command's stdin", async () => {
    const password = "s3cret-sudo-pw";
    const sudo = fakeSudoEnv({ password });
    const server = await startTestServer({ users: { deploy: { password } }, env: sudo.env });
    const lines: string[] = [];
    const conn = await connectTo(server, { user: "deploy", password, log: (l) => lines.push(l) });
    try {
      const r = await conn.exec('echo $SUDO_OK "$K"; cat', { sudo: true, stdin: "payload\n", env: { K: "env-value" } });
      expect(r).toMatchObject({ code: 0, stdout: "1 env-value\npayload\n" });
      for (const cmd of server.execs) expect(cmd).not.toContain(password);
      // The env's value travels on stdin too: the command line holds only the command.
      expect(server.execs.at(-1)).toMatch(/^echo "@sealant-pid \$\$" >&2; sudo -k -S -p '' -- sh -c '/);
      expect(server.execs.at(-1)).toContain(`echo $SUDO_OK "$K"; cat`);
      expect(server.execs.at(-1)).not.toContain("env-value");
      expect(lines.join("\n")).not.toContain(password);
    } finally {
      await conn.close();
      await server.close();
      sudo.cleanup();
    }
  });

  it("fails clearly when sudo wants a password and none is known", async () => {
    const sudo = fakeSudoEnv({});
    const key = generateKey();
    const server = await startTestServer({ users: { deploy: { publicKeys: [key.public] } }, env: sudo.env });
    const conn = await connectTo(server, { user: "deploy", password: undefined, privateKey: key.private });
    try {
      const err = await conn.exec("true", { sudo: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SshError);
      expect((err as Error).message).toMatch(/sudo needs a password for user "deploy" \(sudo -n: sudo: a password is required\); set sudoPassword/);
    } finally {
      await conn.close();
      await server.close();
      sudo.cleanup();
    }
  });
});
