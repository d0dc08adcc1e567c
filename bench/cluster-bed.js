"use strict";
// The test bed of the cluster benchmarks: 10 sandbox hosts (127.0.10.171-180, a range no test
// uses), a ~500 MiB cluster image built by the engine's own builder, and the instruments
// that count what reaches each host. Everything lives under bench/.work/cluster and goes
// away with it; the hosts are brought down on exit, also on failure or Ctrl-C.
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");
const { spawn, spawnSync } = require("node:child_process");
const { pipeline } = require("node:stream/promises");
const ssh2 = require("ssh2");

const { onExit } = require("./lib/sys");

const ROOT = path.resolve(__dirname, "..");
const { Session } = require("../dist/engine/session");
const { build } = require("../dist/engine/build");
const { sandboxUp, sandboxDown, sshArgs } = require("../dist/engine/sandbox");
const { SshConnection, BulkPool, bulkPool } = require("../dist/engine/ssh");
const { parseClusterSpec } = require("../dist/engine/cluster/spec");

const MiB = 1024 * 1024;
const FIRST_INDEX = 171;
const HOSTS = 10;
/**
 * Data roots live on each host's own tmpfs /tmp: ten sandbox hosts share one machine disk,
 * and 5 GiB of dirty pages per 10-host run would measure that disk's writeback, not the
 * transfer. Every contender extracts to the same file system.
 */
const DATA_ROOT = "/tmp/sealant-bench";
const CIPHER = "aes128-gcm@openssh.com";

async function openBed(work, log) {
  const home = path.join(work, "home");
  fs.mkdirSync(home, { recursive: true });
  // The builder's scratch space follows $SEALANT_HOME, not the session's home.
  process.env.SEALANT_HOME = home;
  const session = await Session.open({ home, mirrors: {}, env: {} });
  const dir = path.join(work, "sandbox");
  onExit(() => {
    // Exit hooks are synchronous: the sandbox's own teardown, in a child process, if still up.
    if (!fs.existsSync(path.join(dir, "sandbox.json"))) return;
    const down = `require(${JSON.stringify(path.join(ROOT, "dist/engine/sandbox"))}).sandboxDown(${JSON.stringify(dir)})`;
    const r = spawnSync(process.execPath, ["-e", down], { encoding: "utf8", timeout: 30_000 });
    if (r.status !== 0) throw new Error(`bringing the bench's sandbox down: ${r.error?.message ?? r.stderr}`);
  });
  const t0 = Date.now();
  const sandbox = await sandboxUp(HOSTS, { name: "bench-cluster", dir, firstIndex: FIRST_INDEX });
  log(`  ${HOSTS} sandbox hosts up in ${((Date.now() - t0) / 1000).toFixed(1)} s (${sandbox.hosts[0].ip}-${sandbox.hosts.at(-1).ip})`);
  return {
    work,
    home,
    session,
    sandbox,
    ips: sandbox.hosts.map((h) => h.ip),
    knownHostsFile: path.join(home, "known_hosts"),
    close: async () => {
      session.close();
      await sandboxDown(sandbox).catch(() => undefined);
      delete process.env.SEALANT_HOME;
    },
  };
}

/**
 * A build context of `mib` MiB of random (incompressible) data, 80 % in 4 big files and 20 %
 * in 50 KiB files, 100 per directory: the mix of a real rootfs (a few binaries and images,
 * many manifests and scripts). No hooks/: a missing hook is a no-op, so an apply measures
 * sealant's own work only.
 */
function writeContext(dir, mib) {
  const data = path.join(dir, "data");
  fs.mkdirSync(data, { recursive: true });
  fs.writeFileSync(path.join(dir, "Kubefile"), "FROM scratch\nLABEL io.sealant.runtime=hooks\nCOPY data data\n");
  const big = Math.round(mib * 0.8 * MiB);
  for (let i = 0; i < 4; i++) writeRandomFile(path.join(data, `big${i}.bin`), Math.floor(big / 4));
  const small = 50 * 1024;
  const count = Math.round((mib * 0.2 * MiB) / small);
  for (let i = 0; i < count; i++) {
    const sub = path.join(data, "small", `d${String(Math.floor(i / 100)).padStart(2, "0")}`);
    if (i % 100 === 0) fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `f${String(i).padStart(4, "0")}`), crypto.randomBytes(small));
  }
  return { data, bigFiles: 4, smallFiles: count, files: 4 + count, dataBytes: 4 * Math.floor(big / 4) + count * small };
}

function writeRandomFile(file, size) {
  const fd = fs.openSync(file, "w");
  for (let left = size; left > 0; left -= 16 * MiB) fs.writeSync(fd, crypto.randomBytes(Math.min(left, 16 * MiB)));
  fs.closeSync(fd);
}

/**
 * Builds the image with the engine's builder and writes the rootfs as one uncompressed tar
 * (the layer, gunzipped: the very bytes the hosts end up with) for the OpenSSH baseline.
 */
async function buildBigImage(bed, mib, log) {
  const context = path.join(bed.work, "context");
  const t0 = Date.now();
  const files = writeContext(context, mib);
  log(`  wrote ${mib} MiB of random data in ${files.files} files in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const t1 = Date.now();
  const result = await build(bed.session, { context, tag: "bench/cluster-big:1" });
  const layers = result.platforms.flatMap((p) => p.layers);
  log(
    `  built it in ${((Date.now() - t1) / 1000).toFixed(1)} s: ${layers.length} layer(s), ${(layers.reduce((s, l) => s + l.size, 0) / MiB).toFixed(1)} MiB gzip`,
  );
  const manifest = await bed.session.store.readManifest((await bed.session.store.resolve("bench/cluster-big:1")).descriptor.digest);
  const tarFile = path.join(bed.work, "rootfs.tar");
  const parts = [];
  for (const l of manifest.layers) {
    const part = `${tarFile}.${parts.length}`;
    await pipeline(bed.session.store.openBlob(l.digest), zlib.createGunzip(), fs.createWriteStream(part));
    parts.push(part);
  }
  // One layer (COPY data data) is what this Kubefile gives; a second would need tar concatenation.
  if (parts.length !== 1) throw new Error(`expected the image to have one layer, it has ${parts.length}`);
  fs.renameSync(parts[0], tarFile);
  return {
    ref: `bench/cluster-big:1@${result.digest}`,
    digest: result.digest,
    layers: manifest.layers,
    gzipBytes: manifest.layers.reduce((s, l) => s + l.size, 0),
    tarFile,
    tarBytes: fs.statSync(tarFile).size,
    context,
    ...files,
  };
}

/** A cluster spec over the sandbox hosts: `masters` then `nodes` (two host groups); `distribution` as in the spec (default: the spec's). */
function clusterSpec(bed, name, image, masters, nodes = [], distribution = undefined) {
  return parseClusterSpec({
    name,
    image,
    hosts: [{ ips: masters, roles: ["master"] }, ...(nodes.length ? [{ ips: nodes, roles: ["node"] }] : [])],
    ssh: { privateKeyPath: bed.sandbox.ssh.pk, knownHosts: bed.sandbox.ssh.knownHosts },
    dataRoot: DATA_ROOT,
    ...(distribution ? { distribution } : {}),
  });
}

/** Runs the system ssh client on a sandbox host (stdin from a file, if given); resolves to its stdout on exit 0. */
function openssh(bed, ip, command, stdinFile) {
  return new Promise((resolve, reject) => {
    const fd = stdinFile ? fs.openSync(stdinFile, "r") : "ignore";
    const args = ["-c", CIPHER, "-o", "Compression=no", ...sshArgs(bed.sandbox, ip, command)];
    const child = spawn("ssh", args, { stdio: [fd, "pipe", "pipe"] });
    if (typeof fd === "number") fs.closeSync(fd);
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`ssh ${ip} ${command}: exit ${code}: ${err.trim()}`))));
  });
}

/** Removes everything the benchmarks put on the hosts (untimed, between runs). */
async function wipeHosts(bed, ips = bed.ips) {
  await Promise.all(ips.map((ip) => openssh(bed, ip, `rm -rf ${DATA_ROOT}`)));
}

/**
 * CPU ms used on the hosts so far: every live process under each host's PID 1 (sshd), with the
 * CPU of the processes each has reaped (sessions, tar, gzip). Counting PID 1 alone missed the
 * sessions still open at the end of a run — sealant's connections, and the worker threads' data
 * connections, close after its apply returns, so their sshd and tar were billed to no one.
 */
function hostsCpuMs(bed) {
  const procs = new Map();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      procs.set(Number(name), { ppid: Number(f[1]), ms: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10 });
    } catch {
      // gone meanwhile: its CPU is in its parent's reaped children now
    }
  }
  const roots = new Set(bed.sandbox.hosts.map((h) => h.pid));
  const underHost = (pid) => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = procs.get(p)?.ppid ?? 0, hops++) if (roots.has(p)) return true;
    return false;
  };
  let ms = 0;
  for (const [pid, p] of procs) if (underHost(pid)) ms += p.ms;
  return ms;
}

/** SSH logins each host's sshd accepted so far (its log, `sshd -D -e`, says "Accepted publickey"). */
function acceptedLogins(bed) {
  const out = {};
  for (const h of bed.sandbox.hosts) {
    const text = fs.readFileSync(path.join(h.dir, "host.log"), "utf8");
    out[h.ip] = (text.match(/Accepted publickey for /g) ?? []).length;
  }
  return out;
}

/**
 * Client-side counters, per host, of what sealant does over SSH: connections (ssh2 handshakes
 * started), commands (every SshConnection.exec: a session channel each), bytes on the wire
 * (the TCP socket's counters, encryption included) and time per kind of command. Installed
 * once by wrapping the ssh2 Client and SshConnection prototypes in this process.
 */
function instrument() {
  const hosts = new Map();
  const of = (ip) => {
    if (!hosts.has(ip)) hosts.set(ip, { connects: 0, commands: 0, kinds: {}, sockets: [] });
    return hosts.get(ip);
  };
  const connect = ssh2.Client.prototype.connect;
  ssh2.Client.prototype.connect = function (cfg) {
    const r = connect.call(this, cfg);
    const h = of(cfg.host);
    h.connects++;
    if (this._sock) h.sockets.push(this._sock);
    return r;
  };
  const exec = SshConnection.prototype.exec;
  SshConnection.prototype.exec = async function (command, opts) {
    const h = of(this.host.replace(/:22$/, ""));
    h.commands++;
    const kind = commandKind(command);
    const t0 = performance.now();
    try {
      return await exec.call(this, command, opts);
    } finally {
      const k = (h.kinds[kind] ??= { n: 0, ms: 0 });
      k.n++;
      k.ms += performance.now() - t0;
    }
  };
  // Layer sends run on worker threads (their own connections): counted as a command each, and
  // their connections and wire bytes as the pool reports them.
  const send = BulkPool.prototype.send;
  BulkPool.prototype.send = async function (host, opts) {
    const h = of(opts.connect.host);
    h.commands++;
    const kind = commandKind(opts.line);
    const t0 = performance.now();
    try {
      return await send.call(this, host, opts);
    } finally {
      const k = (h.kinds[kind] ??= { n: 0, ms: 0 });
      k.n++;
      k.ms += performance.now() - t0;
    }
  };
  /** Counters since the last snapshot, per host (only hosts with any activity). */
  const snapshot = () => {
    const out = {};
    for (const ip of new Set([...hosts.keys(), ...bulkPool().stats.keys()])) {
      const h = of(ip);
      const w = bulkPool().stats.get(ip) ?? { connects: 0, wireOut: 0, wireIn: 0 };
      out[ip] = {
        connects: h.connects + w.connects,
        commands: h.commands,
        bytesOut: h.sockets.reduce((s, k) => s + (k.bytesWritten ?? 0), 0) + w.wireOut,
        bytesIn: h.sockets.reduce((s, k) => s + (k.bytesRead ?? 0), 0) + w.wireIn,
        kinds: structuredClone(h.kinds),
      };
    }
    return out;
  };
  const since = (before) => {
    const now = snapshot();
    const out = {};
    for (const [ip, n] of Object.entries(now)) {
      const b = before[ip] ?? { connects: 0, commands: 0, bytesOut: 0, bytesIn: 0, kinds: {} };
      const kinds = {};
      for (const [k, v] of Object.entries(n.kinds)) {
        const d = { n: v.n - (b.kinds[k]?.n ?? 0), ms: v.ms - (b.kinds[k]?.ms ?? 0) };
        if (d.n > 0) kinds[k] = d;
      }
      const d = {
        connects: n.connects - b.connects,
        commands: n.commands - b.commands,
        bytesOut: n.bytesOut - b.bytesOut,
        bytesIn: n.bytesIn - b.bytesIn,
        kinds,
      };
      if (d.connects || d.commands || d.bytesOut) out[ip] = d;
    }
    return out;
  };
  return { snapshot, since };
}

/** Wall time per plan phase of one apply, from its "phase" events (a phase ends when the next starts). */
function phaseTimer() {
  const marks = [];
  return {
    onEvent: (e) => {
      if (e.type === "phase") marks.push({ name: e.name, t: performance.now() });
    },
    phasesMs: () => {
      const all = [...marks, { name: "end", t: performance.now() }];
      const out = {};
      for (let i = 0; i + 1 < all.length; i++) out[all[i].name] = (out[all[i].name] ?? 0) + all[i + 1].t - all[i].t;
      return out;
    },
  };
}

/** What a command sealant runs is for, from its text: where distribution spends its time. */
function commandKind(command) {
  if (/tar -x/.test(command)) return "extract";
  if (/cp -al/.test(command)) return "assemble";
  if (/mv -T "\$n" "\$t"/.test(command)) return "swap";
  if (/echo "arch=/.test(command)) return "facts";
  if (/state\.json/.test(command)) return "record";
  if (/\/lock\b/.test(command)) return "lock";
  if (/hooks\//.test(command)) return "hook";
  if (/for d in \*/.test(command)) return "prune";
  if (/\/etc\/hosts/.test(command)) return "etc-hosts";
  return "other";
}

/** An SFTP session to a sandbox host with the same cipher and host-key check as the others. */
function sftpConnect(bed, ip) {
  const known = fs
    .readFileSync(bed.sandbox.ssh.knownHosts, "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${ip} `));
  const expected = Buffer.from(known.split(" ")[2], "base64");
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.on("error", reject);
    client.on("ready", () => {
      client.setNoDelay(true);
      client.sftp((err, sftp) => (err ? reject(err) : resolve({ client, sftp })));
    });
    client.connect({
      host: ip,
      username: "root",
      privateKey: fs.readFileSync(bed.sandbox.ssh.pk),
      algorithms: { cipher: [CIPHER], compress: ["none"] },
      hostVerifier: (key) => key.equals(expected),
    });
  });
}

module.exports = {
  MiB,
  HOSTS,
  DATA_ROOT,
  CIPHER,
  openBed,
  buildBigImage,
  clusterSpec,
  openssh,
  wipeHosts,
  hostsCpuMs,
  acceptedLogins,
  instrument,
  phaseTimer,
  commandKind,
  sftpConnect,
};
