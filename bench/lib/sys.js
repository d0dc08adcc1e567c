"use strict";
// Processes, ports, registries and CPU accounting for the benchmark. Every process started
// here is tracked and killed on exit (normal, error or signal), so a run never leaves
// registries behind.
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const path = require("node:path");

const tracked = new Set(); // child processes we started and have not yet stopped
const exitHooks = []; // synchronous cleanups run on exit

function onExit(fn) {
  exitHooks.push(fn);
}

let cleanedUp = false;
function cleanupSync() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const child of tracked) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  tracked.clear();
  for (const fn of exitHooks.splice(0).reverse()) {
    try {
      fn();
    } catch (err) {
      process.stderr.write(`cleanup: ${err.message}\n`);
    }
  }
}
process.on("exit", cleanupSync);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, cleaning up\n`);
    cleanupSync();
    process.exit(130);
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Runs a command to completion; rejects with its stderr tail on a non-zero exit. */
function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: opts.env ?? process.env, cwd: opts.cwd });
    tracked.add(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", (e) => {
      tracked.delete(child);
      reject(e);
    });
    child.on("close", (code, signal) => {
      tracked.delete(child);
      if (code === 0) resolve({ stdout: out, stderr: err });
      else reject(new Error(`${cmd} ${args.join(" ")} exited ${code ?? signal}: ${err.trim().split("\n").slice(-5).join("\n")}`));
    });
  });
}

function httpGetStatus(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
  });
}

/**
 * A stock docker-registry (CNCF distribution 2.8) on 127.0.0.1:<free port> with filesystem
 * storage under `dir/storage`. Returns { port, host, pid, dir, storage, stop() }.
 */
async function startRegistry(dir, opts = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const storage = opts.storage ?? path.join(dir, "storage");
  fs.mkdirSync(storage, { recursive: true });
  const port = await freePort();
  const config = path.join(dir, "config.yml");
  fs.writeFileSync(
    config,
    [
      "version: 0.1",
      "log: { level: error, accesslog: { disabled: true } }",
      `storage: { filesystem: { rootdirectory: ${storage} }, delete: { enabled: true }${opts.readonly ? ", maintenance: { readonly: { enabled: true } }" : ""} }`,
      `http: { addr: 127.0.0.1:${port} }`,
      "",
    ].join("\n"),
  );
  const log = fs.openSync(path.join(dir, "registry.log"), "w");
  const child = spawn("docker-registry", ["serve", config], { stdio: ["ignore", log, log] });
  fs.closeSync(log);
  tracked.add(child);
  let exited = false;
  child.on("exit", () => {
    exited = true;
    tracked.delete(child);
  });
  const deadline = Date.now() + 10_000;
  while ((await httpGetStatus(`http://127.0.0.1:${port}/v2/`)) !== 200) {
    if (exited || Date.now() > deadline) {
      const text = fs.existsSync(path.join(dir, "registry.log")) ? fs.readFileSync(path.join(dir, "registry.log"), "utf8") : "";
      child.kill("SIGKILL");
      throw new Error(`docker-registry on port ${port} did not start:\n${text}`);
    }
    await sleep(30);
  }
  return {
    port,
    host: `127.0.0.1:${port}`,
    pid: child.pid,
    dir,
    storage,
    stop: () =>
      new Promise((resolve) => {
        if (exited) return resolve();
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        child.once("exit", () => {
          clearTimeout(t);
          resolve();
        });
        child.kill("SIGTERM");
      }),
  };
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

const TICK_MS = 1000 / 100; // CLK_TCK is 100 on Linux

/** CPU ms (user+system) of a live process, from /proc/<pid>/stat. */
function procCpuMs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime, stime
  } catch {
    return 0;
  }
}

/** CPU ms of this process's waited-for children (skopeo, the CLI): cutime + cstime. */
function childrenCpuMs() {
  const stat = fs.readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[13]) + Number(f[14])) * TICK_MS;
}

function selfCpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * Times `fn` (wall ms) and the CPU used meanwhile by this process, by finished children and
 * by the given live processes (registries). Not timed: a `sync` first.
 */
async function measure(fn, watchPids = []) {
  // Start from a clean page cache state: dirty pages left by the previous contender would
  // otherwise be flushed by this one's fsyncs and billed to it.
  execFileSync("sync");
  const c0 = { self: selfCpuMs(), children: childrenCpuMs(), others: watchPids.map(procCpuMs) };
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = {
    selfMs: selfCpuMs() - c0.self,
    childrenMs: childrenCpuMs() - c0.children,
    registryMs: watchPids.reduce((s, pid, i) => s + procCpuMs(pid) - c0.others[i], 0),
  };
  return { wallMs, cpu, value };
}

function rmrf(p) {
  fs.rmSync(p, { recursive: true, force: true });
}

function duBytes(dir) {
  try {
    return Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
  } catch {
    return 0;
  }
}

module.exports = { onExit, cleanupSync, freePort, run, startRegistry, measure, sleep, rmrf, duBytes, tracked };
