"use strict";
// Benchmark 1: the ~500 MiB image onto 1, 3 and 10 fresh hosts, three ways:
//   sealant  - applyCluster of a new cluster (hooks runtime, no hooks: every step but
//              distribution is a no-op command), timed whole and per phase from its events;
//   openssh  - `ssh host 'tar -x' < rootfs.tar`, one process per host in parallel: the same
//              rootfs as one uncompressed tar, the floor for "a tree over SSH";
//   sftp     - what sealer does: one SFTP session per host, hosts in parallel, files one
//              after another (mkdir per directory, ssh2 fastPut per file). Kinder than sealer,
//              which also md5sums every file locally and remotely and opens a new SSH
//              connection per file to check whether it exists.
//   sealant-auto - (3 hosts or more; BENCH_CLUSTER_AUTO=0 leaves it out) sealant with the spec's
//              default distribution (auto: relay from 3 hosts). `sealant` itself is pinned to
//              distribution direct: this section measures the operator's own streams against
//              OpenSSH's, while on one machine a relay adds every hop's ssh, sshd and tail to the
//              same 2 cores (the rate-limited section measures relay where it pays off).
//   sealant-main - (BENCH_CLUSTER_MAIN_THREAD=1) sealant again with SEALANT_BULK_WORKERS=0: the
//              layer streams on Node's main thread, as before issue 14, for the comparison.
// Every run starts from hosts with nothing of ours on them; contenders rotate order per round.
const fs = require("node:fs");
const path = require("node:path");
const { measure } = require("./lib/sys");
const { DATA_ROOT, clusterSpec, openssh, wipeHosts, hostsCpuMs, phaseTimer, sftpConnect } = require("./cluster-bed");

const { applyCluster, resolveClusterImage } = require("../dist/engine/cluster");
const { extractedSize } = require("../dist/engine/cluster/host/distribute");
const { readImageFiles } = require("../dist/engine/cluster/host/render");

async function benchDistribute(bed, image, counters, { repeat, sizes, log, median, round }) {
  // Two local passes over each layer are paid by the first apply of a new image only (then
  // remembered in the store): the free-disk check's size pass and rendering's template scan.
  // Timed here, so that the rounds below all measure the same thing.
  const t0 = performance.now();
  for (const l of image.layers) await extractedSize(bed.session.store, { ...l, registryOnly: false });
  const sizePassMs = performance.now() - t0;
  const t1 = performance.now();
  for (const pf of (await resolveClusterImage(bed.session, image.ref)).platforms.values()) await readImageFiles(bed.session.store, pf, new Set());
  const templateScanMs = performance.now() - t1;
  log(`  first apply of a new image only: size pass ${(sizePassMs / 1000).toFixed(2)} s, template scan ${(templateScanMs / 1000).toFixed(2)} s`);

  const results = [];
  for (const n of sizes) {
    const ips = bed.ips.slice(0, n);
    const contenders = [
      ["sealant", () => sealantRun(bed, image, ips, counters, { mode: "direct" })],
      ...(AUTO && n >= 3 ? [["sealant-auto", () => sealantRun(bed, image, ips, counters)]] : []),
      ["openssh", () => opensshRun(bed, image, ips)],
      ["sftp", () => sftpRun(bed, image, ips)],
      ...(MAIN_THREAD ? [["sealant-main", () => mainThread(() => sealantRun(bed, image, ips, counters))]] : []),
    ];
    const runs = { sealant: [], openssh: [], sftp: [], "sealant-main": [], "sealant-auto": [] };
    for (let r = 0; r < repeat; r++) {
      for (let k = 0; k < contenders.length; k++) {
        const [name, fn] = contenders[(k + r) % contenders.length];
        await wipeHosts(bed, ips);
        const cpu0 = hostsCpuMs(bed);
        const m = await measure(fn);
        const run = { wallMs: m.wallMs, clientCpuMs: m.cpu.selfMs + m.cpu.childrenMs, hostsCpuMs: hostsCpuMs(bed) - cpu0, ...m.value };
        await checkRootfs(bed, ips.at(-1), m.value.dir, image);
        runs[name].push(run);
        log(
          `  ${n} host(s) round ${r + 1}: ${name} ${(m.wallMs / 1000).toFixed(2)} s${run.distributeMs ? ` (distribute phase ${(run.distributeMs / 1000).toFixed(2)} s)` : ""}`,
        );
      }
    }
    await wipeHosts(bed, ips);
    const med = (xs) => round(median(xs), 1);
    const summary = (rs) => ({
      medianMs: med(rs.map((x) => x.wallMs)),
      runsMs: rs.map((x) => round(x.wallMs, 1)),
      // CPU on the deploying side (this process and, for openssh, the ssh clients) and on the hosts.
      clientCpuMs: med(rs.map((x) => x.clientCpuMs)),
      hostsCpuMs: med(rs.map((x) => x.hostsCpuMs)),
    });
    const s = runs.sealant;
    const sealant = {
      ...summary(s),
      distributeMs: med(s.map((x) => x.distributeMs)),
      phasesMs: Object.fromEntries(Object.keys(s[0].phasesMs).map((p) => [p, med(s.map((x) => x.phasesMs[p] ?? 0))])),
      // Per host, mean over hosts: the tar stream into `tar -x`, and the hard-link assembly.
      extractMsPerHost: med(s.map((x) => x.kindsMs.extract / n)),
      assembleMsPerHost: med(s.map((x) => x.kindsMs.assemble / n)),
      sentBytesPerHost: s[0].sentPerHost,
      threadsCpuMs: Object.fromEntries(["main", "workers", "pool"].map((k) => [k, med(s.map((x) => x.threadsMs[k]))])),
    };
    const openssh = summary(runs.openssh);
    const sftp = summary(runs.sftp);
    const a = runs["sealant-auto"];
    const autoRuns = a.length ? { ...summary(a), distributeMs: med(a.map((x) => x.distributeMs)) } : undefined;
    const m = runs["sealant-main"];
    const mainThreadRuns = m.length ? { ...summary(m), distributeMs: med(m.map((x) => x.distributeMs)) } : undefined;
    results.push({
      hosts: n,
      sealant,
      openssh,
      sftp,
      totalVsOpenssh: round(sealant.medianMs / openssh.medianMs),
      distributeVsOpenssh: round(sealant.distributeMs / openssh.medianMs),
      totalVsSftp: round(sealant.medianMs / sftp.medianMs),
      ...(autoRuns ? { auto: { ...autoRuns, distributeVsOpenssh: round(autoRuns.distributeMs / openssh.medianMs) } } : {}),
      ...(mainThreadRuns ? { mainThread: { ...mainThreadRuns, distributeVsOpenssh: round(mainThreadRuns.distributeMs / openssh.medianMs) } } : {}),
    });
  }
  return { sizePassMs: round(sizePassMs, 0), templateScanMs: round(templateScanMs, 0), results };
}

const MAIN_THREAD = process.env.BENCH_CLUSTER_MAIN_THREAD === "1";
const AUTO = process.env.BENCH_CLUSTER_AUTO !== "0";

/** Runs `fn` with layer sends on the main thread (connections read SEALANT_BULK_WORKERS when made). */
async function mainThread(fn) {
  const before = process.env.SEALANT_BULK_WORKERS;
  process.env.SEALANT_BULK_WORKERS = "0";
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.SEALANT_BULK_WORKERS;
    else process.env.SEALANT_BULK_WORKERS = before;
  }
}

/** A full apply of a new cluster (first host master, the rest nodes); phase times from its events. */
async function sealantRun(bed, image, ips, counters, distribution = undefined) {
  const spec = clusterSpec(bed, `dist${ips.length}`, image.ref, ips.slice(0, 1), ips.slice(1), distribution);
  const before = counters.snapshot();
  const timer = phaseTimer();
  const threads0 = threadsCpuMs();
  const res = await applyCluster({ session: bed.session, spec, knownHostsFile: bed.knownHostsFile, onEvent: timer.onEvent });
  const phasesMs = timer.phasesMs();
  const threads1 = threadsCpuMs();
  // This process's CPU by thread: Node's main thread, the bulk-send workers (and V8's helpers), libuv's pool (file reads, gunzip).
  const threadsMs = { main: 0, workers: 0, pool: 0 };
  for (const [tid, t] of threads1) threadsMs[t.kind] += t.ms - (threads0.get(tid)?.ms ?? 0);
  const kindsMs = { extract: 0, assemble: 0 };
  for (const h of Object.values(counters.since(before))) for (const k of ["extract", "assemble"]) kindsMs[k] += h.kinds[k]?.ms ?? 0;
  const sent = Object.values(res.sent);
  return {
    distributeMs: phasesMs.distribute,
    phasesMs,
    threadsMs,
    kindsMs,
    sentPerHost: sent.length ? Math.round(sent.reduce((a, b) => a + b, 0) / sent.length) : 0,
    dir: path.posix.join(DATA_ROOT, "images", image.digest.replace(/^sha256:/, ""), "rootfs"),
  };
}

/** CPU ms of each of this process's threads so far, by tid, with its kind (main, pool, workers). */
function threadsCpuMs() {
  const out = new Map();
  for (const tid of fs.readdirSync("/proc/self/task")) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const kind = Number(tid) === process.pid ? "main" : comm.startsWith("libuv-worker") ? "pool" : "workers";
      out.set(tid, { kind, ms: (Number(f[11]) + Number(f[12])) * 10 });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

async function opensshRun(bed, image, ips) {
  const dir = `${DATA_ROOT}/tar`;
  await Promise.all(ips.map((ip) => openssh(bed, ip, `mkdir -p ${dir} && tar -x -C ${dir}`, image.tarFile)));
  return { dir };
}

async function sftpRun(bed, image, ips) {
  const dir = `${DATA_ROOT}/sftp`;
  await Promise.all(
    ips.map(async (ip) => {
      const { client, sftp } = await sftpConnect(bed, ip);
      try {
        const call = (fn, ...args) => new Promise((resolve, reject) => sftp[fn](...args, (err) => (err ? reject(err) : resolve())));
        await call("mkdir", DATA_ROOT).catch(() => undefined);
        await call("mkdir", dir);
        // sealer's copyLocalDirToRemote: walk in order, mkdir each directory, copy each file.
        const walk = async (local, remote) => {
          await call("mkdir", remote);
          for (const e of fs.readdirSync(local, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
            const l = path.join(local, e.name);
            const r = `${remote}/${e.name}`;
            if (e.isDirectory()) await walk(l, r);
            else await call("fastPut", l, r, {});
          }
        };
        await walk(image.data, `${dir}/data`);
      } finally {
        client.end();
      }
    }),
  );
  return { dir };
}

/** The host ended up with the whole rootfs: every file, every byte (untimed). */
async function checkRootfs(bed, ip, dir, image) {
  const out = await openssh(bed, ip, `cd ${dir}/data && find . -type f -printf '%s\\n' | awk '{n++; s+=$1} END {print n, s}'`);
  const [files, bytes] = out.trim().split(" ").map(Number);
  if (files !== image.files || bytes !== image.dataBytes)
    throw new Error(`${ip}:${dir} holds ${files} files / ${bytes} bytes, expected ${image.files} / ${image.dataBytes}`);
}

module.exports = { benchDistribute };
