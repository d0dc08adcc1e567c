import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * `sealant build` with bad inputs, through the real compiled CLI: each is one `sealant: ...` line
 * naming what is wrong (the Kubefile line where there is one), a non-zero exit, no stack trace,
 * and no image or scratch directory left.
 */

const CLI = resolve(__dirname, "../../dist/cli/main.js");
const temps: string[] = [];
let home: string;
let ctx: string;

async function temp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

function sealant(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, SEALANT_HOME: home, ...env } });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => done({ code, stderr }));
  });
}

beforeAll(async () => {
  home = await temp("sealant-cli-inputs-home-");
  ctx = await temp("sealant-cli-inputs-ctx-");
  await writeFile(join(ctx, "a.txt"), "a\n");
});
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

async function kubefile(text: string): Promise<void> {
  await writeFile(join(ctx, "Kubefile"), text);
}

describe("sealant build refuses bad inputs with one line", () => {
  it.each([
    ["an unknown architecture", ["--platform", "amd46"], 'cannot build for linux/amd46: unknown architecture "amd46" (expected one of amd64, arm64,'],
    ["a non-Linux platform", ["--platform", "windows/amd64"], "cannot build for windows/amd64: cluster images run on Linux hosts"],
    ["a missing image list (before any step runs)", ["--image-list", "/nonexistent/list"], "cannot read the image list /nonexistent/list: no such file"],
    ["a missing Kubefile", ["-f", "/nonexistent/Kubefile"], "cannot read the Kubefile /nonexistent/Kubefile: no such file"],
    ["a bad download size", ["--download-max-size", "lots"], "--download-max-size lots: expected a size such as 512M, 4G or a number of bytes"],
  ])("%s", async (_what, flags, message) => {
    await kubefile("FROM scratch\nCOPY a.txt a.txt\nRUN touch ran\n");
    const r = await sealant(["build", "-q", "-t", "bad:1", ...flags, ctx]);
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`sealant: ${message}`);
    expect(lines[0]).not.toContain("ENOENT");
  });

  it.each([
    [
      "an exec-form RUN of a missing program",
      'RUN ["/nonexistent/tool", "x"]',
      'Kubefile:2: RUN ["/nonexistent/tool","x"]: cannot start /nonexistent/tool: no such program',
    ],
    ["ENV 1BAD=x", "ENV 1BAD=x", 'Kubefile:2: ENV name "1BAD" is not a valid variable name'],
    ["KUBEVERSION not-a-range", "KUBEVERSION not-a-range", 'Kubefile:2: KUBEVERSION "not-a-range" is not a version range'],
    ["a malformed %-escape", "ADD http://127.0.0.1:1/a%zz x", 'Kubefile:2: ADD source "http://127.0.0.1:1/a%zz" has a malformed %-escape in its path'],
  ])("%s", async (_what, line, message) => {
    await kubefile(`FROM scratch\n${line}\n`);
    const r = await sealant(["build", "-q", "-t", "bad:1", ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await readdir(join(home, "tmp")).catch(() => [])).toEqual([]);
  });

  it("names the line of an ARG doubled 24 times, quickly", async () => {
    await kubefile(["FROM scratch", "ARG A=0123456789abcdef0123456789abcdef", ...Array<string>(24).fill("ARG A=$A$A")].join("\n"));
    const started = Date.now();
    const r = await sealant(["build", "-q", "-t", "bad:1", ctx]);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Kubefile:18: ARG: expanding "$A$A" gives more than 1 MiB of text');
    expect(r.stderr).not.toContain("Invalid string length");
  });

  it("builds, but warns, when ENV stores a build argument with a secret name", async () => {
    await kubefile("FROM scratch\nARG DB_PASSWORD\nENV PW=$DB_PASSWORD\n");
    const r = await sealant(["build", "-t", "warned:1", "--build-arg", "DB_PASSWORD=hunter2", ctx]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: .*\/Kubefile:3: ENV stores the build argument "DB_PASSWORD" in the image/);
    expect(r.stderr).not.toContain("hunter2");
  });

  it("quotes at most 200 characters of a failing RUN's command", async () => {
    await kubefile(`FROM scratch\nRUN exit 3 # ${"x".repeat(5000)}\n`);
    const r = await sealant(["build", "-q", "-t", "bad:1", ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Kubefile:2: RUN exit 3 # x{191}\.\.\. \(5009 characters\) exited 3 \(no stderr\)\n$/);
  });

  it("gives up on a trickling download after --download-timeout", async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200);
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write("x")), 100);
      res.on("close", () => clearInterval(t));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/slow.tar`;
      await kubefile(`FROM scratch\nADD ${url} x/\n`);
      const started = Date.now();
      const r = await sealant(["build", "-q", "-t", "bad:1", "--download-timeout", "1", ctx]);
      expect(Date.now() - started).toBeLessThan(8000);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`sealant: ${join(ctx, "Kubefile")}:2: ADD ${url}: the download took longer than 1 s\n`);
      expect(await readdir(join(home, "tmp")).catch(() => [])).toEqual([]);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("follows no redirect from https to plain http", async () => {
    // GIVEN an https server on loopback (its self-signed certificate trusted through
    // NODE_EXTRA_CA_CERTS) that redirects to plain http
    const dir = await temp("sealant-cli-tls-");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    const server = createHttpsServer({ key: await readFile(join(dir, "key.pem")), cert: await readFile(join(dir, "cert.pem")) }, (req, res) => {
      if (req.url === "/file.bin") res.end("over tls");
      else res.writeHead(302, { location: "http://127.0.0.1:1/file.bin" }).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    try {
      const base = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
      const env = { NODE_EXTRA_CA_CERTS: join(dir, "cert.pem") };
      // THEN a direct https download works, and the redirect to http is refused by name
      await kubefile(`FROM scratch\nADD ${base}/file.bin x/\n`);
      expect((await sealant(["build", "-q", "-t", "tls:1", ctx], env)).code).toBe(0);
      await kubefile(`FROM scratch\nADD ${base}/moved.bin x/\n`);
      const r = await sealant(["build", "-q", "-t", "tls:2", ctx], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`sealant: ${join(ctx, "Kubefile")}:2: ADD ${base}/moved.bin: redirected from https to plain http (127.0.0.1:1); refused\n`);
    } finally {
      server.close();
    }
  });
});
