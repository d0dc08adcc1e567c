"use strict";
// Benchmarks 2 and 3: what an apply costs the hosts when little changes.
//   re-apply - the same image and spec onto a running 10-host cluster (3 masters + 7 nodes):
//              bytes of image data sent (ApplyResult.sent; goal 0) and wall time (goal < 2 s);
//   join     - one node joins that cluster shrunk to 9 hosts (3 masters + 6 nodes; ten hosts
//              is all the benchmark's address range holds): connections, commands and bytes
//              per host.
// Counted two ways: on the client (ssh2 handshakes, SshConnection.exec calls, socket bytes;
// see instrument() in cluster-bed.js) and by each host's sshd ("Accepted publickey" lines
// in its log), which must agree on connections.
const { measure } = require("./lib/sys");
const { clusterSpec, wipeHosts, acceptedLogins, phaseTimer } = require("./cluster-bed");

const { applyCluster } = require("../dist/engine/cluster");

/** 3 masters + 7 nodes on all ten hosts (`withNewcomer`), or without the last host. */
function steadySpec(bed, image, withNewcomer) {
  const ips = bed.ips;
  return clusterSpec(bed, "steady", image.ref, ips.slice(0, 3), ips.slice(3, withNewcomer ? 10 : 9));
}

async function benchReapply(bed, image, counters, { repeat, log, median, round }) {
  const ips = bed.ips;
  const spec = steadySpec(bed, image, true);
  const apply = () => applyCluster({ session: bed.session, spec, knownHostsFile: bed.knownHostsFile });
  await wipeHosts(bed);
  const created = await measure(apply);
  log(`  re-apply: created the 10-host cluster in ${(created.wallMs / 1000).toFixed(2)} s (untimed setup)`);
  const runs = [];
  for (let r = 0; r < repeat; r++) {
    const { m, perHost } = await counted(bed, counters, apply);
    runs.push({ wallMs: m.wallMs, sent: sum(Object.values(m.value.sent)), phases: m.value.plan.phases.length, summary: m.value.plan.summary, perHost });
    log(`  re-apply round ${r + 1}: ${(m.wallMs / 1000).toFixed(3)} s, ${runs.at(-1).sent} bytes of image data sent, ${runs.at(-1).phases} phases`);
  }
  return {
    medianMs: round(median(runs.map((x) => x.wallMs)), 1),
    runsMs: runs.map((x) => round(x.wallMs, 1)),
    sentBytes: Math.max(...runs.map((x) => x.sent)),
    phases: Math.max(...runs.map((x) => x.phases)),
    summary: runs[0].summary,
    perHost: byRole(runs.at(-1).perHost, { "first master": ips.slice(0, 1), "other masters": ips.slice(1, 3), nodes: ips.slice(3) }),
  };
}

/** Runs on the cluster benchReapply left: the last node leaves (untimed), then joins again, `repeat` times. */
async function benchJoin(bed, image, counters, { repeat, log, median, round }) {
  const ips = bed.ips;
  const apply = (spec, onEvent) => () => applyCluster({ session: bed.session, spec, knownHostsFile: bed.knownHostsFile, ...(onEvent ? { onEvent } : {}) });
  // Scaling down runs leave and reset on the node and deletes its data root: each join is a fresh one.
  const shrink = apply(steadySpec(bed, image, false));
  await shrink();
  const runs = [];
  for (let r = 0; r < repeat; r++) {
    const timer = phaseTimer();
    const { m, perHost } = await counted(bed, counters, apply(steadySpec(bed, image, true), timer.onEvent));
    runs.push({ wallMs: m.wallMs, summary: m.value.plan.summary, perHost, phasesMs: timer.phasesMs() });
    log(`  join round ${r + 1}: ${(m.wallMs / 1000).toFixed(2)} s (${m.value.plan.summary.join("; ")})`);
    await shrink();
  }
  await wipeHosts(bed);
  const med = (xs) => round(median(xs), 1);
  return {
    medianMs: med(runs.map((x) => x.wallMs)),
    runsMs: runs.map((x) => round(x.wallMs, 1)),
    phasesMs: Object.fromEntries(Object.keys(runs[0].phasesMs).map((p) => [p, med(runs.map((x) => x.phasesMs[p] ?? 0))])),
    summary: runs[0].summary,
    perHost: byRole(runs.at(-1).perHost, {
      "new node": ips.slice(9),
      "first master": ips.slice(0, 1),
      "other masters": ips.slice(1, 3),
      nodes: ips.slice(3, 9),
    }),
  };
}

/** Runs `fn` measured, with the client-side counters and the hosts' sshd logins it caused. */
async function counted(bed, counters, fn) {
  const before = counters.snapshot();
  const logins0 = acceptedLogins(bed);
  const m = await measure(fn);
  const client = counters.since(before);
  const logins1 = acceptedLogins(bed);
  const perHost = {};
  for (const ip of bed.ips) {
    const c = client[ip] ?? { connects: 0, commands: 0, bytesOut: 0, bytesIn: 0, kinds: {} };
    perHost[ip] = { ...c, sshdLogins: logins1[ip] - logins0[ip] };
    if (perHost[ip].sshdLogins !== c.connects)
      throw new Error(`${ip}: sshd logged ${perHost[ip].sshdLogins} logins, the client counted ${c.connects} connections`);
  }
  return { m, perHost };
}

/** Per group of hosts: the figures of one host when all agree, else the range. */
function byRole(perHost, groups) {
  const out = {};
  for (const [role, ips] of Object.entries(groups)) {
    const hs = ips.map((ip) => perHost[ip]);
    const span = (k) => {
      const xs = hs.map((h) => h[k]);
      return Math.min(...xs) === Math.max(...xs) ? xs[0] : `${Math.min(...xs)}-${Math.max(...xs)}`;
    };
    const kinds = {};
    for (const h of hs) for (const [k, v] of Object.entries(h.kinds)) kinds[k] = Math.max(kinds[k] ?? 0, v.n);
    out[role] = {
      hosts: ips.length,
      connects: span("connects"),
      commands: span("commands"),
      bytesOut: span("bytesOut"),
      bytesIn: span("bytesIn"),
      commandKinds: kinds,
    };
  }
  return out;
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

module.exports = { benchReapply, benchJoin };
