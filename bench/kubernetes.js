"use strict";
// A real Kubernetes cluster, 1 master + 2 workers, from hosts up to every node Ready
// (`BENCH_ONLY=kubernetes node bench/run.js`; needs root, and the cached builds of
// scripts/kube-base-image.sh): sealant's apply of the base image against the bare kubeadm
// sequence a careful admin's script runs (bench/kubeadm-baseline.sh) on the same kind of fresh
// hosts, in the same run, with the same files, container images, scripts and kubeadm settings.
// Every round gives each side a new Kubernetes-mode sandbox (3 hosts, own network namespaces
// and cgroups); the sides alternate order between rounds. Reported: wall time per side, the
// ratio, per-phase times (sealant: its apply events, its SSH commands and their output lines;
// the baseline: its phase markers and output lines), when the API saw each node Ready, and
// each host's memory after a settle. Ratios are reported, never asserted: the hosts share the
// machine's cores with sealant, the baseline and whatever else runs.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawn, spawnSync, execFileSync } = require("node:child_process");
const { pipeline } = require("node:stream/promises");
const zlib = require("node:zlib");

const { onExit, run, rmrf } = require("./lib/sys");

const ROOT = path.resolve(__dirname, "..");
const { Session } = require("../dist/engine/session");
const { sandboxUp, sandboxDown, hostExec } = require("../dist/engine/sandbox");
const { applyCluster, resolveClusterImage } = require("../dist/engine/cluster");
const { parseClusterSpec } = require("../dist/engine/cluster/spec");
const { extractedSize } = require("../dist/engine/cluster/host/distribute");
const { readImageFiles } = require("../dist/engine/cluster/host/render");
const { SshConnection } = require("../dist/engine/ssh");

const VERSION = process.env.BENCH_KUBE_VERSION ?? "v1.31.4";
const IMAGE = `sealant/kubernetes:${VERSION}`;
/** Seconds between all nodes Ready and the memory reading. */
const SETTLE_S = Math.max(0, Number(process.env.BENCH_KUBE_SETTLE_S ?? 30));
const MiB = 1024 * 1024;
const ADMIN = ["--kubeconfig", "/etc/kubernetes/admin.conf"];
const BASELINE_SH = path.join(__dirname, "kubeadm-baseline.sh");
/** The script that builds the image: another checkout's, to measure a change to the image. */
const IMAGE_SCRIPT = path.resolve(process.env.BENCH_KUBE_IMAGE_SCRIPT ?? path.join(ROOT, "scripts", "kube-base-image.sh"));

async function benchKubernetes(work, { repeat, log, median, round }) {
  const dir = path.join(work, "kubernetes");
  const home = path.join(dir, "home");
  fs.mkdirSync(home, { recursive: true });
  const loadAtStart = os.loadavg();

  // ---- the image (untimed): built by the project's script into this run's store.
  log(`kubernetes: building ${IMAGE} (${path.relative(ROOT, IMAGE_SCRIPT)}, from cached builds)`);
  const t0 = Date.now();
  await run("bash", [IMAGE_SCRIPT, VERSION], { env: { ...process.env, SEALANT_HOME: home } });
  const buildS = (Date.now() - t0) / 1000;
  process.env.SEALANT_HOME = home; // the engine's scratch space follows it
  const session = await Session.open({ home, mirrors: {}, env: {} });
  const counters = instrument();
  const sandboxes = new Set();
  onExit(() => {
    // Exit hooks are synchronous: each sandbox still up goes down in a child process.
    for (const sb of sandboxes) {
      if (!fs.existsSync(path.join(sb, "sandbox.json"))) continue;
      spawnSync(process.execPath, ["-e", `require(${JSON.stringify(path.join(ROOT, "dist/engine/sandbox"))}).sandboxDown(${JSON.stringify(sb)})`], {
        stdio: "ignore",
        timeout: 60_000,
      });
    }
  });
  try {
    const image = await resolveClusterImage(session, IMAGE);
    const pf = [...image.platforms.values()][0];
    const ref = `${IMAGE}@${image.digest}`;
    const layers = pf.layers.map((l) => ({ digest: l.digest, size: l.size, registryOnly: Boolean(l.registryOnly) }));
    log(
      `  built in ${buildS.toFixed(1)} s: ${ref.replace(/sha256:(.{12}).*/, "$1")}, ${layers.length} layers, ${(layers.reduce((s, l) => s + l.size, 0) / MiB).toFixed(1)} MiB gzip`,
    );

    // Paid once per image by its first apply, then remembered in the store: the free-disk
    // check's size pass and rendering's template scan. Timed here so every round measures the same.
    const f0 = performance.now();
    for (const l of pf.layers) await extractedSize(session.store, { ...l, registryOnly: false });
    const sizePassMs = performance.now() - f0;
    const f1 = performance.now();
    await readImageFiles(session.store, pf, new Set());
    const templateScanMs = performance.now() - f1;
    log(`  first apply of this image only: size pass ${(sizePassMs / 1000).toFixed(2)} s, template scan ${(templateScanMs / 1000).toFixed(2)} s`);

    // The baseline's files: the image's rootfs, its layers extracted in order (untimed).
    const rootfs = path.join(dir, "rootfs");
    await extractRootfs(session, pf, rootfs);
    const du = (p) => Number(execFileSync("du", ["-sb", p], { encoding: "utf8" }).split("\t")[0]);
    const rootfsMiB = { all: round(du(rootfs) / MiB, 1), registry: round(du(path.join(rootfs, "registry")) / MiB, 1) };
    log(`  rootfs for the baseline: ${rootfsMiB.all} MiB (registry/ ${rootfsMiB.registry} MiB)`);

    const sides = {
      sealant: (r) => sealantRun(session, ref, dir, r, sandboxes, counters),
      sealantNoLb: (r) => sealantRun(session, ref, dir, r, sandboxes, counters, { noLb: true }),
      kubeadm: (r) => baselineRun(rootfs, dir, r, sandboxes),
    };
    const names = Object.keys(sides);
    const runs = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < repeat; r++) {
      // Rotated each round, so no side always runs first (or last).
      const order = names.map((_, k) => names[(k + r) % names.length]);
      for (const side of order) {
        const res = await sides[side](r);
        runs[side].push(res);
        log(
          `  round ${r + 1}: ${side} ${(res.wallMs / 1000).toFixed(2)} s to all Ready (load ${res.load.atStart}/${res.load.atEnd}); restarts in kube-system/kube-flannel: ${res.restarts.total}`,
        );
      }
    }

    const stats = (side) => {
      const ms = runs[side].map((x) => x.wallMs);
      return { runsMs: ms.map((x) => round(x, 0)), medianMs: round(median(ms), 0), minMs: round(Math.min(...ms), 0) };
    };
    const sealant = stats("sealant");
    const kubeadm = stats("kubeadm");
    // Rounds where no pod restarted (see "restarts": a flanneld that started before kube-proxy's
    // Service rules waits 30 s for its first API call, then restarts), and the time up to the
    // last join done (the tool's own sequence, before the wait for Ready).
    const subset = (side, pick, key = "wallMs") => {
      const ms = runs[side].filter(pick).map((x) => x[key]);
      return ms.length ? { n: ms.length, runsMs: ms.map((x) => round(x, 0)), medianMs: round(median(ms), 0), minMs: round(Math.min(...ms), 0) } : { n: 0 };
    };
    const clean = (x) => x.restarts.total === 0;
    const ratioOf = (a, b) => (a.n && b.n ? { median: round(a.medianMs / b.medianMs), min: round(a.minMs / b.minMs) } : undefined);
    const withoutRestarts = Object.fromEntries(names.map((n) => [n, subset(n, clean)]));
    withoutRestarts.ratio = ratioOf(withoutRestarts.sealant, withoutRestarts.kubeadm);
    withoutRestarts.ratioNoLb = ratioOf(withoutRestarts.sealantNoLb, withoutRestarts.kubeadm);
    const joined = Object.fromEntries(names.map((n) => [n, subset(n, () => true, "joinedMs")]));
    joined.ratio = ratioOf(joined.sealant, joined.kubeadm);
    joined.ratioNoLb = ratioOf(joined.sealantNoLb, joined.kubeadm);
    const sealantNoLb = stats("sealantNoLb");
    const phaseMedians = (side) => {
      const names = [...new Set(runs[side].flatMap((x) => Object.keys(x.breakdownMs)))];
      return Object.fromEntries(names.map((n) => [n, round(median(runs[side].map((x) => x.breakdownMs[n] ?? 0)), 0)]));
    };
    const res = {
      version: VERSION,
      image: {
        ref,
        builtBy: path.relative(ROOT, IMAGE_SCRIPT),
        layers: layers.length,
        gzipMiB: round(layers.reduce((s, l) => s + l.size, 0) / MiB, 1),
        registryOnlyGzipMiB: round(layers.filter((l) => l.registryOnly).reduce((s, l) => s + l.size, 0) / MiB, 1),
        rootfsMiB,
        buildS: round(buildS, 1),
      },
      firstApplyOfImageMs: { sizePass: round(sizePassMs, 0), templateScan: round(templateScanMs, 0) },
      settleS: SETTLE_S,
      loadAverage: { atStart: loadAtStart.map((x) => round(x, 2)), atEnd: os.loadavg().map((x) => round(x, 2)) },
      sealant: { ...sealant, breakdownMs: phaseMedians("sealant") },
      sealantNoLb: { ...sealantNoLb, breakdownMs: phaseMedians("sealantNoLb") },
      kubeadm: { ...kubeadm, breakdownMs: phaseMedians("kubeadm") },
      ratio: {
        median: round(sealant.medianMs / kubeadm.medianMs),
        min: round(sealant.minMs / kubeadm.minMs),
        perRound: runs.sealant.map((s, i) => round(s.wallMs / runs.kubeadm[i].wallMs)),
      },
      ratioNoLb: { median: round(sealantNoLb.medianMs / kubeadm.medianMs), min: round(sealantNoLb.minMs / kubeadm.minMs) },
      withoutRestarts,
      joined,
      memory: Object.fromEntries(names.map((n) => [n, memoryMedians(runs[n], median, round)])),
      runs,
    };
    res.goals = [
      {
        goal: "sealant apply within 1.3x of the kubeadm script (hosts up to all nodes Ready, 1+2 nodes)",
        measured: `${res.ratio.median}x (medians), ${res.ratio.min}x (minima)${res.withoutRestarts.ratio ? `; rounds without restarts ${res.withoutRestarts.ratio.median}x` : ""}`,
        met: res.ratio.median <= 1.3,
      },
      {
        goal: "the same, up to the last join done (the tools' own sequences)",
        measured: `${res.joined.ratio.median}x (medians), ${res.joined.ratio.min}x (minima); without the worker API LB ${res.joined.ratioNoLb.median}x / ${res.joined.ratioNoLb.min}x`,
        met: res.joined.ratio.median <= 1.3,
      },
    ];
    return res;
  } finally {
    session.close();
    delete process.env.SEALANT_HOME;
  }
}

// ---------------------------------------------------------------- the two sides

/** A fresh Kubernetes-mode sandbox of 3 hosts; resolves once every host answers SSH. */
async function freshHosts(dir, name, sandboxes) {
  execFileSync("sync"); // the previous side's dirty pages are not this side's to flush
  const sbDir = path.join(dir, name);
  sandboxes.add(sbDir);
  const sb = await sandboxUp(3, { kubernetes: true, name, dir: sbDir });
  return sb;
}

/**
 * `noLb`: the spec's env empties the image's API_LB_IMAGE, so workers reach the API on the first
 * master directly (no haproxy static pod), as the baseline's do: the same steps on both sides.
 */
async function sealantRun(session, ref, dir, r, sandboxes, counters, { noLb = false } = {}) {
  const sb = await freshHosts(dir, `kb-sealant${noLb ? "-nolb" : ""}-${r}`, sandboxes);
  try {
    const ips = sb.hosts.map((h) => h.ip);
    const spec = parseClusterSpec({
      name: "kbench",
      image: ref,
      hosts: [
        { ips: [ips[0]], roles: ["master"] },
        { ips: ips.slice(1), roles: ["node"] },
      ],
      ssh: { privateKeyPath: sb.ssh.pk, knownHosts: sb.ssh.knownHosts },
      ...(noLb ? { env: { API_LB_IMAGE: "" } } : {}),
    });
    const events = [];
    const load0 = os.loadavg()[0];
    const cpu0 = hostsCpuMs(sb);
    const self0 = process.cpuUsage();
    counters.reset();
    const t0 = performance.now();
    const at = () => performance.now() - t0;
    const startEpoch = Date.now();
    await applyCluster({ session, spec, knownHostsFile: sb.ssh.knownHosts, onEvent: (e) => events.push({ t: at(), ...e }) });
    const wallMs = at();
    const self = process.cpuUsage(self0);
    const hostsCpu = hostsCpuMs(sb) - cpu0;
    const load1 = os.loadavg()[0];
    const commands = counters.take(t0);
    const nodes = await confirmReady(sb);
    const ready = readyAt(nodes, startEpoch);
    return {
      wallMs,
      load: { atStart: Math.round(load0 * 100) / 100, atEnd: Math.round(load1 * 100) / 100 },
      cpuS: { client: Math.round((self.user + self.system) / 1e4) / 100, hosts: Math.round(hostsCpu / 10) / 100 },
      nodesReadyAtS: ready,
      lastReadyToDoneS: lagAfterReady(ready, wallMs),
      joinedMs: events.find((e) => e.type === "phase" && e.name === "runtime:check")?.t ?? wallMs,
      kubeadmInitS: kubeadmInitTimeline(events.filter((e) => e.type === "output")),
      breakdownMs: sealantBreakdown(events, commands, wallMs, ips),
      phasesMs: phasesOf(events, wallMs),
      commands: summarizeCommands(commands, ips),
      // Every command, "<start ms> <duration ms> <host> <kind>", for the first round only (the JSON stays small).
      ...(r === 0
        ? {
            commandLog: commands.map(
              (c) =>
                `${Math.round(c.t)} ${Math.round(c.ms)} ${c.host === ips[0] ? "master" : `worker${ips.indexOf(c.host)}`} ${c.kind}${c.head ? `: ${c.head}` : ""}`,
            ),
          }
        : {}),
      ...(await afterReady(sb)),
    };
  } finally {
    await sandboxDown(sb);
  }
}

async function baselineRun(rootfs, dir, r, sandboxes) {
  const sb = await freshHosts(dir, `kb-kubeadm-${r}`, sandboxes);
  try {
    const ips = sb.hosts.map((h) => h.ip);
    const load0 = os.loadavg()[0];
    const cpu0 = hostsCpuMs(sb);
    const children0 = childrenCpuS();
    const t0 = performance.now();
    const startEpoch = Date.now();
    const lines = [];
    const code = await new Promise((resolve, reject) => {
      const child = spawn("bash", [BASELINE_SH, rootfs, ...ips], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, SSH_KEY: sb.ssh.pk, SSH_KNOWN_HOSTS: sb.ssh.knownHosts },
      });
      const byLine = (stream, name) => {
        let rest = "";
        stream.setEncoding("utf8").on("data", (d) => {
          const parts = (rest + d).split("\n");
          rest = parts.pop();
          const t = performance.now() - t0;
          for (const line of parts) lines.push({ t, stream: name, line });
        });
      };
      byLine(child.stdout, "stdout");
      byLine(child.stderr, "stderr");
      child.on("error", reject);
      child.on("close", (c) => resolve(c));
    });
    const wallMs = performance.now() - t0;
    if (code !== 0)
      throw new Error(
        `kubeadm-baseline.sh exited ${code}: ${lines
          .filter((l) => l.stream === "stderr")
          .slice(-15)
          .map((l) => l.line)
          .join("\n")}`,
      );
    const hostsCpu = hostsCpuMs(sb) - cpu0;
    const children = Math.round((childrenCpuS() - children0) * 100) / 100;
    const load1 = os.loadavg()[0];
    const nodes = await confirmReady(sb);
    const ready = readyAt(nodes, startEpoch);
    return {
      wallMs,
      load: { atStart: Math.round(load0 * 100) / 100, atEnd: Math.round(load1 * 100) / 100 },
      cpuS: { client: children, hosts: Math.round(hostsCpu / 10) / 100 },
      nodesReadyAtS: ready,
      lastReadyToDoneS: lagAfterReady(ready, wallMs),
      joinedMs: lines.find((l) => l.stream === "stdout" && l.line.startsWith("@phase ready"))?.t ?? wallMs,
      kubeadmInitS: kubeadmInitTimeline(lines.filter((l) => l.stream === "stderr")),
      breakdownMs: baselineBreakdown(lines, wallMs),
      ...(await afterReady(sb)),
    };
  } finally {
    await sandboxDown(sb);
  }
}

/** CPU seconds of all reaped children of this process so far (the baseline's bash, ssh and tar). */
function childrenCpuS() {
  const stat = fs.readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[13]) + Number(f[14])) / 100;
}

/** CPU ms each host's cgroup used so far (cpuacct: every process in the host, kubelet and pods included). */
function hostsCpuMs(sb) {
  let ns = 0;
  for (const h of sb.hosts) {
    const d = (h.cgroups ?? []).find((c) => /\/cpuacct(,[^/]*)?\//.test(c) || /\/cpu,cpuacct\//.test(c));
    if (d) ns += Number(fs.readFileSync(path.join(d, "cpuacct.usage"), "utf8"));
  }
  return ns / 1e6;
}

// ---------------------------------------------------------------- after Ready: confirm, settle, memory

const kubectl = async (sb, args) => {
  const r = await hostExec(sb, sb.hosts[0], ["kubectl", ...ADMIN, ...args], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} on ${sb.hosts[0].ip}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
};

/** Every host a Ready node, as kubectl on the master sees it; the nodes' Ready conditions. */
async function confirmReady(sb) {
  const nodes = JSON.parse(await kubectl(sb, ["get", "nodes", "-o", "json"])).items;
  const ready = (n) => n.status.conditions.find((c) => c.type === "Ready");
  const ipOf = (n) => n.status.addresses.find((a) => a.type === "InternalIP")?.address;
  const missing = sb.hosts.filter((h) => !nodes.some((n) => ipOf(n) === h.ip && ready(n)?.status === "True"));
  if (missing.length > 0) throw new Error(`not Ready after the run: ${missing.map((h) => h.ip).join(", ")}`);
  return nodes.map((n) => ({ ip: ipOf(n), name: n.metadata.name, readySince: ready(n).lastTransitionTime, registered: n.metadata.creationTimestamp }));
}

/** Seconds from the start of the run to each node's registration and Ready (the API's 1-second timestamps). */
function readyAt(nodes, startEpoch) {
  const s = (iso) => Math.round((Date.parse(iso) - startEpoch) / 100) / 10;
  return Object.fromEntries(nodes.map((n) => [n.ip, { registered: s(n.registered), ready: s(n.readySince) }]));
}

/** From the last node's Ready (the API's timestamp, whole seconds: +-1 s) to the tool's end. */
const lagAfterReady = (ready, wallMs) => Math.round((wallMs / 1000 - Math.max(...Object.values(ready).map((n) => n.ready))) * 10) / 10;

/** Settle, then pod state and each host's memory. */
async function afterReady(sb) {
  await new Promise((res) => setTimeout(res, SETTLE_S * 1000));
  const pods = JSON.parse(await kubectl(sb, ["get", "pods", "-A", "-o", "json"])).items;
  const restarts = { total: 0, byPod: {}, lastWords: {} };
  const notRunning = [];
  for (const p of pods) {
    const n = (p.status.containerStatuses ?? []).reduce((s, c) => s + c.restartCount, 0);
    const name = `${p.metadata.namespace}/${p.metadata.name}`;
    if (n > 0) restarts.byPod[`${name} on ${p.spec.nodeName}`] = n;
    restarts.total += n;
    if (p.status.phase !== "Running") notRunning.push(`${name} ${p.status.phase}`);
    // Why it restarted: the last line of each restarted container's previous run, and when that
    // run started against when kube-proxy (which makes the Service address 10.96.0.1 work) started on that node.
    for (const c of (p.status.containerStatuses ?? []).filter((x) => x.restartCount > 0)) {
      const last = await kubectl(sb, ["-n", p.metadata.namespace, "logs", p.metadata.name, "-c", c.name, "--previous", "--tail", "1"]).catch((e) => e.message);
      const proxy = pods.find((x) => x.metadata.name.startsWith("kube-proxy-") && x.spec.nodeName === p.spec.nodeName)?.status.containerStatuses?.[0];
      const proxyStarted = proxy?.state?.running?.startedAt ?? proxy?.lastState?.terminated?.startedAt;
      const firstStarted = c.lastState?.terminated?.startedAt;
      restarts.lastWords[`${name}/${c.name}`] = {
        lastLine: last.trim().slice(0, 300),
        ...(firstStarted && proxyStarted ? { startedBeforeKubeProxyS: (Date.parse(proxyStarted) - Date.parse(firstStarted)) / 1000 } : {}),
      };
    }
  }
  const memory = {};
  const nodeOf = Object.fromEntries(
    JSON.parse(await kubectl(sb, ["get", "nodes", "-o", "json"])).items.map((n) => [
      n.status.addresses.find((a) => a.type === "InternalIP")?.address,
      n.metadata.name,
    ]),
  );
  for (const [i, h] of sb.hosts.entries()) {
    const m = hostMemory(h);
    // Which pods the host runs (CoreDNS lands on a worker when the master was not Ready in time).
    if (m)
      m.pods = pods
        .filter((p) => p.spec.nodeName === nodeOf[h.ip])
        .map((p) => p.metadata.name.replace(/-[a-z0-9]{8,10}-[a-z0-9]{5}$|-[a-z0-9]{5}$|-host\d+$/, ""))
        .sort();
    memory[i === 0 ? "master" : `worker${i}`] = m;
  }
  return { pods: pods.length, notRunning, restarts, memory };
}

/**
 * A host's memory as its memory cgroup counts it (cgroup v1, hierarchical totals) and as its
 * processes' RSS/PSS add up. Working set = usage - inactive file pages (what the kubelet and
 * cAdvisor call a container's working set); cache includes the files written to the host's disk.
 */
function hostMemory(h) {
  const d = (h.cgroups ?? []).find((c) => /\/memory\//.test(c));
  if (!d) return undefined;
  const stat = Object.fromEntries(
    fs
      .readFileSync(path.join(d, "memory.stat"), "utf8")
      .trim()
      .split("\n")
      .map((l) => l.split(" "))
      .map(([k, v]) => [k, Number(v)]),
  );
  const usage = Number(fs.readFileSync(path.join(d, "memory.usage_in_bytes"), "utf8"));
  const pids = new Set();
  const walk = (p) => {
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(p, e.name));
      else if (e.name === "cgroup.procs") for (const x of fs.readFileSync(path.join(p, e.name), "utf8").split("\n").filter(Boolean)) pids.add(Number(x));
    }
  };
  walk(d);
  let rss = 0;
  let pss = 0;
  const procs = [];
  for (const pid of pids) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const p = Number(/^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0);
      rss += kb * 1024;
      pss += p * 1024;
      procs.push({ name: /Name:\s+(\S+)/.exec(status)?.[1] ?? "?", rssMiB: Math.round(kb / 102.4) / 10 });
    } catch {
      // gone meanwhile
    }
  }
  const top = procs.sort((a, b) => b.rssMiB - a.rssMiB).slice(0, 8);
  const m = (b) => Math.round(b / MiB);
  return {
    usageMiB: m(usage),
    workingSetMiB: m(usage - (stat.total_inactive_file ?? 0)),
    anonRssMiB: m(stat.total_rss ?? 0), // rss counts transparent huge pages too
    cacheMiB: m(stat.total_cache ?? 0),
    processes: pids.size,
    rssSumMiB: m(rss),
    pssSumMiB: m(pss),
    top,
  };
}

function memoryMedians(runs, median, round) {
  const out = {};
  for (const role of Object.keys(runs[0].memory)) {
    const xs = runs.map((r) => r.memory[role]).filter(Boolean);
    out[role] = Object.fromEntries(
      ["usageMiB", "workingSetMiB", "anonRssMiB", "cacheMiB", "rssSumMiB", "pssSumMiB", "processes"].map((k) => [k, round(median(xs.map((x) => x[k])), 0)]),
    );
  }
  return out;
}

// ---------------------------------------------------------------- where the time goes

/**
 * Every SSH command sealant runs in this process, timed: wraps SshConnection.exec (run, upload
 * and streamed commands all go through it), with a kind from the command's text.
 */
function instrument() {
  let log = [];
  const exec = SshConnection.prototype.exec;
  SshConnection.prototype.exec = async function (command, opts) {
    const t = performance.now();
    try {
      return await exec.call(this, command, opts);
    } finally {
      const kind = commandKind(command);
      // What an unclassified command is: its first line that is not the runtime's prelude.
      const head =
        kind === "other"
          ? command
              .split("\n")
              .find((l) => l.trim() && !/^(cd |set -eu|export KUBECONFIG|#)/.test(l))
              ?.slice(0, 60)
          : undefined;
      log.push({ host: this.host.replace(/:22$/, ""), kind, head, t, ms: performance.now() - t });
    }
  };
  return {
    reset: () => (log = []),
    take: (t0) => log.map((c) => ({ ...c, t: c.t - t0 })),
  };
}

function commandKind(c) {
  if (/kubeadm init --config/.test(c)) return "bootstrap: kubeadm init + CNI + DNS";
  if (/kubeadm join --config/.test(c)) return "join: kubeadm join + API load balancer";
  if (/kubeadm token create/.test(c)) return "join: token (first master)";
  if (/kubeadm token delete/.test(c)) return "join: token delete + labels (first master)";
  if (/scripts\/containerd\.sh/.test(c)) return "init-host: containerd.sh + init-kube.sh";
  if (/is not Ready on/.test(c)) return "check: Ready poll (first master)";
  if (/kubectl (label|taint) node/.test(c)) return "labels (first master)";
  if (/tar -x/.test(c)) return "distribute: extract";
  if (/cp -al/.test(c)) return "distribute: assemble";
  if (/echo "arch=/.test(c)) return "facts";
  if (/state\.json/.test(c)) return "record";
  if (/\/lock\b/.test(c)) return "lock";
  if (/openssl/.test(c)) return "registry: certificate";
  if (/hosts\.toml|sealant-registry/.test(c)) return "registry: config files";
  if (/serve|registry\.pid|curl/.test(c)) return "registry: start";
  if (/\/etc\/hosts/.test(c)) return "etc-hosts";
  if (/rendered/.test(c)) return "render";
  return "other";
}

/** Wall ms per plan phase (a phase ends when the next starts), plus before the first and after the last. */
function phasesOf(events, wallMs) {
  const phases = events.filter((e) => e.type === "phase");
  const out = { "connect, facts, lock, plan": phases[0]?.t ?? wallMs };
  for (const [i, p] of phases.entries()) out[p.name] = (phases[i + 1]?.t ?? lastStepEnd(events)) - p.t;
  out["after the last phase (records, outputs)"] = wallMs - lastStepEnd(events);
  return out;
}
const lastStepEnd = (events) => Math.max(...events.filter((e) => e.type === "step" && e.status === "done").map((e) => e.t));

/** kubeadm init's own steps, as it prints them: when each began, in seconds after "[init] Using Kubernetes version". */
const KUBEADM_INIT_STEPS = [
  ["pull images", /^\[preflight\] Pulling images/],
  ["certs", /^\[certs\] Using certificateDir/],
  ["kubelet start", /^\[kubelet-start\] Starting the kubelet/],
  ["kubelet healthy", /^\[kubelet-check\] The kubelet is healthy/],
  ["API healthy", /^\[api-check\] The API server is healthy/],
  ["upload config", /^\[upload-config\]/],
  ["bootstrap token", /^\[bootstrap-token\] Using token|^\[bootstrap-token\] Configuring/],
  ["kube-proxy applied", /^\[addons\] Applied essential addon: kube-proxy/],
  ["done", /control-plane has initialized successfully/],
];
function kubeadmInitTimeline(lines) {
  const start = lines.find((l) => /^\[init\] Using Kubernetes version/.test(l.line))?.t;
  if (start === undefined) return undefined;
  const out = {};
  for (const [name, re] of KUBEADM_INIT_STEPS) {
    const t = lines.find((l) => l.t >= start && re.test(l.line))?.t;
    if (t !== undefined) out[name] = Math.round((t - start) / 100) / 10;
  }
  return out;
}

/** The first output line matching `re` (optionally on one host), its time. */
const mark = (events, re, host) => events.find((e) => e.type === "output" && (!host || e.host.replace(/:22$/, "") === host) && re.test(e.line))?.t;

/**
 * sealant's time by what it does, in the order of its flow, mapped onto the baseline's steps.
 * Within bootstrap and join, kubeadm's own lines split the step: kubeadm init runs from
 * "[init] Using Kubernetes version" to "initialized successfully", a join from its first
 * "[preflight]" line to "This node has joined the cluster".
 */
function sealantBreakdown(events, commands, wallMs, ips) {
  const p = phasesOf(events, wallMs);
  const phaseStart = (n) => events.find((e) => e.type === "phase" && e.name === n)?.t;
  const cmd = (kind, host) => commands.filter((c) => c.kind === kind && (!host || c.host === host));
  const out = {
    "connect, facts, lock, plan": p["connect, facts, lock, plan"],
    "distribute (image to hosts)": p.distribute ?? 0,
    "render (templates, /etc/hosts)": p.render ?? 0,
    "registry (TLS cert, start, mirrors)": p.registry ?? 0,
    "init-host (containerd.sh, binaries, init-kube.sh)": p["runtime:init-host"] ?? 0,
  };
  const b0 = phaseStart("runtime:bootstrap");
  const initStart = mark(events, /^\[init\] Using Kubernetes version/);
  const initDone = mark(events, /control-plane has initialized successfully/);
  const boot = cmd("bootstrap: kubeadm init + CNI + DNS")[0];
  if (b0 !== undefined && initStart !== undefined && initDone !== undefined && boot) {
    out["bootstrap: before kubeadm init (config, rootfs switch)"] = initStart - b0;
    out["bootstrap: kubeadm init"] = initDone - initStart;
    out["bootstrap: CNI + DNS scripts"] = boot.t + boot.ms - initDone;
    out["bootstrap: after (labels, record)"] = (p["runtime:bootstrap"] ?? 0) - (boot.t + boot.ms - b0);
  } else out["bootstrap"] = p["runtime:bootstrap"] ?? 0;
  const j0 = phaseStart("runtime:join");
  const joins = ips.slice(1).map((ip) => ({
    ip,
    start: mark(events, /^\[preflight\] Running pre-flight checks/, ip),
    joined: mark(events, /This node has joined the cluster/, ip),
    cmd: cmd("join: kubeadm join + API load balancer", ip)[0],
  }));
  if (j0 !== undefined && joins.every((j) => j.start !== undefined && j.joined !== undefined && j.cmd)) {
    const first = Math.min(...joins.map((j) => j.start));
    const joined = Math.max(...joins.map((j) => j.joined));
    const cmdEnd = Math.max(...joins.map((j) => j.cmd.t + j.cmd.ms));
    out["join: token on the first master, join config"] = first - j0;
    out["join: kubeadm join (both workers)"] = joined - first;
    out["join: worker API load balancer (haproxy pod, /healthz)"] = cmdEnd - joined;
    out["join: token delete + labels, record"] = (p["runtime:join"] ?? 0) - (cmdEnd - j0);
  } else out["join"] = p["runtime:join"] ?? 0;
  out["check (every node Ready, polled every 2 s)"] = p["runtime:check"] ?? 0;
  out["after the last phase (records, outputs)"] = p["after the last phase (records, outputs)"];
  return out;
}

/** The baseline's time by step, from its @phase markers; kubeadm's lines split init and join as for sealant. */
function baselineBreakdown(lines, wallMs) {
  const marks = lines.filter((l) => l.stream === "stdout" && l.line.startsWith("@phase ")).map((l) => ({ name: l.line.split(" ")[1], t: l.t }));
  const at = (n) => marks.find((m) => m.name === n)?.t;
  const find = (re, after = 0) => lines.find((l) => l.stream === "stderr" && l.t >= after && re.test(l.line))?.t;
  const findLast = (re, after = 0) => lines.filter((l) => l.stream === "stderr" && l.t >= after && re.test(l.line)).at(-1)?.t;
  const out = {
    "copy (ssh tar -x of the rootfs)": at("prepare") - at("copy"),
    "prepare (registry, mirrors, containerd.sh, binaries, init-kube.sh)": at("init") - at("prepare"),
  };
  const initStart = find(/^\[init\] Using Kubernetes version/, at("init"));
  const initDone = find(/control-plane has initialized successfully/, at("init"));
  if (initStart !== undefined && initDone !== undefined) {
    out["init: before kubeadm init"] = initStart - at("init");
    out["init: kubeadm init"] = initDone - initStart;
    out["init: CNI + DNS scripts"] = at("join") - initDone;
  } else out["init (kubeadm init, CNI, DNS)"] = at("join") - at("init");
  const joinStart = find(/^\[preflight\] Running pre-flight checks/, at("join"));
  const joined = findLast(/This node has joined the cluster/, at("join"));
  if (joinStart !== undefined && joined !== undefined) {
    out["join: token create"] = joinStart - at("join");
    out["join: kubeadm join (both workers)"] = joined - joinStart;
    out["join: after"] = at("ready") - joined;
  } else out["join"] = at("ready") - at("join");
  out["ready (kubectl wait)"] = at("end") - at("ready");
  out["script start/end"] = wallMs - (at("end") - at("copy"));
  return out;
}

/** Commands per host role and kind: count and summed ms. */
function summarizeCommands(commands, ips) {
  const role = (h) => (h === ips[0] ? "master" : "worker");
  const out = {};
  for (const c of commands) {
    const k = `${role(c.host)}: ${c.kind}`;
    out[k] ??= { n: 0, ms: 0 };
    out[k].n++;
    out[k].ms += c.ms;
  }
  for (const v of Object.values(out)) v.ms = Math.round(v.ms);
  return out;
}

// ---------------------------------------------------------------- the baseline's files

/** The image's rootfs on this machine: its layers (registry-only ones too) extracted in order. */
async function extractRootfs(session, pf, dir) {
  rmrf(dir);
  fs.mkdirSync(dir, { recursive: true });
  for (const l of pf.layers) {
    const tar = spawn("tar", ["-x", "-C", dir], { stdio: ["pipe", "ignore", "pipe"] });
    let err = "";
    tar.stderr.on("data", (d) => (err += d));
    const done = new Promise((res, rej) => tar.on("close", (c) => (c === 0 ? res() : rej(new Error(`tar -x of layer ${l.digest}: exit ${c}: ${err}`)))));
    const src = session.store.openBlob(l.digest);
    await Promise.all([/gzip/.test(l.mediaType) ? pipeline(src, zlib.createGunzip(), tar.stdin) : pipeline(src, tar.stdin), done]);
  }
  const whiteouts = execFileSync("find", [dir, "-name", ".wh.*"], { encoding: "utf8" }).trim();
  if (whiteouts) throw new Error(`the image has whiteouts, which a plain extraction does not apply: ${whiteouts.split("\n")[0]}`);
}

// ---------------------------------------------------------------- report

const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;

const SIDES = {
  sealant: "sealant apply (image as is: haproxy API LB on workers)",
  sealantNoLb: "sealant apply, no worker API LB (env API_LB_IMAGE='')",
  kubeadm: "kubeadm-baseline.sh (bare kubeadm sequence)",
};

function report(res, table) {
  const runsS = (s) => s.runsMs.map((x) => (x / 1000).toFixed(1)).join(" ");
  const vs = (a, b) => `${Math.round((a.medianMs / b.medianMs) * 100) / 100}x the script's median, ${Math.round((a.minMs / b.minMs) * 100) / 100}x its min`;
  const rows = [["hosts answer SSH -> all 3 nodes Ready (1 master + 2 workers)", "median", "min", "runs (s)", "note"]];
  for (const [side, name] of Object.entries(SIDES)) {
    rows.push([
      name,
      secs(res[side].medianMs),
      secs(res[side].minMs),
      runsS(res[side]),
      side === "kubeadm" ? "same rootfs files, container images, scripts, kubeadm settings" : vs(res[side], res.kubeadm),
    ]);
  }
  const w = res.withoutRestarts;
  for (const side of Object.keys(SIDES)) {
    const x = w[side];
    rows.push([
      `  rounds without a pod restart: ${side}`,
      x.n ? secs(x.medianMs) : "-",
      x.n ? secs(x.minMs) : "-",
      x.n ? runsS(x) : "none",
      `${x.n} of ${res.runs[side].length} rounds${side !== "kubeadm" && x.n && w.kubeadm.n ? `; ${vs(x, w.kubeadm)}` : ""}`,
    ]);
  }
  const j = res.joined;
  for (const side of Object.keys(SIDES)) {
    rows.push([
      `  up to the last join done: ${side}`,
      secs(j[side].medianMs),
      secs(j[side].minMs),
      runsS(j[side]),
      side === "kubeadm" ? "(then: waiting for Ready)" : vs(j[side], j.kubeadm),
    ]);
  }

  const roundRows = [
    ["round", "side", "wall", "load start/end", "CPU s client/hosts", "node Ready at (s) m/w1/w2", "done after last Ready", "restarts (pod on node: n)"],
  ];
  for (const side of Object.keys(SIDES)) {
    for (const [i, r] of res.runs[side].entries()) {
      const ready = Object.values(r.nodesReadyAtS)
        .map((n) => n.ready)
        .join("/");
      const restarts = r.restarts.total
        ? Object.entries(r.restarts.byPod)
            .map(([k, v]) => `${k.replace(/^kube-flannel\/kube-flannel-ds-[a-z0-9]{5}/, "flannel")}: ${v}`)
            .join(", ")
        : "0";
      roundRows.push([
        String(i + 1),
        side,
        secs(r.wallMs),
        `${r.load.atStart}/${r.load.atEnd}`,
        `${r.cpuS.client}/${r.cpuS.hosts}`,
        ready,
        `${r.lastReadyToDoneS} s`,
        restarts,
      ]);
    }
  }

  const phaseRows = [["sealant (image as is) step, median", "s", "kubeadm-baseline.sh step, median", "s"]];
  const s = Object.entries(res.sealant.breakdownMs);
  const k = Object.entries(res.kubeadm.breakdownMs);
  for (let i = 0; i < Math.max(s.length, k.length); i++) {
    phaseRows.push([s[i]?.[0] ?? "", s[i] ? (s[i][1] / 1000).toFixed(2) : "", k[i]?.[0] ?? "", k[i] ? (k[i][1] / 1000).toFixed(2) : ""]);
  }

  const memRows = [
    ["host, after Ready + settle (medians)", "side", "working set MiB", "anon RSS MiB", "page cache MiB", "RSS sum MiB", "PSS sum MiB", "processes"],
  ];
  for (const role of Object.keys(res.memory.kubeadm)) {
    for (const side of Object.keys(SIDES)) {
      const m = res.memory[side][role];
      memRows.push([role, side, m.workingSetMiB, m.anonRssMiB, m.cacheMiB, m.rssSumMiB, m.pssSumMiB, m.processes]);
    }
  }
  const goalRows = [["goal", "measured", "met"], ...res.goals.map((g) => [g.goal, g.measured, g.met ? "yes" : "NO"])];
  const first = `${res.image.builtBy === "scripts/kube-base-image.sh" ? "" : `Image built by ${res.image.builtBy}. `}First apply of this image only (before the rounds, then remembered in the store): size pass ${(res.firstApplyOfImageMs.sizePass / 1000).toFixed(2)} s, template scan ${(res.firstApplyOfImageMs.templateScan / 1000).toFixed(2)} s. Image: ${res.image.layers} layers, ${res.image.gzipMiB} MiB gzip (${res.image.registryOnlyGzipMiB} MiB registry-only, sent to masters only); rootfs ${res.image.rootfsMiB.all} MiB (registry/ ${res.image.rootfsMiB.registry} MiB). Memory read ${res.settleS} s after the run.`;
  return `${table(rows)}\n\n${table(roundRows)}\n\n${table(phaseRows)}\n\n${table(memRows)}\n\n${first}\n\n${table(goalRows)}\n`;
}

module.exports = { benchKubernetes, report };
