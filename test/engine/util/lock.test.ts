import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LockTimeoutError, withLock } from "../../../src/engine/util/lock";

// The contenders are real processes running the lock's own code: lock.ts (node builtins only)
// transpiled to CommonJS once, so the test needs no compiled dist/.
let work: string;
let lockModule: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "sealant-lock-"));
  const source = await readFile(resolve(__dirname, "../../../src/engine/util/lock.ts"), "utf8");
  const out = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } });
  lockModule = join(work, "lock.cjs");
  await writeFile(lockModule, out.outputText);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let dirs = 0;
async function lockDir(): Promise<string> {
  const dir = join(work, `d${++dirs}`);
  await mkdir(dir);
  return dir;
}

/** A process that takes the lock on `dir`, prints "held", and keeps it until killed. */
function startHolder(dir: string): { child: ChildProcess; held: Promise<void> } {
  const script = `require(${JSON.stringify(lockModule)}).withLock(${JSON.stringify(dir)}, () => { console.log("held"); return new Promise(() => setInterval(() => {}, 1000)); })`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  const held = new Promise<void>((ok, fail) => {
    child.stdout!.on("data", (d: Buffer) => d.toString().includes("held") && ok());
    child.once("exit", (code) => fail(new Error(`holder exited ${code}`)));
  });
  return { child, held };
}

/**
 * A process that takes the lock `rounds` times; inside, it proves it is alone (an `inside` file
 * created exclusively) and increments a counter file by read, pause, write.
 */
function contender(dir: string, rounds: number, timeoutMs = 60_000): Promise<{ code: number | null; stderr: string }> {
  const script = `
    const { withLock } = require(${JSON.stringify(lockModule)});
    const fs = require("node:fs/promises");
    const path = require("node:path");
    const dir = ${JSON.stringify(dir)};
    (async () => {
      for (let i = 0; i < ${rounds}; i++) {
        await withLock(dir, async () => {
          const inside = await fs.open(path.join(dir, "inside"), "wx");
          const n = Number(await fs.readFile(path.join(dir, "counter"), "utf8").catch(() => "0"));
          await new Promise((r) => setTimeout(r, 1 + Math.random() * 3));
          await fs.writeFile(path.join(dir, "counter"), String(n + 1));
          await inside.close();
          await fs.unlink(path.join(dir, "inside"));
        }, { timeoutMs: ${timeoutMs} });
      }
    })().catch((err) => { console.error(err.message); process.exit(1); });`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((done) => child.once("exit", (code) => done({ code, stderr })));
}

/** A pid no process has any more. */
async function deadPid(): Promise<number> {
  const child = spawn("true");
  await new Promise((r) => child.once("exit", r));
  return child.pid!;
}

async function counter(dir: string): Promise<number> {
  return Number(await readFile(join(dir, "counter"), "utf8"));
}

describe("withLock", () => {
  it("takes a lock an older sealant left without an owner (crashed between mkdir and the owner file) after a short grace, not the full timeout", async () => {
    // GIVEN the partial state a crash between the two steps leaves: the lock directory, no owner
    const dir = await lockDir();
    await mkdir(join(dir, ".lock"));
    // WHEN another process wants the lock (willing to wait 20 s)
    const started = Date.now();
    const result = await contender(dir, 1, 20_000);
    // THEN it got it once the grace period (2 s) was over, far inside its timeout
    expect(result).toEqual({ code: 0, stderr: "" });
    expect(await counter(dir)).toBe(1);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("keeps a live holder's lock, failing a waiter with the lock, its owner and how to clear it; breaks it at once when the holder is killed", async () => {
    // GIVEN a process holding the lock
    const dir = await lockDir();
    const holder = startHolder(dir);
    await holder.held;
    // WHEN another waits for 300 ms
    const waited = await withLock(dir, async () => "got it", { timeoutMs: 300 }).catch((err: Error) => err);
    // THEN it times out naming the lock, the holder's pid and host, and what to do
    expect(waited).toBeInstanceOf(LockTimeoutError);
    const message = (waited as Error).message;
    expect(message).toContain(join(dir, ".lock"));
    expect(message).toContain(`held by pid ${holder.child.pid} on this host`);
    expect(message).toMatch(/still running; wait for it or stop it/);
    // WHEN the holder is killed (no chance to release)
    holder.child.kill("SIGKILL");
    await new Promise((r) => holder.child.once("exit", r));
    // THEN the next process takes the lock at once: its own wait is capped below the 2 s an ownerless lock is given
    expect(await contender(dir, 1, 1500)).toEqual({ code: 0, stderr: "" });
  });

  it("breaks a lock whose pid now belongs to another process (pid reused after a crash)", async () => {
    // GIVEN a lock naming a live pid but another process start (the owner died, its pid was reused)
    const dir = await lockDir();
    const other = spawn("sleep", ["30"]);
    try {
      await symlink(`sealant-lock host=${hostname()} pid=${other.pid} start=00000000/1 since=2026-01-01T00:00:00.000Z token=0`, join(dir, ".lock"));
      // WHEN a process wants the lock
      // THEN it gets it at once
      expect(await contender(dir, 1, 3000)).toEqual({ code: 0, stderr: "" });
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("never breaks a lock held from another host sharing the directory; the error names that host", async () => {
    // GIVEN a lock owned by a process on another machine (a home shared over NFS)
    const dir = await lockDir();
    await symlink(`sealant-lock host=build-7.example pid=1 start=- since=2026-01-01T00:00:00.000Z token=0`, join(dir, ".lock"));
    // WHEN this host waits for it
    const err = await withLock(dir, async () => undefined, { timeoutMs: 300 }).catch((e: Error) => e);
    // THEN it gives up, saying whose it is and how to clear it
    expect((err as Error).message).toBe(
      `timed out after 0s waiting for the lock ${join(dir, ".lock")}: held by pid 1 on host build-7.example (another machine sharing this directory) ` +
        `since 2026-01-01T00:00:00.000Z; if no sealant runs there any more, remove ${join(dir, ".lock")}`,
    );
  });

  it("lets exactly one of many processes in at a time, also while they race to break a stale lock", async () => {
    // GIVEN a stale lock (its owner's process is gone) and a breaker lock left by a crashed breaker
    const dir = await lockDir();
    const pid = await deadPid();
    await symlink(`sealant-lock host=${hostname()} pid=${pid} start=- since=2026-01-01T00:00:00.000Z token=0`, join(dir, ".lock"));
    await symlink(`sealant-lock host=${hostname()} pid=${pid} start=- since=2026-01-01T00:00:00.000Z token=1`, join(dir, ".lock.break"));
    // WHEN six processes each take the lock 25 times, incrementing a shared counter inside
    const results = await Promise.all(Array.from({ length: 6 }, () => contender(dir, 25)));
    // THEN none ever found another inside, and no increment was lost
    expect(results).toEqual(Array.from({ length: 6 }, () => ({ code: 0, stderr: "" })));
    expect(await counter(dir)).toBe(150);
  });

  it("releases only its own lock", async () => {
    // GIVEN a lock taken and, while held, broken and retaken by someone else (as an operator's rm would allow)
    const dir = await lockDir();
    const other = `sealant-lock host=${hostname()} pid=${process.pid} start=- since=2026-01-01T00:00:00.000Z token=other`;
    await withLock(dir, async () => {
      await rm(join(dir, ".lock"));
      await symlink(other, join(dir, ".lock"));
    });
    // THEN leaving the first holder's section left the other's lock in place
    expect(await readlink(join(dir, ".lock"))).toBe(other);
  });
});
