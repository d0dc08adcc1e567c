"use strict";
// The Pulumi `Cluster` resource through the real Pulumi CLI (`BENCH_ONLY=pulumi npm run bench`;
// root): examples/pulumi-etcd deployed on 10 sandbox hosts (127.0.10.171-180; .181 is up for
// the join), then, REPEAT rounds of
//   pulumi preview - no-op; one host more (config hosts 10 -> 11); one host less (10 -> 9);
//   pulumi up      - no-op (with its preview, as a user runs it);
// and two baselines in the same rounds: the same commands on a stack holding one trivial
// dynamic resource (what any Pulumi program pays: CLI, language host, SDK, provider process),
// and `sealant plan` on the same cluster (which does connect).
//
// What reaches the hosts is counted on the hosts, three ways, and on the client:
//   TCP    - SYNs to 127.0.10.N:22, an nftables counter per host (table sealant_bench_pulumi,
//            created here and deleted at the end): every connection, logged in or not;
//   logins - "Accepted ..." lines in each host's sshd log (`sshd -D -e`);
//   procs  - processes started in each host's PID namespace (its ns_last_pid, read with
//            nsenter; the read's own process is subtracted): sshd's per-connection children
//            and every command a session runs;
//   client - ssh2 Client.connect/exec calls in the Node processes pulumi starts (the program
//            and the dynamic provider), recorded by bench/lib/pulumi-probe.js (NODE_OPTIONS).
// The instruments are checked first with one `ssh` by hand. The provider's own time (check and
// diff of the Cluster) is taken in the provider process the engine runs (the same probe), and
// again in this process on the olds/news the engine passes (from `pulumi stack export`).
const { execFileSync, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const { onExit, run, measure } = require("./lib/sys");
const { commandKind } = require("./cluster-bed");

const ROOT = path.resolve(__dirname, "..");
const CLI = path.join(ROOT, "dist", "cli", "main.js");
const PROBE = path.join(__dirname, "lib", "pulumi-probe.js");
const EXAMPLE = path.join(ROOT, "examples", "pulumi-etcd");
const { sandboxUp, sandboxDown, sshArgs } = require("../dist/engine/sandbox");

const FIRST_INDEX = 171;
const HOSTS = 10; // the cluster; one more sandbox host is up for the join preview
const NFT_TABLE = "sealant_bench_pulumi";
const IN_PROCESS_RUNS = 21;
const COLD_PROCESSES = 5;
const SECRET_SIG = "4dabf18193072939515e22adb298388d"; // Pulumi's marker of a secret value

async function benchPulumi(work, { repeat, log, median, round }) {
  const dir = path.join(work, "pulumi");
  const home = path.join(dir, "sealant-home");
  const probeFile = path.join(dir, "probe.jsonl");
  for (const d of [home, path.join(dir, "state"), path.join(dir, "pulumi-home")]) fs.mkdirSync(d, { recursive: true });
  const pulumiVersion = (
    await run("pulumi", ["version"]).catch(() => {
      throw new Error("no `pulumi` on PATH: `source scripts/env.sh` first (it puts the CLI built by scripts/pulumi-cli.sh there)");
    })
  ).stdout.trim();
  const env = {
    ...process.env,
    PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: "bench",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_HOME: path.join(dir, "pulumi-home"),
    SEALANT_HOME: home,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${PROBE}`.trim(),
    BENCH_PULUMI_PROBE: probeFile,
  };

  log(`pulumi: ${HOSTS + 1} sandbox hosts, the nftables counters, examples/pulumi-etcd on ${HOSTS} of them (${pulumiVersion})`);
  const sandboxDir = path.join(dir, "sandbox");
  onExit(() => {
    // Exit hooks are synchronous: the sandbox's own teardown, in a child process, if still up.
    if (!fs.existsSync(path.join(sandboxDir, "sandbox.json"))) return;
    const down = `require(${JSON.stringify(path.join(ROOT, "dist/engine/sandbox"))}).sandboxDown(${JSON.stringify(sandboxDir)})`;
    const r = spawnSync(process.execPath, ["-e", down], { encoding: "utf8", timeout: 30_000 });
    if (r.status !== 0) throw new Error(`bringing the bench's sandbox down: ${r.error?.message ?? r.stderr}`);
  });
  const sandbox = await sandboxUp(HOSTS + 1, { name: "bench-pulumi", dir: sandboxDir, firstIndex: FIRST_INDEX });
  const ips = sandbox.hosts.map((h) => h.ip);
  const counters = hostCounters(sandbox);
  const res = { pulumi: pulumiVersion, openssh: opensshVersion(), hosts: HOSTS, repeat };
  const stacks = [];
  try {
    res.instrumentCheck = await checkInstruments(sandbox, counters);
    log(`  instruments: one ssh by hand to ${ips[0]} counted ${JSON.stringify(res.instrumentCheck.counted)}, nothing elsewhere`);

    const cluster = await clusterStack(dir, env, sandbox, stacks, log);
    const trivial = await trivialStack(dir, env, stacks);
    res.setup = { clusterUpMs: round(cluster.upMs, 0), image: cluster.image };
    log(`  deployed the ${HOSTS}-host cluster in ${(cluster.upMs / 1000).toFixed(1)} s (untimed setup)`);

    const exported = await exportCluster(env, cluster.dir);
    const clusterfile = writeClusterfile(dir, exported.inputs, sandbox.ssh.pk);

    /** One measured command: wall time, CPU of pulumi and its children, host counters, probe records. */
    const once = async (fn) => {
      fs.writeFileSync(probeFile, "");
      const before = counters.read();
      const m = await measure(fn);
      const after = counters.read();
      const probe = readProbe(probeFile);
      return { wallMs: m.wallMs, childCpuMs: m.cpu.childrenMs, hosts: counters.delta(before, after), probe, stdout: m.value.stdout };
    };
    const pulumiIn =
      (cwd, ...args) =>
      () =>
        pulumiCmd(env, cwd)(...args);
    const setHosts = (n) => pulumiCmd(env, cluster.dir)("config", "set", "hosts", String(n));
    const contenders = [
      ["previewTrivial", pulumiIn(trivial.dir, "preview", "--json")],
      ["previewNoop", pulumiIn(cluster.dir, "preview", "--json")],
      ["previewAdd", pulumiIn(cluster.dir, "preview", "--json"), () => setHosts(HOSTS + 1), () => setHosts(HOSTS)],
      ["previewRemove", pulumiIn(cluster.dir, "preview", "--json"), () => setHosts(HOSTS - 1), () => setHosts(HOSTS)],
      ["sealantPlan", () => run(process.execPath, [CLI, "plan", "-q", "--json", "-f", clusterfile], { env })],
    ];
    const runs = Object.fromEntries([...contenders.map(([n]) => n), "upTrivial", "upNoop"].map((n) => [n, []]));
    for (let r = 0; r < repeat; r++) {
      for (let k = 0; k < contenders.length; k++) {
        const [name, fn, before, after] = contenders[(k + r) % contenders.length];
        if (before) await before();
        try {
          const m = await once(fn);
          runs[name].push(m);
          log(`  round ${r + 1}: ${name} ${(m.wallMs / 1000).toFixed(2)} s, ${sumOf(m.hosts, "tcp")} TCP connection(s) to the hosts`);
        } finally {
          if (after) await after();
        }
      }
      // No-op `up` writes the state (a new deployment), so it comes after the previews of the round.
      for (const [name, cwd] of [
        ["upTrivial", trivial.dir],
        ["upNoop", cluster.dir],
      ]) {
        const m = await once(pulumiIn(cwd, "up", "--yes", "--json"));
        runs[name].push(m);
        log(
          `  round ${r + 1}: ${name} ${(m.wallMs / 1000).toFixed(2)} s, ${sumOf(m.hosts, "tcp")} TCP connection(s), ${sumOf(m.hosts, "procs")} process(es) on the hosts`,
        );
      }
    }
    res.commands = Object.fromEntries(Object.entries(runs).map(([name, rs]) => [name, summarise(name, rs, ips, { median, round })]));
    const base = res.commands.previewTrivial.medianMs;
    for (const c of Object.values(res.commands)) c.vsTrivialPreview = round(c.medianMs / base);
    res.commands.upNoop.vsTrivialUp = round(res.commands.upNoop.medianMs / res.commands.upTrivial.medianMs);

    log(`  the provider's check + diff in this process, on the olds/news of the stack (median of ${IN_PROCESS_RUNS})`);
    res.inProcess = await providerInProcess(exported, home, ips, { median, round });
    log(`  the same in ${COLD_PROCESSES} new Node processes per change (what each pulumi command's new provider process pays)`);
    res.freshProcess = await providerFreshProcess(exported, home, ips, dir, { median, round });
  } finally {
    for (const s of stacks.reverse()) {
      await s.destroy().catch((err) => log(`  destroying ${s.name}: ${err.message}`));
    }
    counters.close();
    await sandboxDown(sandbox).catch((err) => log(`  sandbox down: ${err.message}`));
  }
  res.goals = goals(res);
  return res;
}

// ---------------------------------------------------------------- hosts' counters

function opensshVersion() {
  const r = spawnSync("ssh", ["-V"], { encoding: "utf8" });
  return (r.stderr || r.stdout || "unknown").trim().split(",")[0];
}

/**
 * TCP SYNs (nftables), sshd logins (its log) and processes started (PID namespace) per host.
 * Processes: a host's PID namespace numbers every new task, thread or process, in order, and
 * its ns_last_pid tells the last number given. The difference between two reads, less the
 * second read's own `cat`, is what started on the host in between; new threads of processes
 * that were already running (etcd's Go runtime adds some now and then; they stay alive) are
 * taken out: the live tasks numbered in between whose process is older than the first read.
 */
function hostCounters(sandbox) {
  const name = (h) => `h${h.index}`;
  const rules = [
    `table ip ${NFT_TABLE} {`,
    ...sandbox.hosts.map((h) => `  counter ${name(h)} { }`),
    "  chain input {",
    "    type filter hook input priority 0; policy accept;",
    ...sandbox.hosts.map((h) => `    ip daddr ${h.ip} tcp dport 22 tcp flags & (syn | ack) == syn counter name "${name(h)}"`),
    "  }",
    "}",
  ].join("\n");
  const drop = () => spawnSync("nft", ["delete", "table", "ip", NFT_TABLE], { stdio: "ignore" });
  drop(); // a table left by a killed run
  execFileSync("nft", ["-f", "-"], { input: rules });
  onExit(drop);
  const tcp = () => {
    const j = JSON.parse(execFileSync("nft", ["-j", "list", "counters", "table", "ip", NFT_TABLE], { encoding: "utf8" }));
    return new Map(j.nftables.filter((x) => x.counter).map((x) => [x.counter.name, x.counter.packets]));
  };
  const logins = (h) => (fs.readFileSync(path.join(h.dir, "host.log"), "utf8").match(/Accepted (publickey|password) for /g) ?? []).length;
  const lastPid = (h) => Number(execFileSync("nsenter", ["-t", String(h.pid), "-p", "-m", "cat", "/proc/sys/kernel/ns_last_pid"], { encoding: "utf8" }));
  const byNs = new Map(sandbox.hosts.map((h) => [fs.readlinkSync(`/proc/${h.pid}/ns/pid`), h.ip]));
  /** Per host: its live tasks, as numbered in its namespace (pid) with their process's number (tgid). */
  const liveTasks = () => {
    const out = Object.fromEntries(sandbox.hosts.map((h) => [h.ip, []]));
    for (const p of fs.readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
      try {
        const ip = byNs.get(fs.readlinkSync(`/proc/${p}/ns/pid`));
        if (!ip) continue;
        for (const t of fs.readdirSync(`/proc/${p}/task`)) {
          const status = fs.readFileSync(`/proc/${p}/task/${t}/status`, "utf8");
          const inner = (k) => Number(new RegExp(`^${k}:\\s*(.*)$`, "m").exec(status)[1].trim().split(/\s+/).pop());
          out[ip].push({ pid: inner("NSpid"), tgid: inner("NStgid") });
        }
      } catch {
        // gone meanwhile
      }
    }
    return out;
  };
  return {
    read: () => {
      const t = tcp();
      const last = Object.fromEntries(sandbox.hosts.map((h) => [h.ip, lastPid(h)]));
      const tasks = liveTasks();
      return Object.fromEntries(sandbox.hosts.map((h) => [h.ip, { tcp: t.get(name(h)) ?? 0, logins: logins(h), lastPid: last[h.ip], tasks: tasks[h.ip] }]));
    },
    /** Per host: connections, logins, processes started between two reads. */
    delta: (a, b) =>
      Object.fromEntries(
        Object.keys(a).map((ip) => {
          const [from, to] = [a[ip].lastPid, b[ip].lastPid];
          const newThreadsOfOld = b[ip].tasks.filter((t) => t.pid > from && t.pid <= to && t.tgid <= from).length;
          return [ip, { tcp: b[ip].tcp - a[ip].tcp, logins: b[ip].logins - a[ip].logins, procs: to - from - 1 - newThreadsOfOld }];
        }),
      ),
    close: drop,
  };
}

/** One `ssh` by hand to the first host: each counter must see it there, and nothing anywhere else. */
async function checkInstruments(sandbox, counters) {
  const before = counters.read();
  await run("ssh", sshArgs(sandbox, sandbox.hosts[0].ip, "true"));
  const d = counters.delta(before, counters.read());
  const [first, ...others] = sandbox.hosts.map((h) => d[h.ip]);
  if (first.tcp !== 1 || first.logins !== 1 || first.procs < 1 || others.some((o) => o.tcp || o.logins || o.procs)) {
    throw new Error(`the host counters do not count one ssh by hand: ${JSON.stringify(d)}`);
  }
  return { command: `ssh root@${sandbox.hosts[0].ip} true`, counted: first };
}

// ---------------------------------------------------------------- the two stacks

/** examples/pulumi-etcd copied to `dir/cluster`, configured for the sandbox, deployed (untimed). */
async function clusterStack(dir, env, sandbox, stacks, log) {
  const proj = path.join(dir, "cluster");
  fs.mkdirSync(proj, { recursive: true });
  for (const f of ["index.ts", "Pulumi.yaml", "package.json", "tsconfig.json"]) fs.copyFileSync(path.join(EXAMPLE, f), path.join(proj, f));
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(proj, "node_modules"));
  const p = pulumiCmd(env, proj);
  await p("stack", "init", "bench");
  const stack = { name: "examples/pulumi-etcd", dir: proj, destroy: () => destroy(p) };
  stacks.push(stack); // from here on, destroyed at the end whatever happens
  await p("config", "set", "firstHost", sandbox.hosts[0].ip);
  await p("config", "set", "hosts", String(HOSTS));
  await p("config", "set", "knownHosts", sandbox.ssh.knownHosts);
  await p("config", "set", "etcdContext", path.join(ROOT, "examples", "etcd"));
  await p("config", "set", "--secret", "sshPassword", sandbox.ssh.passwd);
  await p("config", "set", "--secret", "sshPrivateKey", "--", fs.readFileSync(sandbox.ssh.pk, "utf8"));
  log(`  pulumi up of examples/pulumi-etcd (ImageBuild of examples/etcd + Cluster on ${HOSTS} hosts)`);
  const t0 = performance.now();
  await p("up", "--yes", "--skip-preview");
  stack.upMs = performance.now() - t0;
  stack.image = (await p("stack", "output", "image")).stdout.trim();
  return stack;
}

/**
 * The baseline: a stack with one trivial dynamic resource (the smoke test of scripts/pulumi-cli.sh),
 * in TypeScript like the example, so both pay the same program compile.
 */
async function trivialStack(dir, env, stacks) {
  const proj = path.join(dir, "trivial");
  fs.mkdirSync(proj, { recursive: true });
  fs.writeFileSync(path.join(proj, "Pulumi.yaml"), "name: bench-trivial\nruntime:\n  name: nodejs\n  options:\n    typescript: true\nmain: index.ts\n");
  fs.writeFileSync(path.join(proj, "package.json"), '{ "name": "bench-trivial", "private": true, "main": "index.ts" }\n');
  fs.copyFileSync(path.join(EXAMPLE, "tsconfig.json"), path.join(proj, "tsconfig.json"));
  fs.writeFileSync(
    path.join(proj, "index.ts"),
    `import * as pulumi from "@pulumi/pulumi";
const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs) {
    return { id: \`trivial-\${inputs.name}\`, outs: { name: inputs.name, greeting: \`hello \${inputs.name}\` } };
  },
};
class Trivial extends pulumi.dynamic.Resource {
  declare readonly greeting: pulumi.Output<string>;
  constructor(name: string, args: { name: pulumi.Input<string> }, opts?: pulumi.CustomResourceOptions) {
    super(provider, name, { greeting: undefined, ...args }, opts);
  }
}
export const greeting = new Trivial("trivial", { name: "bench" }).greeting;
`,
  );
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(proj, "node_modules"));
  const p = pulumiCmd(env, proj);
  await p("stack", "init", "bench");
  const stack = { name: "trivial stack", dir: proj, destroy: () => destroy(p) };
  stacks.push(stack);
  await p("up", "--yes", "--skip-preview");
  return stack;
}

/** `pulumi --non-interactive ARGS` in `cwd` (the flag first: some commands take arguments after `--`). */
const pulumiCmd =
  (env, cwd) =>
  (...args) =>
    run("pulumi", ["--non-interactive", ...args], { env, cwd });

async function destroy(p) {
  await p("destroy", "--yes", "--skip-preview");
  await p("stack", "rm", "--yes");
}

/** The Cluster's state as the engine holds it (secrets in plaintext): id, inputs, outputs. */
async function exportCluster(env, cwd) {
  const { stdout } = await pulumiCmd(env, cwd)("stack", "export", "--show-secrets");
  const r = JSON.parse(stdout).deployment.resources.find((x) => x.type.endsWith("sealant:Cluster"));
  if (!r) throw new Error("the stack export holds no sealant:Cluster");
  const plain = (v) => {
    if (Array.isArray(v)) return v.map(plain);
    if (!v || typeof v !== "object") return v;
    if (SECRET_SIG in v) return plain(typeof v.plaintext === "string" ? JSON.parse(v.plaintext) : v.value);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  };
  return { id: r.id, inputs: plain(r.inputs), outputs: plain(r.outputs) };
}

/** The same cluster as a sealant Clusterfile (one host group per IP, as the provider builds it). */
function writeClusterfile(dir, inputs, keyFile) {
  const { specInputOf } = require("../dist/provider/impl/cluster-inputs");
  const { name, ssh, ...spec } = specInputOf(inputs);
  const { privateKey: _k, password: _p, ...sshRest } = ssh;
  const file = path.join(dir, "Clusterfile");
  fs.writeFileSync(
    file,
    JSON.stringify(
      { apiVersion: "sealant.io/v1", kind: "Cluster", metadata: { name }, spec: { ...spec, ssh: { ...sshRest, privateKeyPath: keyFile } } },
      null,
      2,
    ),
  );
  return file;
}

// ---------------------------------------------------------------- results

function readProbe(file) {
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

const sumOf = (perHost, k) => Object.values(perHost).reduce((s, h) => s + h[k], 0);

/** The Cluster's operation and the change summary, from `pulumi preview --json` or the event stream of `pulumi up --json`. */
function pulumiOutcome(stdout) {
  const ops = new Set();
  let changes;
  const objects = [];
  try {
    objects.push(JSON.parse(stdout));
  } catch {
    // `up --json`: the preview's document, then one event per line
    for (const line of stdout.split("\n")) if (line.startsWith('{"sequence"')) objects.push(JSON.parse(line));
  }
  for (const o of objects) {
    for (const s of o.steps ?? []) if (s.urn.endsWith("sealant:Cluster::etcd")) ops.add(s.op);
    const meta = o.resOutputsEvent?.metadata;
    if (meta?.urn.endsWith("sealant:Cluster::etcd")) ops.add(meta.op);
    if (o.changeSummary) changes = o.changeSummary;
    if (o.summaryEvent) changes = o.summaryEvent.resourceChanges;
  }
  // A resource that stays the same is not listed by `preview --json`.
  return { clusterOp: [...ops].join("/") || "same", changes };
}

function summarise(name, rs, ips, { median, round }) {
  const med = (xs) => round(median(xs), 1);
  const perRun = rs.map((m) => {
    const client = { connects: 0, commands: 0, kinds: {} };
    for (const e of m.probe.filter((x) => x.event === "ssh")) {
      if (e.op === "connect") client.connects++;
      else {
        client.commands++;
        const k = commandKind(e.command);
        client.kinds[k] = (client.kinds[k] ?? 0) + 1;
      }
    }
    const logins = sumOf(m.hosts, "logins");
    // Every connection pulumi's processes opened must show as a login on a host, and vice versa.
    if (client.connects !== logins) {
      throw new Error(`${name}: the hosts' sshd logged ${logins} logins, the provider opened ${client.connects} SSH connections`);
    }
    const calls = (mod, fn) => m.probe.filter((x) => x.event === "call" && x.module === mod && x.fn === fn);
    const one = (mod, fn) => calls(mod, fn)[0];
    return {
      wallMs: m.wallMs,
      childCpuMs: m.childCpuMs,
      tcp: sumOf(m.hosts, "tcp"),
      logins,
      procs: sumOf(m.hosts, "procs"),
      hostsTouched: ips.filter((ip) => m.hosts[ip].tcp || m.hosts[ip].procs).length,
      client,
      clusterCheckMs: one("cluster", "check")?.ms,
      clusterDiffMs: one("cluster", "diff")?.ms,
      clusterLoadMs: m.probe.find((x) => x.event === "load" && x.module === "cluster")?.ms,
      imageBuildCheckMs: one("image-build", "check")?.ms,
      diffChanges: one("cluster", "diff")?.changes,
      plan: one("cluster", "check")?.plan,
      updateMs: one("cluster", "update")?.ms,
      ...(name === "sealantPlan" ? { clusterOp: "-", summary: JSON.parse(m.stdout).summary } : pulumiOutcome(m.stdout)),
      ...(name.endsWith("Trivial") ? { clusterOp: "-" } : {}),
    };
  });
  const defined = (k) => perRun.map((x) => x[k]).filter((x) => x !== undefined);
  const medOf = (k) => (defined(k).length ? round(median(defined(k)), 2) : undefined);
  const last = perRun.at(-1);
  return {
    runsMs: perRun.map((x) => round(x.wallMs, 1)),
    medianMs: med(perRun.map((x) => x.wallMs)),
    childCpuMs: med(perRun.map((x) => x.childCpuMs)),
    // Host counters: the most any run saw (the goal is about every run).
    tcp: Math.max(...perRun.map((x) => x.tcp)),
    logins: Math.max(...perRun.map((x) => x.logins)),
    procs: Math.max(...perRun.map((x) => x.procs)),
    hostsTouched: Math.max(...perRun.map((x) => x.hostsTouched)),
    clientConnects: Math.max(...perRun.map((x) => x.client.connects)),
    clientCommands: Math.max(...perRun.map((x) => x.client.commands)),
    commandKinds: last.client.kinds,
    provider: {
      clusterCheckMs: medOf("clusterCheckMs"),
      clusterDiffMs: medOf("clusterDiffMs"),
      clusterCheckDiffMs: perRun.every((x) => x.clusterCheckMs !== undefined && x.clusterDiffMs !== undefined)
        ? round(median(perRun.map((x) => x.clusterCheckMs + x.clusterDiffMs)), 2)
        : undefined,
      clusterLoadMs: medOf("clusterLoadMs"),
      imageBuildCheckMs: medOf("imageBuildCheckMs"),
      clusterUpdateMs: medOf("updateMs"),
    },
    diffChanges: [...new Set(defined("diffChanges"))],
    plan: last.plan ?? last.summary?.join("; "),
    clusterOp: [...new Set(perRun.map((x) => x.clusterOp))].join(", "),
    changes: last.changes,
  };
}

/** The news the engine passes to check in the three previews: the old inputs (with `__provider`), without `plan`, and one host more or less. */
function newsOf(exported, ips) {
  const { plan: _plan, ...noop } = exported.inputs;
  return {
    noop,
    add: { ...noop, hosts: { ...noop.hosts, [ips[HOSTS]]: { roles: ["master"] } } },
    remove: { ...noop, hosts: Object.fromEntries(Object.entries(noop.hosts).filter(([ip]) => ip !== ips[HOSTS - 1])) },
  };
}

/** Run in a new Node process: load the provider module, then check + diff twice (the first call is the cold one). */
const COLD_SCRIPT = `"use strict";
const fs = require("node:fs");
const [impl, file, scenario] = process.argv.slice(2);
(async () => {
  const t0 = performance.now();
  const m = require(impl);
  const loadMs = performance.now() - t0;
  const { id, olds, outputs, news } = JSON.parse(fs.readFileSync(file, "utf8"))[scenario];
  const once = async () => {
    const a = performance.now();
    const c = await m.check(olds, news);
    const b = performance.now();
    await m.diff(id, outputs, c.inputs);
    return { checkMs: b - a, diffMs: performance.now() - b };
  };
  const first = await once();
  const second = await once();
  process.stdout.write(JSON.stringify({ loadMs, first, second }));
})();
`;

/**
 * The provider as each pulumi command meets it: a new process (the dynamic provider is started
 * anew by every command). Per scenario, COLD_PROCESSES processes: module load, first check +
 * diff, second check + diff; medians.
 */
async function providerFreshProcess(exported, home, ips, dir, { median, round }) {
  const file = path.join(dir, "cold-inputs.json");
  const script = path.join(dir, "cold-check.js");
  const scenarios = newsOf(exported, ips);
  const payload = Object.fromEntries(
    Object.entries(scenarios).map(([k, news]) => [k, { id: exported.id, olds: exported.inputs, outputs: exported.outputs, news }]),
  );
  fs.writeFileSync(file, JSON.stringify(payload), { mode: 0o600 }); // the sandbox's key and password: removed with bench/.work
  fs.writeFileSync(script, COLD_SCRIPT);
  const impl = path.join(ROOT, "dist", "provider", "impl", "cluster.js");
  const out = {};
  for (const name of Object.keys(scenarios)) {
    const rs = [];
    for (let i = 0; i < COLD_PROCESSES; i++) {
      const { stdout } = await run(process.execPath, [script, impl, file, name], { env: { ...process.env, SEALANT_HOME: home } });
      rs.push(JSON.parse(stdout));
    }
    const med = (f) => round(median(rs.map(f)), 2);
    out[name] = {
      loadMs: med((r) => r.loadMs),
      firstMs: med((r) => r.first.checkMs + r.first.diffMs),
      firstCheckMs: med((r) => r.first.checkMs),
      secondMs: med((r) => r.second.checkMs + r.second.diffMs),
      firstRunsMs: rs.map((r) => round(r.first.checkMs + r.first.diffMs, 1)),
    };
  }
  return out;
}

/**
 * check + diff of the Cluster provider in this process, on what the engine passes: check(old
 * inputs, new inputs) and diff(id, old outputs, checked inputs), the inputs carrying the
 * engine's `__provider`. Three untimed calls, then the median of IN_PROCESS_RUNS.
 */
async function providerInProcess(exported, home, ips, { median, round }) {
  const impl = require("../dist/provider/impl/cluster");
  const saved = process.env.SEALANT_HOME;
  process.env.SEALANT_HOME = home; // check reads the image from the program's store
  try {
    const out = {};
    const scenarios = newsOf(exported, ips);
    for (const [name, news] of Object.entries(scenarios)) {
      const once = async () => {
        const t0 = performance.now();
        const checked = await impl.check(exported.inputs, news);
        const t1 = performance.now();
        const d = await impl.diff(exported.id, exported.outputs, checked.inputs);
        const t2 = performance.now();
        return { checkMs: t1 - t0, diffMs: t2 - t1, plan: checked.inputs.plan, changes: d.changes };
      };
      for (let i = 0; i < 3; i++) await once();
      const rs = [];
      for (let i = 0; i < IN_PROCESS_RUNS; i++) rs.push(await once());
      // The same diff with the engine's `__provider` taken out of the news: tells whether that key alone makes a change.
      const checked = await impl.check(exported.inputs, news);
      const { __provider: _p, ...bare } = checked.inputs;
      const withoutProviderKey = (await impl.diff(exported.id, exported.outputs, bare)).changes;
      out[name] = {
        checkMs: round(median(rs.map((x) => x.checkMs)), 2),
        diffMs: round(median(rs.map((x) => x.diffMs)), 3),
        totalMs: round(median(rs.map((x) => x.checkMs + x.diffMs)), 2),
        maxMs: round(Math.max(...rs.map((x) => x.checkMs + x.diffMs)), 2),
        plan: rs[0].plan,
        changes: rs[0].changes,
        changesWithoutProviderKey: withoutProviderKey,
      };
    }
    return out;
  } finally {
    if (saved === undefined) delete process.env.SEALANT_HOME;
    else process.env.SEALANT_HOME = saved;
  }
}

function goals(res) {
  const c = res.commands;
  const g = [];
  const conns = (x) => `${x.tcp} TCP, ${x.logins} logins`;
  g.push({ goal: "preview, no-op: 0 SSH connections", measured: conns(c.previewNoop), met: c.previewNoop.tcp === 0 && c.previewNoop.logins === 0 });
  g.push({
    goal: "preview, 1 host added / removed: 0 SSH connections",
    measured: `${conns(c.previewAdd)} / ${conns(c.previewRemove)}`,
    met: [c.previewAdd, c.previewRemove].every((x) => x.tcp === 0 && x.logins === 0),
  });
  for (const [k, what] of [
    ["previewNoop", "no-op"],
    ["previewAdd", "1 host added"],
    ["previewRemove", "1 host removed"],
  ]) {
    const ms = c[k].provider.clusterCheckDiffMs;
    g.push({
      goal: `provider check + diff < 50 ms (preview, ${what})`,
      measured: ms === undefined ? "not called" : `${ms} ms (in process, warm: ${res.inProcess[k.replace("preview", "").toLowerCase()].totalMs} ms)`,
      met: ms !== undefined && ms < 50,
    });
  }
  g.push({ goal: "preview, no-op: Cluster unchanged", measured: c.previewNoop.clusterOp, met: c.previewNoop.clusterOp === "same" });
  const u = c.upNoop;
  g.push({
    goal: "up, no-op: no work on the hosts",
    measured: `${u.tcp} TCP, ${u.logins} logins, ${u.clientCommands} commands, ${u.procs} processes on ${u.hostsTouched} hosts`,
    met: u.tcp === 0 && u.procs === 0 && u.clientCommands === 0,
  });
  return g;
}

const secs = (ms) => `${(ms / 1000).toFixed(ms < 10_000 ? 3 : 2)} s`;

function report(res, table) {
  const c = res.commands;
  const runsS = (s) => s.runsMs.map((x) => (x / 1000).toFixed(2)).join(" ");
  const ms = (x) => (x === undefined ? "-" : x.toFixed(1));
  const rows = [["command", "median", "runs (s)", "vs trivial preview", "TCP/logins/procs on hosts", "Cluster check+diff ms", "note"]];
  const row = (label, s, note) => {
    const p = s.provider;
    const cd = p.clusterCheckDiffMs === undefined ? "-" : `${ms(p.clusterCheckDiffMs)} (${ms(p.clusterCheckMs)}+${ms(p.clusterDiffMs)})`;
    rows.push([label, secs(s.medianMs), runsS(s), `${s.vsTrivialPreview}x`, `${s.tcp}/${s.logins}/${s.procs}`, cd, note]);
  };
  const loads = (s) =>
    s.provider.clusterLoadMs === undefined
      ? ""
      : `; provider module load ${ms(s.provider.clusterLoadMs)} ms, ImageBuild check ${ms(s.provider.imageBuildCheckMs)} ms`;
  row("preview: trivial stack (baseline)", c.previewTrivial, "1 dynamic resource");
  row(
    `preview: ${HOSTS}-host cluster, no-op`,
    c.previewNoop,
    `Cluster: ${c.previewNoop.clusterOp}, diff changes=${c.previewNoop.diffChanges.join("/")}; plan "${c.previewNoop.plan}"${loads(c.previewNoop)}`,
  );
  row("preview: hosts 10 -> 11", c.previewAdd, `Cluster: ${c.previewAdd.clusterOp}; plan "${c.previewAdd.plan}"${loads(c.previewAdd)}`);
  row("preview: hosts 10 -> 9", c.previewRemove, `Cluster: ${c.previewRemove.clusterOp}; plan "${c.previewRemove.plan}"${loads(c.previewRemove)}`);
  row("sealant plan, same cluster", c.sealantPlan, `connects: ${c.sealantPlan.clientCommands} command(s) (${kinds(c.sealantPlan)}); "${c.sealantPlan.plan}"`);
  row("up: trivial stack, no-op (baseline)", c.upTrivial, "with its preview");
  row(
    `up: ${HOSTS}-host cluster, no-op`,
    c.upNoop,
    `${c.upNoop.vsTrivialUp}x trivial up; Cluster: ${c.upNoop.clusterOp}; ${c.upNoop.clientConnects} connections, ${c.upNoop.clientCommands} commands (${kinds(c.upNoop)}) on ${c.upNoop.hostsTouched} hosts; ${c.upNoop.provider.clusterUpdateMs === undefined ? "provider update not called" : `provider update ${ms(c.upNoop.provider.clusterUpdateMs)} ms`}`,
  );

  const ip = res.inProcess;
  const inRows = [
    ["Cluster provider in process (warm)", "check ms", "diff ms", "check+diff ms", "max of 21", "diff: changes", "without __provider in news", "plan"],
  ];
  for (const [k, label] of [
    ["noop", "no-op"],
    ["add", "1 host added"],
    ["remove", "1 host removed"],
  ]) {
    const x = ip[k];
    inRows.push([label, x.checkMs, x.diffMs, x.totalMs, x.maxMs, String(x.changes), String(x.changesWithoutProviderKey), x.plan]);
  }
  const fresh = res.freshProcess;
  const freshRows = [
    [
      "Cluster provider in a new process",
      "module load ms",
      "1st check+diff ms",
      "of which check",
      "2nd check+diff ms",
      `1st, each of ${COLD_PROCESSES} processes (ms)`,
    ],
  ];
  for (const [k, label] of [
    ["noop", "no-op"],
    ["add", "1 host added"],
    ["remove", "1 host removed"],
  ]) {
    const x = fresh[k];
    freshRows.push([label, x.loadMs, x.firstMs, x.firstCheckMs, x.secondMs, x.firstRunsMs.join(" ")]);
  }
  const goalRows = [["goal", "measured", "met"], ...res.goals.map((g) => [g.goal, g.measured, g.met ? "yes" : "NO"])];
  const head = `Instruments checked with \`${res.instrumentCheck.command}\`: ${res.instrumentCheck.counted.tcp} TCP, ${res.instrumentCheck.counted.logins} login, ${res.instrumentCheck.counted.procs} processes on that host, 0 elsewhere.`;
  return `${head}\n\n${table(rows)}\n\n${table(freshRows)}\n\n${table(inRows)}\n\n${table(goalRows)}\n`;
}

const kinds = (s) =>
  Object.entries(s.commandKinds)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ") || "none";

module.exports = { benchPulumi, report };
