import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, constants as fsConstants, openSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

/**
 * `sealant build` interrupted by SIGTERM or SIGINT, with the real compiled CLI in a child process:
 * it stops within a couple of seconds with one `sealant: build interrupted (...)` line, ending by
 * that signal once it has cleaned up (a shell reads 130 or 143), kills its RUN processes, and
 * leaves no image, scratch directory, lease or temporary file behind.
 */

const CLI = resolve(__dirname, "../../dist/cli/main.js");
const temps: string[] = [];
const children: ChildProcess[] = [];

async function temp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

interface Running {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string; at: number }>;
}

function startBuild(home: string, tmp: string, ctx: string, extra: string[] = []): Running {
  const child = spawn(process.execPath, [CLI, "build", "-t", "interrupted:1", ...extra, ctx], { env: { ...process.env, SEALANT_HOME: home, TMPDIR: tmp } });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string; at: number }>((r) =>
    child.on("close", (code, signal) => r({ code, signal, stderr, stdout, at: Date.now() })),
  );
  return { child, done };
}

async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The lines sealant's error reporting wrote (progress lines go to stderr too). */
function sealantLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("sealant:"));
}

/** Nothing of the build stays: no image, no scratch dir in the home, no lease, nothing in TMPDIR. */
async function expectNothingLeft(home: string, tmp: string): Promise<void> {
  const index = JSON.parse(await readFile(join(home, "images/index.json"), "utf8").catch(() => '{"manifests":[]}')) as { manifests: unknown[] };
  expect(index.manifests).toEqual([]);
  expect(await readdir(join(home, "tmp")).catch(() => [])).toEqual([]);
  expect(await readdir(join(home, "images/leases")).catch(() => [])).toEqual([]);
  expect(await readdir(tmp)).toEqual([]);
}

describe("an interrupted build", () => {
  it.each([["SIGTERM"], ["SIGINT"]] as const)(
    "stops at %s within two seconds, kills its RUN processes and leaves nothing",
    { timeout: 60_000 },
    async (sig) => {
      // GIVEN a build whose RUN starts a long sleep (in a child of the shell) and records its pid
      const home = await temp("sealant-sig-home-");
      const tmp = await temp("sealant-sig-tmp-");
      const ctx = await temp("sealant-sig-ctx-");
      const pidFile = join(await temp("sealant-sig-pid-"), "pid");
      await writeFile(join(ctx, "data.txt"), "data\n");
      await writeFile(join(ctx, "Kubefile"), `FROM scratch\nCOPY data.txt data.txt\nRUN sh -c 'echo $$ > ${pidFile}; exec sleep 600'; echo unreachable\n`);
      const build = startBuild(home, tmp, ctx);
      await until("the RUN to start", async () => (await readFile(pidFile, "utf8").catch(() => "")).endsWith("\n"));
      const sleeper = Number(await readFile(pidFile, "utf8"));
      expect(alive(sleeper)).toBe(true);
      // WHEN the build gets the signal
      const sent = Date.now();
      build.child.kill(sig);
      const r = await build.done;
      // THEN it exits within two seconds with the shell's code and one line saying so
      expect(r.at - sent).toBeLessThan(4500); // under the 5 s backstop: the build itself stopped
      // (by the signal itself once it has cleaned up, as a shell expects: $? reads 128 + the signal)
      expect(r.signal).toBe(sig);
      expect(sealantLines(r.stderr)).toEqual([`sealant: build interrupted (${sig})`]);
      expect(r.stderr.endsWith(`sealant: build interrupted (${sig})\n`)).toBe(true);
      // AND the RUN's processes are gone, and nothing of the build is left
      await until("the RUN's sleep to die", async () => !alive(sleeper), 3000);
      await expectNothingLeft(home, tmp);
    },
  );

  it("stops while downloading from a server that trickles", { timeout: 60_000 }, async () => {
    // GIVEN a build whose ADD downloads from a loopback server sending a byte every 200 ms
    let requested = false;
    const server: Server = createServer((_req, res) => {
      requested = true;
      res.writeHead(200);
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write("x")), 200);
      res.on("close", () => clearInterval(t));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    try {
      const home = await temp("sealant-sig-home-");
      const tmp = await temp("sealant-sig-tmp-");
      const ctx = await temp("sealant-sig-ctx-");
      await mkdir(join(ctx, "empty"));
      await writeFile(join(ctx, "Kubefile"), `FROM scratch\nADD http://127.0.0.1:${(server.address() as { port: number }).port}/slow.bin data/\n`);
      const build = startBuild(home, tmp, ctx);
      await until("the download to start", async () => requested);
      await new Promise((r) => setTimeout(r, 500));
      // WHEN it gets SIGTERM
      const sent = Date.now();
      build.child.kill("SIGTERM");
      const r = await build.done;
      // THEN it stops at once and leaves nothing
      expect(r.at - sent).toBeLessThan(4500); // under the 5 s backstop: the build itself stopped
      expect(r.signal).toBe("SIGTERM");
      expect(sealantLines(r.stderr)).toEqual(["sealant: build interrupted (SIGTERM)"]);
      await expectNothingLeft(home, tmp);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("stops while reading a -f pipe whose writer sends nothing", { timeout: 60_000 }, async () => {
    // GIVEN a build reading its Kubefile from a FIFO that the test holds open and never writes to
    const ctx = await temp("sealant-sig-ctx-");
    const fifo = join(ctx, "generated");
    execFileSync("mkfifo", [fifo]);
    const keeper = openSync(fifo, fsConstants.O_RDWR);
    try {
      const home = await temp("sealant-sig-home-");
      const tmp = await temp("sealant-sig-tmp-");
      const build = startBuild(home, tmp, ctx, ["-f", fifo]);
      await new Promise((r) => setTimeout(r, 1000));
      // WHEN it gets SIGTERM
      const sent = Date.now();
      build.child.kill("SIGTERM");
      const r = await build.done;
      // THEN it stops at once (a blocking open of a FIFO used to make even process.exit hang)
      expect(r.at - sent).toBeLessThan(4500); // under the 5 s backstop: the build itself stopped
      expect(r.signal).toBe("SIGTERM");
      expect(sealantLines(r.stderr)).toEqual(["sealant: build interrupted (SIGTERM)"]);
      await expectNothingLeft(home, tmp);
    } finally {
      closeSync(keeper);
    }
  });

  it("stops while hashing a large COPY source", { timeout: 60_000 }, async () => {
    // GIVEN a build copying an 8 GiB (sparse) file: hashing it alone takes several seconds
    const home = await temp("sealant-sig-home-");
    const tmp = await temp("sealant-sig-tmp-");
    const ctx = await temp("sealant-sig-ctx-");
    execFileSync("truncate", ["-s", "8G", join(ctx, "big.img")]);
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\nCOPY big.img big.img\n");
    const build = startBuild(home, tmp, ctx);
    await new Promise((r) => setTimeout(r, 1500));
    // WHEN it gets SIGTERM
    const sent = Date.now();
    build.child.kill("SIGTERM");
    const r = await build.done;
    // THEN it stops at once, cleanly (not after the 5 s grace, with its scratch left)
    expect(r.at - sent).toBeLessThan(4500); // under the 5 s backstop: the build itself stopped
    expect(sealantLines(r.stderr)).toEqual(["sealant: build interrupted (SIGTERM)"]);
    await expectNothingLeft(home, tmp);
  });

  it("leaves a scratch directory after SIGKILL, which the next build removes", { timeout: 60_000 }, async () => {
    // GIVEN a build killed outright in the middle of a RUN
    const home = await temp("sealant-sig-home-");
    const tmp = await temp("sealant-sig-tmp-");
    const ctx = await temp("sealant-sig-ctx-");
    const pidFile = join(await temp("sealant-sig-pid-"), "pid");
    await writeFile(join(ctx, "Kubefile"), `FROM scratch\nRUN sh -c 'echo $$ > ${pidFile}; exec sleep 600'; true\n`);
    const killed = startBuild(home, tmp, ctx);
    await until("the RUN to start", async () => (await readFile(pidFile, "utf8").catch(() => "")).endsWith("\n"));
    killed.child.kill("SIGKILL");
    await killed.done;
    process.kill(Number(await readFile(pidFile, "utf8")), "SIGKILL"); // nothing was left to end it
    expect(await readdir(join(home, "tmp"))).toEqual([expect.stringMatching(new RegExp(`^build-${killed.child.pid}-`))]);
    // WHEN the next build runs in the same home
    await writeFile(join(ctx, "Kubefile"), "FROM scratch\n");
    const next = await startBuild(home, tmp, ctx).done;
    // THEN it succeeds and the dead build's scratch is gone
    expect(next.code).toBe(0);
    expect(await readdir(join(home, "tmp"))).toEqual([]);
  });
});
