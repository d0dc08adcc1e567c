"use strict";
// Running images onto hosts (`BENCH_ONLY=cluster npm run bench`): sets up the bed (10 sandbox
// hosts, a ~500 MiB image), runs benchmarks 1-3 on it and the pure planning benchmark 4,
// and returns the results, the goals and a report. Ratios are reported, never asserted: the
// hosts share this machine's 2 cores with sealant, the baselines and whatever else runs.
const path = require("node:path");
const { instrument, openBed, buildBigImage, MiB } = require("./cluster-bed");
const { benchDistribute } = require("./cluster-distribute");
const { benchReapply, benchJoin } = require("./cluster-scale");
const { benchPlan } = require("./cluster-plan");

const MIB = Math.max(16, Number(process.env.BENCH_CLUSTER_MIB ?? 500));
const SIZES = (process.env.BENCH_CLUSTER_HOSTS ?? "1,3,10").split(",").map(Number);

async function benchCluster(work, opts) {
  const { log } = opts;
  log(`cluster: 10 sandbox hosts and a ${MIB} MiB image (BENCH_CLUSTER_MIB)`);
  const counters = instrument();
  const bed = await openBed(path.join(work, "cluster"), log);
  const res = { imageMiB: MIB };
  try {
    const image = await buildBigImage(bed, MIB, log);
    res.image = { files: image.files, tarMiB: opts.round(image.tarBytes / MiB, 1), gzipMiB: opts.round(image.gzipBytes / MiB, 1), layers: image.layers.length };
    log("cluster 1/4: distributing to fresh hosts: sealant apply vs ssh tar -x vs per-file sftp");
    res.distribute = await benchDistribute(bed, image, counters, { ...opts, sizes: SIZES });
    log("cluster 2/4: re-applying the same image to 10 hosts");
    res.reapply = await benchReapply(bed, image, counters, opts);
    log("cluster 3/4: joining one node to a 9-host cluster");
    res.join = await benchJoin(bed, image, counters, opts);
  } finally {
    await bed.close();
  }
  log("cluster 4/4: planning changes of a 1,000-host cluster");
  res.plan = benchPlan(opts);
  res.goals = goals(res);
  return res;
}

function goals(res) {
  const g = [];
  for (const d of res.distribute.results) {
    g.push({
      goal: `distribute to ${d.hosts} host(s) within 1.3x of ssh tar -x`,
      measured: `${d.distributeVsOpenssh}x (whole apply ${d.totalVsOpenssh}x)`,
      met: d.distributeVsOpenssh <= 1.3,
    });
  }
  const r = res.reapply;
  g.push({ goal: "re-apply to 10 hosts sends 0 bytes", measured: `${r.sentBytes} bytes`, met: r.sentBytes === 0 });
  g.push({ goal: "re-apply to 10 hosts < 2 s", measured: secs(r.medianMs), met: r.medianMs < 2000 });
  const touched = Object.entries(res.join.perHost)
    .filter(([, h]) => h.commands !== 0)
    .map(([role]) => role);
  g.push({
    goal: "join works only on the new host and the first master",
    measured: `commands on: ${touched.join(", ")}`,
    met: touched.every((t) => t === "new node" || t === "first master"),
  });
  for (const [k, name] of [
    ["addTen", "add 10 hosts"],
    ["rollingUpgrade", "rolling upgrade"],
  ]) {
    g.push({ goal: `plan for 1,000 hosts (${name}) < 100 ms`, measured: `${res.plan[k].medianMs} ms`, met: res.plan[k].medianMs < 100 });
  }
  return g;
}

const secs = (ms) => `${(ms / 1000).toFixed(ms < 10_000 ? 3 : 2)} s`;
const mb = (b) => (typeof b === "number" ? (b >= 1e6 ? `${(b / MiB).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`) : b);

function report(res, table) {
  const runsS = (s) => s.runsMs.map((x) => (x / 1000).toFixed(2)).join(" ");
  const cpu = (s) => `${(s.clientCpuMs / 1000).toFixed(1)}/${(s.hostsCpuMs / 1000).toFixed(1)}`;
  const rows = [["measurement", "median", "runs (s)", "CPU s client/hosts", "note"]];
  const img = `${res.image.layers} layer(s), ${res.image.gzipMiB} MiB gzip, ${res.image.files} files`;
  rows.push(["first apply of an image: disk-check size pass", secs(res.distribute.sizePassMs), "", "", `local gunzip of ${img}; then remembered in the store`]);
  rows.push([
    "first apply of an image: template scan",
    secs(res.distribute.templateScanMs),
    "",
    "",
    "local gunzip + tar parse for render; then remembered in the store",
  ]);
  for (const d of res.distribute.results) {
    const s = d.sealant;
    const n = `${d.hosts} host${d.hosts > 1 ? "s" : ""}`;
    const phases = Object.entries(s.phasesMs)
      .filter(([p]) => p !== "distribute")
      .map(([p, ms]) => `${p} ${(ms / 1000).toFixed(2)}`)
      .join(", ");
    rows.push([`${n}: sealant apply (new cluster)`, secs(s.medianMs), runsS(s), cpu(s), `${d.totalVsOpenssh}x ssh tar; other phases (s): ${phases}`]);
    rows.push([
      `${n}: sealant distribute phase`,
      secs(s.distributeMs),
      "",
      "",
      `${d.distributeVsOpenssh}x ssh tar; per host: extract ${(s.extractMsPerHost / 1000).toFixed(2)} s, assemble ${(s.assembleMsPerHost / 1000).toFixed(2)} s, ${mb(s.sentBytesPerHost)} sent; client CPU s main/workers/pool ${["main", "workers", "pool"].map((k) => (s.threadsCpuMs[k] / 1000).toFixed(1)).join("/")}`,
    ]);
    rows.push([
      `${n}: ssh host tar -x < rootfs.tar`,
      secs(d.openssh.medianMs),
      runsS(d.openssh),
      cpu(d.openssh),
      "OpenSSH 9.2, aes128-gcm, one process per host",
    ]);
    rows.push([`${n}: sftp per file (sealer's way)`, secs(d.sftp.medianMs), runsS(d.sftp), cpu(d.sftp), `sealant apply ${d.totalVsSftp}x its time`]);
    const au = d.auto;
    if (au)
      rows.push([
        `${n}: sealant apply, distribution auto (relay)`,
        secs(au.medianMs),
        runsS(au),
        cpu(au),
        `distribute phase ${secs(au.distributeMs)}, ${au.distributeVsOpenssh}x ssh tar (the spec's default; the rows above are distribution direct)`,
      ]);
    const mt = d.mainThread;
    if (mt)
      rows.push([
        `${n}: sealant apply, sends on the main thread`,
        secs(mt.medianMs),
        runsS(mt),
        cpu(mt),
        `distribute phase ${secs(mt.distributeMs)}, ${mt.distributeVsOpenssh}x ssh tar`,
      ]);
  }
  const r = res.reapply;
  rows.push(["re-apply, 10 hosts", secs(r.medianMs), runsS(r), "", `${r.sentBytes} bytes of image sent, ${r.phases} phases (${r.summary.join("; ")})`]);
  const j = res.join;
  const jp = Object.entries(j.phasesMs)
    .map(([p, ms]) => `${p} ${(ms / 1000).toFixed(2)}`)
    .join(", ");
  rows.push(["join 1 node to 9 hosts", secs(j.medianMs), runsS(j), "", `${j.summary.join("; ")}; phases (s): ${jp}`]);
  for (const [k, name] of [
    ["addTen", "add 10 hosts"],
    ["rollingUpgrade", "rolling upgrade, 1 at a time"],
    ["rollingUpgradeBy50", "rolling upgrade, 50 at a time"],
    ["noChange", "no change"],
  ]) {
    const p = res.plan[k];
    rows.push([
      `plan 1,000 hosts: ${name}`,
      `${p.medianMs} ms`,
      "",
      "",
      `max ${p.maxMs} ms of ${res.plan.runs}; ${p.phases} phases, ${p.steps} steps; formatting it ${p.formatMs} ms`,
    ]);
  }
  const hostRows = [["who (hosts)", "connections", "commands", "bytes out / in", "commands by kind"]];
  for (const [what, per] of [
    ["re-apply", r.perHost],
    ["join", j.perHost],
  ]) {
    for (const [role, h] of Object.entries(per)) {
      hostRows.push([
        `${what}: ${role} (${h.hosts})`,
        h.connects,
        h.commands,
        `${mb(h.bytesOut)} / ${mb(h.bytesIn)}`,
        Object.entries(h.commandKinds)
          .map(([k, n]) => `${k} ${n}`)
          .join(", "),
      ]);
    }
  }
  const goalRows = [["goal", "measured", "met"], ...res.goals.map((g) => [g.goal, g.measured, g.met ? "yes" : "NO"])];
  return `${table(rows)}\n\n${table(hostRows)}\n\n${table(goalRows)}\n`;
}

module.exports = { benchCluster, report };
