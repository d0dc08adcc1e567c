"use strict";
// A rate-limited operator link (issue 14.4): hosts in network namespaces on a bridge of their
// own (the sandbox's Kubernetes mode: each host its own netns and node address, the bridge in
// a hub namespace, one veth from this machine's namespace into the hub), the operator's side of
// that veth shaped with `tc` (tbf, BENCH_SHAPED_MBIT, default "100,25" Mbit/s: each rate its own
// round) and the hosts' LAN —
// the bridge — left as fast as the machine is. An image of BENCH_SHAPED_LAYERS layers of
// random (incompressible) data, BENCH_SHAPED_MIB MiB in all, goes onto BENCH_SHAPED_HOSTS hosts
// (default "10,30") four ways, each from hosts with nothing of ours on them:
//   one host  - applyCluster to the first host alone: the time every other figure is compared to;
//   direct    - applyCluster, distribution direct: the operator sends every host every layer;
//   relay     - applyCluster, distribution relay, for each fanout of BENCH_SHAPED_FANOUT (default "3", the default);
//   openssh   - parallel `ssh host 'tar -x' < rootfs.tar` from the operator, one per host.
// For every sealant run the operator process's memory is sampled (every 20 ms: resident set,
// which counts the stream workers' threads too, and the JS heap), its peak reported beside the
// resident set before the run, and the growth per host. CPU time per run: the operator
// process's (all its threads) and each host's (its cgroup's cpuacct.usage: its sshd and all it
// runs), the hosts' split by their part in the tree (the seed, hosts passing layers on, leaves).
// BENCH_SHAPED_RUNS (default "relay,direct,openssh") picks the contenders besides one host, at the
// first rate; later (slower) rates run relay only.
// BENCH_SHAPED_NAME and BENCH_SHAPED_SUBNET let a second run go beside one already up (its sandbox, its bridge).
// BENCH_SHAPED_ACCT=1 (needs `accton` and `dump-acct`, Debian's acct) also turns on process
// accounting inside each host's PID namespace for each relay run and prints, per part in the
// tree, the CPU seconds per host of each command (sshd, ssh, tail, sha256sum, tar, ...).
// All hosts share this machine's cores, which real hosts do not: the hosts' CPU in all over the
// cores is the least wall time this machine can simulate a run in ("CPU floor", printed beside
// each run). At 100 Mbit/s, 30 hosts' CPU exceeds what 2 cores do in twice one host's time, so
// the 30-host ratio there measures this machine, not the relay; at 25 Mbit/s (a laptop on a VPN)
// the floor stays below the link's time and the ratio is the relay's.
// Run: `node bench/cluster-shaped.js` after `npx tsc -p tsconfig.json` (root: namespaces, tc);
// `node --expose-gc ...` lets each run start from a collected heap.
// Writes bench/shaped-results.json and prints the figures block for bench/README.md.
const fs = require("node:fs");
const path = require("node:path");
const crypto = require("node:crypto");
const os = require("node:os");
const { spawn, execFileSync } = require("node:child_process");
const { onExit } = require("./lib/sys");
const { accounting, accounted, accountedByPart } = require("./lib/host-acct");

const ROOT = path.resolve(__dirname, "..");
const { Session } = require("../dist/engine/session");
const { build } = require("../dist/engine/build");
const { sandboxUp, sandboxDown, sshArgs } = require("../dist/engine/sandbox");
const { applyCluster } = require("../dist/engine/cluster");
const { parseClusterSpec } = require("../dist/engine/cluster/spec");

const MiB = 1024 * 1024;
const MBITS = (process.env.BENCH_SHAPED_MBIT ?? "100,25").split(",").map(Number);
const TOTAL_MIB = Number(process.env.BENCH_SHAPED_MIB ?? 64);
const LAYERS = Number(process.env.BENCH_SHAPED_LAYERS ?? 8);
const SIZES = (process.env.BENCH_SHAPED_HOSTS ?? "10,30").split(",").map(Number);
const FANOUTS = (process.env.BENCH_SHAPED_FANOUT ?? "3").split(",").map(Number);
const CORES = os.cpus().length;
const SUBNET = process.env.BENCH_SHAPED_SUBNET ?? "10.231.201.0/24";
const RUNS = (process.env.BENCH_SHAPED_RUNS ?? "relay,direct,openssh").split(",");
/** Each host's own tmpfs: the hosts share one machine disk, whose writeback is not what is measured. */
const DATA_ROOT = "/tmp/sealant-shaped";
const WORK = path.join(process.env.BENCH_WORK ? path.resolve(process.env.BENCH_WORK) : path.join(__dirname, ".work"), "shaped");
const log = (s) => process.stdout.write(`${s}\n`);

function sh(cmd, args) {
  return execFileSync(cmd, args, { encoding: "utf8" });
}

/** The system ssh client on a host, stdin from a file if given. */
function openssh(sandbox, ip, command, stdinFile) {
  return new Promise((resolve, reject) => {
    const fd = stdinFile ? fs.openSync(stdinFile, "r") : "ignore";
    const child = spawn("ssh", ["-c", "aes128-gcm@openssh.com", "-o", "Compression=no", ...sshArgs(sandbox, ip, command)], { stdio: [fd, "pipe", "pipe"] });
    if (typeof fd === "number") fs.closeSync(fd);
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`ssh ${ip} ${command}: exit ${code}: ${err.trim()}`))));
  });
}

/** The image: LAYERS COPY layers of random data, and the same files as one tar for the OpenSSH baseline. */
async function buildImage(session) {
  const context = path.join(WORK, "context");
  fs.mkdirSync(context, { recursive: true });
  const per = Math.floor((TOTAL_MIB * MiB) / LAYERS);
  const lines = ["FROM scratch", "LABEL io.sealant.runtime=hooks"];
  for (let i = 0; i < LAYERS; i++) {
    fs.mkdirSync(path.join(context, `l${i}`));
    fs.writeFileSync(path.join(context, `l${i}`, "data.bin"), crypto.randomBytes(per));
    lines.push(`COPY l${i} l${i}`);
  }
  fs.writeFileSync(path.join(context, "Kubefile"), `${lines.join("\n")}\n`);
  const r = await build(session, { context, tag: "bench/shaped:1" });
  const tarFile = path.join(WORK, "rootfs.tar");
  sh("tar", ["-cf", tarFile, "-C", context, ...Array.from({ length: LAYERS }, (_, i) => `l${i}`)]);
  const blobs = r.platforms.flatMap((p) => p.layers).reduce((n, l) => n + l.size, 0);
  return { ref: `bench/shaped:1@${r.digest}`, blobBytes: blobs, tarFile, tarBytes: fs.statSync(tarFile).size };
}

function spec(sandbox, name, image, ips, distribution) {
  return parseClusterSpec({
    name,
    image,
    hosts: [{ ips, roles: ["master"] }],
    ssh: { privateKeyPath: sandbox.ssh.pk, knownHosts: sandbox.ssh.knownHosts },
    dataRoot: DATA_ROOT,
    parallelism: ips.length,
    distribution,
  });
}

async function wipe(sandbox, ips) {
  await Promise.all(ips.map((ip) => openssh(sandbox, ip, `rm -rf ${DATA_ROOT}`)));
}

/** Samples this process's memory until stopped: the resident set before, its peak, the JS heap's peak (MiB). */
function memorySampler() {
  if (global.gc) global.gc();
  const before = process.memoryUsage();
  let rss = before.rss;
  let heap = before.heapUsed;
  let buffers = before.arrayBuffers;
  const sample = () => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed);
    buffers = Math.max(buffers, m.arrayBuffers);
  };
  const timer = setInterval(sample, 20);
  return () => {
    clearInterval(timer);
    sample();
    const mib = (b) => Math.round((b / MiB) * 10) / 10;
    return { rssBeforeMiB: mib(before.rss), rssPeakMiB: mib(rss), heapPeakMiB: mib(heap), arrayBuffersPeakMiB: mib(buffers) };
  };
}

/** Each host's cpuacct cgroup (Kubernetes-mode sandbox hosts have their own; see src/engine/sandbox/cgroups.ts). */
function hostCgroups(sandbox) {
  const own = fs
    .readFileSync("/proc/self/cgroup", "utf8")
    .split("\n")
    .map((l) => l.split(":"))
    .find((f) => f[1]?.split(",").includes("cpuacct"));
  const base = own ? path.join("/sys/fs/cgroup/cpuacct", own.slice(2).join(":")) : undefined;
  return sandbox.hosts.map((h) => {
    const dir = base && path.join(base, `sealant-${sandbox.name}-host${h.index}`);
    return dir && fs.existsSync(path.join(dir, "cpuacct.usage")) ? path.join(dir, "cpuacct.usage") : undefined;
  });
}

/** CPU seconds used so far: each host's (undefined where not readable) and this process's. */
function cpuNow(cgroups) {
  const u = process.cpuUsage();
  return { hosts: cgroups.map((f) => (f ? Number(fs.readFileSync(f, "utf8")) / 1e9 : undefined)), operator: (u.user + u.system) / 1e6 };
}

/** The CPU a run used between two readings: in all, the operator's, and per host by its part in the tree. */
function cpuSpent(before, after, ips, children) {
  const hosts = ips.map((_, i) => (after.hosts[i] ?? NaN) - (before.hosts[i] ?? NaN));
  const r2 = (x) => Math.round(x * 100) / 100;
  const avg = (xs) => (xs.length ? r2(xs.reduce((a, b) => a + b, 0) / xs.length) : undefined);
  const kids = ips.map((ip) => children?.get(ip) ?? 0);
  return {
    operatorS: r2(after.operator - before.operator),
    hostsS: r2(hosts.reduce((a, b) => a + b, 0)),
    seedS: children ? r2(hosts[0]) : undefined,
    relayingAvgS: children ? avg(hosts.filter((_, i) => i > 0 && kids[i] > 0)) : undefined,
    leafAvgS: children ? avg(hosts.filter((_, i) => i > 0 && kids[i] === 0)) : undefined,
    perHostS: hosts.map(r2),
  };
}

const ACCT = process.env.BENCH_SHAPED_ACCT === "1";

/** One apply, timed whole and its distribute phase (from the phase events); bytes the operator sent; the operator's memory. */
async function sealantRun(session, sandbox, image, ips, distribution) {
  const marks = [];
  const cgroups = hostCgroups(sandbox).slice(0, ips.length);
  const cpu0 = cpuNow(cgroups);
  const acct = ACCT && distribution.mode === "relay";
  if (acct) accounting(sandbox, true);
  const memory = memorySampler();
  const t0 = performance.now();
  const r = await applyCluster({
    session,
    spec: spec(sandbox, `shaped${ips.length}`, image.ref, ips, distribution),
    onEvent: (e) => {
      if (e.type === "phase") marks.push({ name: e.name, t: performance.now() });
      if (e.type === "warning") log(`    warning: ${e.host ?? ""} ${e.text}`);
      if (process.env.BENCH_SHAPED_TRACE && e.type === "step" && e.status === "done" && e.id.startsWith("distribute"))
        log(`    ${e.host} done at ${((performance.now() - t0) / 1000).toFixed(2)} s`);
      if (process.env.BENCH_SHAPED_TRACE && e.type === "progress" && e.bytes === e.total)
        log(`    ${e.host} all bytes at ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    },
  });
  const end = performance.now();
  const i = marks.findIndex((m) => m.name === "distribute");
  const distributeMs = (marks[i + 1]?.t ?? end) - marks[i].t;
  const mem = memory();
  const children = new Map();
  for (const step of r.plan.phases.find((p) => p.name === "distribute")?.steps ?? []) if (step.via) children.set(step.via, (children.get(step.via) ?? 0) + 1);
  const cpu = cpuSpent(cpu0, cpuNow(cgroups), ips, distribution.mode === "relay" ? children : undefined);
  if (acct) {
    accounting(sandbox, false);
    cpu.commands = accountedByPart(accounted(sandbox, ips), ips, children);
  }
  const perHostMiB = Math.round(((mem.rssPeakMiB - mem.rssBeforeMiB) / ips.length) * 100) / 100;
  return {
    wallMs: end - t0,
    distributeMs,
    operatorBytes: Object.values(r.sent).reduce((a, b) => a + b, 0),
    memory: { ...mem, perHostMiB },
    cpu,
    load: os.loadavg()[0],
  };
}

function memoryText(m) {
  return m
    ? `; operator rss ${m.rssBeforeMiB} -> ${m.rssPeakMiB} MiB (+${m.perHostMiB} MiB/host), heap peak ${m.heapPeakMiB} MiB, buffers peak ${m.arrayBuffersPeakMiB} MiB`
    : "";
}

async function opensshRun(sandbox, image, ips) {
  const cgroups = hostCgroups(sandbox).slice(0, ips.length);
  const cpu0 = cpuNow(cgroups);
  const t0 = performance.now();
  const dir = `${DATA_ROOT}/openssh`;
  await Promise.all(ips.map((ip) => openssh(sandbox, ip, `mkdir -p ${dir} && tar -x -C ${dir}`, image.tarFile)));
  const ms = performance.now() - t0;
  return { wallMs: ms, distributeMs: ms, operatorBytes: image.tarBytes * ips.length, cpu: cpuSpent(cpu0, cpuNow(cgroups), ips), load: os.loadavg()[0] };
}

/** A run's CPU in a line: the operator's (openssh: 0, its ssh clients are not this process), the hosts' in all and by part. */
function cpuText(c) {
  if (!c) return "";
  const parts = [`hosts ${c.hostsS} s CPU`];
  if (c.seedS !== undefined) parts.push(`seed ${c.seedS} s, relaying ${c.relayingAvgS ?? "-"} s/host, leaf ${c.leafAvgS ?? "-"} s/host`);
  return `; operator ${c.operatorS} s CPU, ${parts.join(", ")}`;
}

/** The CPU floor of a run: its hosts' CPU over this machine's cores (they all share them). */
function floorS(m) {
  return m.cpu ? m.cpu.hostsS / CORES : 0;
}

/** One operator-link rate: one host, then each size with each contender. */
async function round(session, sandbox, image, ips, mbit, runs) {
  await wipe(sandbox, ips);
  const one = await sealantRun(session, sandbox, image, ips.slice(0, 1), { mode: "direct" });
  log(`  1 host: ${(one.distributeMs / 1000).toFixed(2)} s distribute (${(one.wallMs / 1000).toFixed(2)} s apply)${memoryText(one.memory)}${cpuText(one.cpu)}`);
  const results = [];
  for (const n of SIZES) {
    const on = ips.slice(0, n);
    const row = { hosts: n };
    for (const [name, run] of [
      ...(runs.includes("relay") ? FANOUTS.map((f) => [`relay${f}`, () => sealantRun(session, sandbox, image, on, { mode: "relay", fanout: f })]) : []),
      ...(runs.includes("direct") ? [["direct", () => sealantRun(session, sandbox, image, on, { mode: "direct" })]] : []),
      ...(runs.includes("openssh") ? [["openssh", () => opensshRun(sandbox, image, on)]] : []),
    ]) {
      await wipe(sandbox, ips);
      row[name] = await run();
      row[name].cpuFloorS = Math.round(floorS(row[name]) * 100) / 100;
      log(
        `  ${n} hosts ${name}: ${(row[name].distributeMs / 1000).toFixed(2)} s distribute (${(row[name].wallMs / 1000).toFixed(2)} s), operator sent ${(row[name].operatorBytes / MiB).toFixed(0)} MiB, load ${row[name].load.toFixed(1)}${memoryText(row[name].memory)}${cpuText(row[name].cpu)}`,
      );
    }
    results.push(row);
  }
  return { mbit, oneHost: one, results };
}

/** The figures of one rate's round, as bench/README.md quotes them. */
function report({ mbit, oneHost: one, results }) {
  const s = (ms) => `${(ms / 1000).toFixed(1)} s`;
  log(`\noperator link ${mbit} Mbit/s; one host: ${s(one.distributeMs)}`);
  const names = Object.keys(results[0] ?? {}).filter((n) => n !== "hosts");
  const relays = names.filter((n) => n.startsWith("relay"));
  const label = (n) => (n === "openssh" ? "parallel ssh tar -x" : n.startsWith("relay") ? `relay fanout ${n.slice(5)}` : n);
  const versus = relays.length && names.includes("direct");
  log(`hosts  ${names.map((n) => label(n).padEnd(24)).join("")}${versus ? "best relay vs direct" : ""}`);
  for (const r of results) {
    const x = (m) => `${s(m.distributeMs)} ${(m.distributeMs / one.distributeMs).toFixed(2)}x ${(m.operatorBytes / MiB).toFixed(0)} MiB`;
    const best = Math.min(...relays.map((n) => r[n].distributeMs));
    log(
      `${String(r.hosts).padEnd(5)}  ${names.map((n) => x(r[n]).padEnd(24)).join("")}${versus ? `${(r.direct.distributeMs / best).toFixed(2)}x faster` : ""}`,
    );
  }
  log(`CPU floor (the hosts' CPU over ${CORES} cores: the least time this machine can simulate the run in), x = times one host's:`);
  for (const r of results)
    for (const n of relays)
      log(`${String(r.hosts).padEnd(5)}  ${label(n)}: floor ${r[n].cpuFloorS} s = ${((r[n].cpuFloorS * 1000) / one.distributeMs).toFixed(2)}x`);
  log(`CPU seconds (the operator process; the hosts' cgroups in all; relay: the seed, per relaying host, per leaf):`);
  log(`1      ${cpuText(one.cpu).slice(2)}`);
  for (const r of results) for (const n of names) log(`${String(r.hosts).padEnd(5)}  ${label(n)}${cpuText(r[n].cpu)}`);
  for (const r of results)
    for (const n of relays)
      for (const [part, cmds] of Object.entries(r[n].cpu.commands ?? {}))
        log(
          `${String(r.hosts).padEnd(5)}  ${label(n)}, per ${part} host, CPU s (processes): ${Object.entries(cmds)
            .filter(([, x]) => x.secs > 0 || x.calls >= 5)
            .map(([c, x]) => `${c} ${x.secs} (${x.calls})`)
            .join(", ")}`,
        );
  log(`operator memory (peak resident set - before, per host; JS heap peak):`);
  const sealantNames = names.filter((n) => n !== "openssh");
  const m = (x) => `+${x.memory.perHostMiB} MiB/host, heap ${x.memory.heapPeakMiB} MiB`;
  log(`1      ${`${(one.memory.rssPeakMiB - one.memory.rssBeforeMiB).toFixed(1)} MiB, heap ${one.memory.heapPeakMiB} MiB`}`);
  for (const r of results) log(`${String(r.hosts).padEnd(5)}  ${sealantNames.map((n) => `${label(n)} ${m(r[n])}`).join("; ")}`);
}

async function main() {
  fs.rmSync(WORK, { recursive: true, force: true });
  fs.mkdirSync(WORK, { recursive: true });
  const home = path.join(WORK, "home");
  process.env.SEALANT_HOME = home;
  const session = await Session.open({ home, mirrors: {}, env: {} });
  const sbDir = path.join(WORK, "sandbox");
  // Exit hooks run last-registered first: the hosts come down before their directory goes.
  onExit(() => fs.rmSync(WORK, { recursive: true, force: true }));
  onExit(() => {
    if (!fs.existsSync(path.join(sbDir, "sandbox.json"))) return;
    const down = `require(${JSON.stringify(path.join(ROOT, "dist/engine/sandbox"))}).sandboxDown(${JSON.stringify(sbDir)})`;
    execFileSync(process.execPath, ["-e", down], { timeout: 60_000 });
  });
  const most = Math.max(...SIZES);
  let sandbox;
  try {
    const image = await buildImage(session);
    log(`image: ${LAYERS} layers, ${(image.blobBytes / MiB).toFixed(1)} MiB of blobs; rootfs tar ${(image.tarBytes / MiB).toFixed(1)} MiB`);
    sandbox = await sandboxUp(most, { name: process.env.BENCH_SHAPED_NAME ?? "bench-shaped", dir: sbDir, kubernetes: { subnet: SUBNET } });
    const veth = sandbox.kubernetes.rootVeth;
    const ips = sandbox.hosts.map((h) => h.ip);
    const rounds = [];
    for (const mbit of MBITS) {
      // The operator's uplink: what leaves this machine's namespace towards the hosts.
      sh("tc", ["qdisc", "replace", "dev", veth, "root", "tbf", "rate", `${mbit}mbit`, "burst", "256kb", "latency", "100ms"]);
      log(`${most} hosts ${sandbox.hosts[0].ip}-${sandbox.hosts.at(-1).ip}; operator link ${veth} shaped to ${mbit} Mbit/s, the hosts' bridge unshaped`);
      // Direct and parallel ssh take hosts x the link's time: at a slower rate only relay runs.
      rounds.push(await round(session, sandbox, image, ips, mbit, mbit === MBITS[0] ? RUNS : RUNS.filter((r) => r === "relay")));
    }
    await wipe(sandbox, ips);
    const when = new Date().toISOString();
    const out = { when, layers: LAYERS, blobMiB: image.blobBytes / MiB, fanouts: FANOUTS, cores: CORES, rounds };
    fs.writeFileSync(path.join(__dirname, "shaped-results.json"), `${JSON.stringify(out, null, 2)}\n`);
    log(`\nRun of ${when}: ${LAYERS} layers, ${(image.blobBytes / MiB).toFixed(0)} MiB, ${CORES} cores; distribute phase, x = times one host's.`);
    for (const r of rounds) report(r);
  } finally {
    session.close();
    if (sandbox) await sandboxDown(sandbox).catch((err) => log(`bringing the hosts down: ${err.message}`));
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench: ${err.stack ?? err}\n`);
    process.exit(1);
  },
);
