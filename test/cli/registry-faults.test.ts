import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHostileRegistry, type HostileRegistry } from "../support/hostile-registry";

/**
 * The real CLI (compiled) against test/support/hostile-registry: a misbehaving registry gives
 * one `sealant: ...` line and exit 1, never a stack trace, and leaves no temp file or lease;
 * `--timeout` ends a trickling registry; credentials never travel over plain HTTP off this
 * machine unless --allow-http-credentials says so, and never to another host's token realm in
 * clear.
 *
 * The credential cases need a registry that is NOT on loopback by name: the CLI runs in a mount
 * namespace of the test's own (unshare, root) where /etc/hosts maps registry.test and
 * tokens.test to 127.0.0.1, so the packets stay on loopback while sealant sees other hosts.
 */
const CLI = resolve(__dirname, "../../dist/cli/main.js");
const user = { username: "sealant", password: "pw-Zr4-never-printed" };
const temps: string[] = [];
let plain: HostileRegistry;
let tokenSide: HostileRegistry;
let hostsFile: string;

async function temp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

beforeAll(async () => {
  plain = await startHostileRegistry({ users: [user], baseAuth: true, trickleMs: 500 });
  // Only its token listener is used: the realm "on another host" that records what it is sent.
  tokenSide = await startHostileRegistry();
  hostsFile = join(await temp("sealant-hosts-"), "hosts");
  await writeFile(hostsFile, "127.0.0.1 localhost\n127.0.0.1 registry.test tokens.test\n");
});
afterAll(async () => {
  await plain?.close();
  await tokenSide?.close();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the CLI with its own SEALANT_HOME; `renamed` runs it where registry.test and tokens.test name 127.0.0.1. */
function sealant(args: string[], opts: { home: string; input?: string; renamed?: boolean }): Promise<Run> {
  const started = Date.now();
  const [cmd, argv] = opts.renamed
    ? ["unshare", ["--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', hostsFile, process.execPath, CLI, ...args]]
    : [process.execPath, [CLI, ...args]];
  return new Promise((done) => {
    const child = spawn(cmd, argv as string[], { env: { ...process.env, SEALANT_HOME: opts.home, SEALANT_DEBUG: "" } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.stdin.end(opts.input ?? "");
    child.on("close", (code) => done({ code: code ?? -1, stdout, stderr, ms: Date.now() - started }));
  });
}

async function leftovers(home: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, e.name);
      if (e.isDirectory()) await walk(path);
      else if (e.name.startsWith(".tmp") || e.name.includes(".incoming") || dir.endsWith("leases")) out.push(path);
    }
  };
  await walk(home);
  return out;
}

/** One `sealant: ` line, exit 1, no stack trace. */
function oneError(r: Run): string {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^sealant: /);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  return lines[0]!.slice("sealant: ".length);
}

describe("GIVEN a misbehaving registry WHEN the CLI pulls from it", () => {
  it("THEN a connection dropped mid-blob is one line naming the reference and the blob, with nothing left behind", async () => {
    const home = await temp("sealant-cli-faults-");
    const r = await sealant(["pull", "-q", `${plain.host}/drop-mid-blob/x:1`], { home });
    const message = oneError(r);
    expect(message).toMatch(
      new RegExp(
        `^pull ${plain.host}/drop-mid-blob/x:1: blob ${plain.host}/drop-mid-blob/x@${plain.image.layerDigest}: the connection broke after \\d+ of \\d+ bytes`,
      ),
    );
    expect(await leftovers(home)).toEqual([]);
  });

  it("THEN a registry trickling a byte every 500 ms is stopped by --timeout with the deadline's error", async () => {
    const home = await temp("sealant-cli-faults-");
    const r = await sealant(["pull", "-q", "--timeout", "3s", `${plain.host}/trickle/x:1`], { home });
    expect(oneError(r)).toBe(`pull ${plain.host}/trickle/x:1: not finished within 3 s (the deadline of one pull)`);
    expect(r.ms).toBeLessThan(10_000);
    expect(await leftovers(home)).toEqual([]);
  });

  it("THEN a manifest without layers is named with the field", async () => {
    const home = await temp("sealant-cli-faults-");
    const message = oneError(await sealant(["pull", `${plain.host}/no-layers/x:1`], { home }));
    expect(message).toBe(`pull ${plain.host}/no-layers/x:1: manifest ${plain.host}/no-layers/x:1: layers: Invalid input: expected array, received undefined`);
  });

  it("THEN a bad --timeout, or --allow-http-credentials without --insecure, is a usage error", async () => {
    const home = await temp("sealant-cli-faults-");
    const bad = await sealant(["pull", "--timeout", "soon", `${plain.host}/good/x:1`], { home });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^sealant: --timeout "soon": expected a duration such as 90s, 10m or 1h/);
    const flag = await sealant(["pull", "--allow-http-credentials", `${plain.host}/good/x:1`], { home });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/^sealant: --allow-http-credentials only applies with --insecure/);
  });
});

describe("GIVEN credentials and a registry that is not on loopback", () => {
  const registry = () => `registry.test:${plain.port}`;
  const basic = Buffer.from(`${user.username}:${user.password}`).toString("base64");

  it("WHEN login --insecure finds only plain HTTP THEN it refuses before sending the password, and stores nothing", async () => {
    const home = await temp("sealant-cli-creds-");
    const before = plain.authorizations.length;
    const r = await sealant(["login", "--insecure", registry(), "-u", user.username, "--password-stdin"], { home, input: `${user.password}\n`, renamed: true });
    expect(oneError(r)).toBe(
      `login ${registry()}: ${registry()} is reached over plain HTTP, so sealant does not send it credentials (anyone on the way could read them); ` +
        "give the registry TLS, or allow credentials over HTTP explicitly (--allow-http-credentials) on a network you trust",
    );
    expect(plain.authorizations.slice(before).filter(Boolean)).toEqual([]);
    await expect(stat(join(home, "auth.json"))).rejects.toThrow(/ENOENT/);
  });

  it("WHEN the user allows credentials over HTTP THEN login sends them and later pulls use them; without the flag a pull withholds them and says so", async () => {
    const home = await temp("sealant-cli-creds-");
    const login = await sealant(["login", "--insecure", "--allow-http-credentials", registry(), "-u", user.username, "--password-stdin"], {
      home,
      input: `${user.password}\n`,
      renamed: true,
    });
    expect(login.stderr).toBe("");
    expect(login.stdout).toBe(`login succeeded for ${registry()}\n`);

    const before = plain.authorizations.length;
    const withheld = await sealant(["pull", "-q", "--insecure", `${registry()}/basic/x:1`], { home, renamed: true });
    expect(oneError(withheld)).toMatch(
      /401 UNAUTHORIZED: authentication required; registry\.test:\d+ is reached over plain HTTP, so sealant does not send it credentials/,
    );
    expect(plain.authorizations.slice(before).filter(Boolean)).toEqual([]);

    const allowed = await sealant(["pull", "-q", "--insecure", "--allow-http-credentials", `${registry()}/basic/x:1`], { home, renamed: true });
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(plain.authorizations).toContain(`Basic ${basic}`);
  });

  it("WHEN a TLS registry names a token realm on another host over plain HTTP THEN the credentials are not sent there", async () => {
    const home = await temp("sealant-cli-creds-");
    const tokens = tokenSide.tokenHost.replace("127.0.0.1", "tokens.test");
    const realm = await startHostileRegistry({ users: [user], tls: { names: ["registry.test"] }, realmHost: tokens });
    try {
      const name = `registry.test:${realm.port}`;
      await writeFile(join(home, "auth.json"), JSON.stringify({ auths: { [name]: { auth: basic } } }), { mode: 0o600 });
      const r = await sealant(["pull", "-q", "--insecure", `${name}/realm-other-host-http/x:1`], { home, renamed: true });
      expect(oneError(r)).toMatch(
        new RegExp(
          `^pull ${name}/realm-other-host-http/x:1: GET ${tokens}/token: ${name} asks for a token from ${tokens} over plain HTTP; sealant sends credentials to a token service only over TLS$`,
        ),
      );
      expect(tokenSide.tokenAuthorizations).toEqual([]);
      expect(realm.tokenAuthorizations).toEqual([]);
    } finally {
      await realm.close();
    }
  });

  it("WHEN a registry echoes the credentials in its error THEN the CLI prints neither the password nor its Basic form", async () => {
    const home = await temp("sealant-cli-creds-");
    await writeFile(join(home, "auth.json"), JSON.stringify({ auths: { [plain.host]: { auth: basic } } }), { mode: 0o600 });
    const r = await sealant(["pull", "-q", `${plain.host}/echo-credentials/x:1`], { home });
    const message = oneError(r);
    expect(message).toContain("you sent Basic ***");
    expect(r.stderr + r.stdout).not.toContain(user.password);
    expect(r.stderr + r.stdout).not.toContain(basic);
  });
});
