/**
 * Kubernetes-mode sandbox hosts, for real: network, cgroup, IPC namespaces, real dirs, the
 * kubelet's sysctls, the systemctl stand-in with containerd, a reboot, and a teardown that
 * leaves nothing in this machine's own namespaces.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostExec, sandboxAdd, sandboxDown, sandboxGet, sandboxUp, startHost, stopHost, type Sandbox, type SandboxHost } from "../../../src/engine/sandbox";
import { eventually, processesIn } from "./support";
import { onHost, runOnHost } from "../../support/hosts";

const CLI = process.env.SEALANT_TEST_CLI ?? resolve(__dirname, "../../../dist/cli/main.js");

function sh(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(cmd, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: stdout.toString(), stderr: stderr.toString() }),
    );
  });
}

/** What this machine's own namespaces hold that a sandbox could leave behind. */
interface MachineState {
  netns: string[];
  links: string[];
  mounts: string[];
  iptables: string;
  panic: string;
  ipForward: string;
}

async function machineState(): Promise<MachineState> {
  const links = (await sh("ip", ["-o", "link", "show"])).stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(": ")[1]!.replace(/@.*$/, ""))
    .sort();
  const mounts = (await readFile("/proc/self/mountinfo", "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const f = l.split(" ");
      return `${f[4]} ${l.split(" - ")[1]}`;
    })
    .sort();
  return {
    netns: (await sh("ip", ["netns", "list"])).stdout.split("\n").filter(Boolean).sort(),
    links,
    mounts,
    // iptables-save's own "# Generated/Completed ... on <date>" lines change every run
    iptables: (await sh("iptables-save", [])).stdout.replace(/^#.*\n/gm, ""),
    panic: await readFile("/proc/sys/kernel/panic", "utf8"),
    ipForward: await readFile("/proc/sys/net/ipv4/ip_forward", "utf8"),
  };
}

/** Runs a shell command in a host without ssh; throws unless it exits 0. */
async function inHost(sb: Sandbox, host: SandboxHost | string, command: string): Promise<string> {
  const r = await hostExec(sb, host, ["/bin/sh", "-c", command]);
  if (r.code !== 0) throw new Error(`${command}: exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Memory of a host: RSS summed over its processes, and its memory cgroup's usage (page cache included). */
async function memoryOf(sb: Sandbox, h: SandboxHost): Promise<{ rssMiB: number; cgroupMiB: number; processes: number }> {
  const ns = await readlink(`/proc/${h.pid}/ns/pid`);
  let rss = 0;
  const pids = await processesIn([ns]);
  for (const pid of pids) {
    const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8").catch(() => ""));
    rss += m ? Number(m[1]) : 0;
  }
  const memDir = (await sandboxGet(sb.dir))!.hosts.find((x) => x.index === h.index)!.cgroups!.find((d) => d.includes("/memory/"))!;
  const usage = Number(await readFile(join(memDir, "memory.usage_in_bytes"), "utf8"));
  return { rssMiB: Math.round(rss / 102.4) / 10, cgroupMiB: Math.round(usage / 104857.6) / 10, processes: pids.length };
}

const TICK_UNIT = `[Unit]
Description=sealant test ticker

[Service]
Environment=GREETING=hello
ExecStart=/bin/sh -c 'echo original; exec sleep 1000'
Restart=always
RestartSec=0.2

[Install]
WantedBy=multi-user.target
`;
const TICK_DROPIN = `[Service]
EnvironmentFile=/etc/default/tick
EnvironmentFile=-/etc/default/tick-missing
ExecStart=
ExecStart=/bin/sh -c 'echo "tick $GREETING $WHO"; exec sleep 1000'
`;
const CONTAINERD_UNIT = `[Unit]
Description=containerd (sealant test unit)
After=network.target

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/bin/containerd --config /etc/containerd/config.toml
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
`;
const CONTAINERD_CONFIG = `version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "/run/containerd/containerd.sock"
`;

let parent: string;
let dir: string;
let sb: Sandbox;
let before: MachineState;
let upMs: number;
const hostNamespaces: string[] = [];
/** The machine-side veths of the other sandboxes this file starts (all must be gone at the end). */
const otherVeths: string[] = ["sealant-0ae7c8"];

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), "sealant-kube-test-"));
  dir = join(parent, "kube");
  before = await machineState();
  const started = Date.now();
  sb = await sandboxUp(2, { name: "kube-test", dir, kubernetes: true });
  upMs = Date.now() - started;
  for (const h of sb.hosts) hostNamespaces.push(await readlink(`/proc/${h.pid}/ns/pid`));
});

afterAll(async () => {
  await sandboxDown(dir).catch(() => undefined);
  await rm(parent, { recursive: true, force: true });
});

describe("Kubernetes-mode sandbox hosts", () => {
  it("GIVEN 2 requested hosts WHEN up returns THEN each answers ssh on its node address with eth0 holding it, and an init reaping as PID 1", async () => {
    const k = sb.kubernetes!;
    expect(k.subnet).toMatch(/^10\.231\.\d+\.0\/24$/);
    const prefix = k.subnet.replace(/0\/24$/, "");
    expect([k.hubIp, k.rootIp]).toEqual([`${prefix}1`, `${prefix}254`]);
    expect(sb.hosts.map((h) => [h.hostname, h.ip, h.running, h.netns])).toEqual([
      ["host1", `${prefix}11`, true, "sealant-kube-test-host1"],
      ["host2", `${prefix}12`, true, "sealant-kube-test-host2"],
    ]);
    for (const h of sb.hosts) {
      const out = await onHost(sb, h, "hostname; ip -o -4 addr show | awk '{print $2, $4}'; cat /proc/1/comm; ip route show default");
      expect(out).toBe(`${h.hostname}\nlo 127.0.0.1/8\neth0 ${h.ip}/24\nsealant-init\ndefault via ${k.hubIp} dev eth0`);
    }
    // the machine's side: one veth with the connected /24 only
    expect((await sh("ip", ["-4", "-o", "addr", "show", "dev", k.rootVeth])).stdout).toContain(`inet ${k.rootIp}/24`);
    expect((await sh("ip", ["-4", "route", "show", "dev", k.rootVeth])).stdout.trim()).toBe(`${k.subnet} proto kernel scope link src ${k.rootIp}`);
    console.log(`kube sandbox: 2 hosts up in ${upMs} ms`);
  });

  it("GIVEN orphans inside a host WHEN they exit THEN its init reaps them (no zombies)", async () => {
    const h1 = sb.hosts[0]!;
    // each sleep's parent exits at once: the sleeps are re-parented to the host's PID 1
    await onHost(sb, h1, "for i in 1 2 3; do sh -c 'sleep 0.2 & exit 0'; done");
    await eventually(async () => ((await onHost(sb, h1, "pgrep -x sleep || true")) === "" ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    expect(await onHost(sb, h1, "ps -eo stat=,comm= | awk '$1 ~ /^Z/' | wc -l")).toBe("0");
  });

  it("GIVEN the hosts WHEN they connect THEN they reach each other on the node addresses, but nothing outside the sandbox", async () => {
    const [h1, h2] = sb.hosts as [SandboxHost, SandboxHost];
    expect(await onHost(sb, h1, `timeout 3 bash -c 'exec 3<>/dev/tcp/${h2.ip}/22; head -c 4 <&3'`)).toBe("SSH-");
    expect(await inHost(sb, h2, `timeout 3 bash -c 'exec 3<>/dev/tcp/${h1.ip}/22; head -c 4 <&3'`)).toBe("SSH-");
    const machineIps = (await sh("ip", ["-4", "-o", "addr", "show"])).stdout
      .split("\n")
      .map((l) => /inet (\d+\.\d+\.\d+\.\d+)\//.exec(l)?.[1])
      .filter((a): a is string => !!a && !a.startsWith("127.") && a !== sb.kubernetes!.rootIp);
    const targets = ["1.1.1.1:80", "10.0.0.1:80", ...machineIps.map((a) => `${a}:22`)];
    const script = targets.map((t) => `(timeout 2 bash -c 'exec 3<>/dev/tcp/${t.replace(":", "/")}' 2> /dev/null; echo "${t} $?") &`).join("\n");
    const started = Date.now();
    const out = await inHost(sb, h1, `${script}\nwait`);
    const results = Object.fromEntries(out.split("\n").map((l) => l.split(" ") as [string, string]));
    // 124: the connect hung until the timeout (the hub drops it); 1 would be refused/unreachable — never 0
    for (const t of targets) expect(results[t], t).not.toBe("0");
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("GIVEN a host WHEN its cgroups are read THEN it sees its own hierarchy, rooted at its per-host cgroup on the machine", async () => {
    const [h1, h2] = sb.hosts as [SandboxHost, SandboxHost];
    const lines = (await onHost(sb, h1, "cat /proc/1/cgroup")).split("\n");
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(l).toMatch(/:\/$/);
    expect((await onHost(sb, h1, "ls /sys/fs/cgroup")).split("\n")).toEqual(expect.arrayContaining(["cpu", "memory", "pids", "systemd"]));
    const memDir = h1.cgroups!.find((d) => d.includes("/memory/"))!;
    expect(memDir).toMatch(/\/sealant-kube-test-host1$/);
    await onHost(sb, h1, "mkdir /sys/fs/cgroup/memory/kubepods-probe");
    expect(existsSync(join(memDir, "kubepods-probe"))).toBe(true);
    expect((await runOnHost(sb, h2, "test -e /sys/fs/cgroup/memory/kubepods-probe")).code).toBe(1);
    await onHost(sb, h1, "rmdir /sys/fs/cgroup/memory/kubepods-probe");
    // the host's PID 1 is in its own cgroup, as the machine sees it
    const pidsDir = h1.cgroups!.find((d) => d.includes("/pids/"))!;
    expect((await readFile(join(pidsDir, "cgroup.procs"), "utf8")).split("\n")).toContain(String(h1.pid));
    // a fresh sysfs: /sys/class/net shows the host's own interfaces
    expect((await onHost(sb, h1, "ls /sys/class/net")).split("\n").sort()).toEqual(["eth0", "lo"]);
    // its own IPC namespace, and the root mount is shared (mount propagation for kubelet volumes)
    expect(await readlink(`/proc/${h1.pid}/ns/ipc`)).not.toBe(await readlink("/proc/self/ns/ipc"));
    expect(await onHost(sb, h1, "findmnt -n -o PROPAGATION /")).toBe("shared");
  });

  it("GIVEN the kubelet's global sysctls WHEN read inside a host THEN they hold the wanted values while the machine's are unchanged", async () => {
    const [h1] = sb.hosts as [SandboxHost];
    expect(await onHost(sb, h1, "cat /proc/sys/kernel/panic /proc/sys/kernel/panic_on_oops /proc/sys/vm/overcommit_memory /proc/sys/net/ipv4/ip_forward")).toBe(
      "10\n1\n1\n1",
    );
    const bridged = await runOnHost(sb, h1, "cat /proc/sys/net/bridge/bridge-nf-call-iptables");
    if (bridged.code === 0) expect(bridged.stdout.trim()).toBe("1");
    else expect(sb.kubernetes!.warnings.join("\n")).toMatch(/br_netfilter/);
    // a write inside lands in the host's own file
    await onHost(sb, h1, "echo 5 > /proc/sys/kernel/panic && test $(cat /proc/sys/kernel/panic) = 5 && echo 10 > /proc/sys/kernel/panic");
    expect(await readFile("/proc/sys/kernel/panic", "utf8")).toBe(before.panic);
    expect(await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).toBe(before.ipForward);
    // firewall rules written in a host stay in its network namespace
    await onHost(sb, h1, "iptables -w -A INPUT -s 10.9.9.9 -j DROP && iptables-save | grep -q 10.9.9.9");
    expect((await sh("iptables-save", [])).stdout.replace(/^#.*\n/gm, "")).toBe(before.iptables);
  });

  it("GIVEN a unit with Restart=always, a drop-in replacing ExecStart and an EnvironmentFile WHEN started and killed THEN it runs the drop-in's command with both environments and comes back", async () => {
    const h2 = sb.hosts[1]!;
    await onHost(sb, h2, "mkdir -p /etc/systemd/system/tick.service.d && cat > /etc/systemd/system/tick.service", { input: TICK_UNIT });
    await onHost(sb, h2, "cat > /etc/systemd/system/tick.service.d/override.conf", { input: TICK_DROPIN });
    await onHost(sb, h2, `echo 'WHO="the world"' > /etc/default/tick`);
    expect((await runOnHost(sb, h2, "systemctl is-enabled tick")).stdout.trim()).toBe("disabled");
    const enabled = await runOnHost(sb, h2, "systemctl daemon-reload && systemctl enable --now tick");
    expect(enabled.code).toBe(0);
    expect(enabled.stderr).toContain("Created symlink /etc/systemd/system/multi-user.target.wants/tick.service → /etc/systemd/system/tick.service.");
    expect(await onHost(sb, h2, "systemctl is-active tick; systemctl is-enabled tick")).toBe("active\nenabled");
    const log = () => onHost(sb, h2, "cat /var/log/units/tick.log");
    await eventually(async () => ((await log()).includes("tick hello the world") ? true : undefined));
    expect(await log()).not.toContain("original");
    const firstPid = await onHost(sb, h2, "systemctl show -p MainPID --value tick");
    expect(Number(firstPid)).toBeGreaterThan(1);
    await onHost(sb, h2, `kill -9 ${firstPid}`);
    const secondPid = await eventually(async () => {
      const p = await onHost(sb, h2, "systemctl show -p MainPID --value tick");
      return p !== firstPid && p !== "0" ? p : undefined;
    });
    expect(await onHost(sb, h2, `systemctl show -p NRestarts -p ActiveState tick; cat /proc/${secondPid}/cmdline | tr '\\0' ' '`)).toBe(
      "ActiveState=active\nNRestarts=1\nsleep 1000",
    );
    expect(await log()).toMatch(/Main process exited, code=killed, signal=KILL\n.*restarting in 0\.2s/);
    const status = await onHost(sb, h2, "systemctl status tick");
    expect(status).toMatch(/Drop-In: \/etc\/systemd\/system\/tick\.service\.d\n\s+└─override\.conf\n\s+Active: active \(running\)/);
    // kubeadm's checks: an unknown unit's status, is-active of a stopped one
    const unknown = await runOnHost(sb, h2, "systemctl status firewalld");
    expect([unknown.code, unknown.stderr.trim()]).toEqual([4, "Unit firewalld.service could not be found."]);
    await onHost(sb, h2, "systemctl stop tick");
    const stopped = await runOnHost(sb, h2, "systemctl is-active tick");
    expect([stopped.code, stopped.stdout.trim()]).toEqual([3, "inactive"]);
    expect((await runOnHost(sb, h2, "pgrep -f 'sleep 1000'")).code).toBe(1);
    await onHost(sb, h2, "systemctl start tick");
  });

  it("GIVEN Debian's containerd WHEN started as a unit from a unit file written here THEN ctr talks to it, with overlay snapshots on the real /var/lib/containerd", async () => {
    const h1 = sb.hosts[0]!;
    await onHost(sb, h1, "cat > /etc/systemd/system/containerd.service", { input: CONTAINERD_UNIT });
    await onHost(sb, h1, "mkdir -p /etc/containerd && cat > /etc/containerd/config.toml", { input: CONTAINERD_CONFIG });
    const started = Date.now();
    await onHost(sb, h1, "systemctl enable --now containerd");
    const version = await eventually(async () => {
      const r = await runOnHost(sb, h1, "ctr version");
      return r.code === 0 ? r.stdout : undefined;
    }, 15_000);
    console.log(`containerd answering ${Date.now() - started} ms after systemctl enable --now`);
    expect(version).toMatch(/Server:\n\s+Version:\s+\S+/);
    expect(await onHost(sb, h1, "ctr plugins ls | awk '$2 == \"overlayfs\" {print $4}'")).toBe("ok");
    expect(await onHost(sb, h1, "findmnt -n -o TARGET /var/lib/containerd")).toBe("/var/lib/containerd");
    const mem = await memoryOf(sb, h1);
    console.log(`host1 with containerd: ${mem.processes} processes, RSS ${mem.rssMiB} MiB, memory cgroup ${mem.cgroupMiB} MiB`);
  });

  it("GIVEN enabled units WHEN a host is stopped and started THEN it boots them again, keeps its disk and host key, and forgets /tmp", async () => {
    const h2 = sb.hosts[1]!;
    const idle = await memoryOf(sb, h2);
    console.log(`host2 (sshd, tick): ${idle.processes} processes, RSS ${idle.rssMiB} MiB, memory cgroup ${idle.cgroupMiB} MiB`);
    await onHost(sb, h2, "echo kept > /root/marker; echo gone > /tmp/marker");
    const ticks = Number(await onHost(sb, h2, "grep -c 'tick hello the world' /var/log/units/tick.log"));
    let t = Date.now();
    const down = await stopHost(dir, "host2");
    const stopMs = Date.now() - t;
    expect(down.running).toBe(false);
    expect((await sh("ip", ["netns", "list"])).stdout).not.toContain("sealant-kube-test-host2");
    t = Date.now();
    const up = await startHost(dir, h2.ip);
    const startMs = Date.now() - t;
    expect(up.running).toBe(true);
    const again = (await sandboxGet(dir))!;
    await eventually(async () => ((await runOnHost(again, h2.ip, "systemctl is-active tick")).stdout.trim() === "active" ? true : undefined), 10_000);
    expect(await onHost(again, h2.ip, "cat /root/marker; test -e /tmp/marker || echo no-tmp; grep -c 'tick hello the world' /var/log/units/tick.log")).toBe(
      `kept\nno-tmp\n${ticks + 1}`,
    );

    t = Date.now();
    await stopHost(dir, "host1");
    const stop1 = Date.now() - t;
    t = Date.now();
    await startHost(dir, "host1");
    const start1 = Date.now() - t;
    sb = (await sandboxGet(dir))!;
    await eventually(async () => ((await runOnHost(sb, "host1", "ctr version")).code === 0 ? true : undefined), 15_000);
    console.log(`stop/start: host2 ${stopMs}/${startMs} ms, host1 (containerd) ${stop1}/${start1} ms`);
  });

  it("GIVEN a second Kubernetes sandbox started by the CLI WHEN it is up THEN it has its own /24 and cannot reach the first sandbox's hosts", async () => {
    const home = await mkdtemp(join(tmpdir(), "sealant-kube-cli-"));
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
        const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, SEALANT_HOME: home }, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("close", (code) => done({ code: code ?? -1, stdout, stderr }));
      });
    try {
      const r = await run(["sandbox", "up", "1", "--kubernetes", "--subnet", "10.231.200.0/24", "--name", "kube-cli", "--json"]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.kubernetes).toMatchObject({ subnet: "10.231.200.0/24", hubIp: "10.231.200.1", rootIp: "10.231.200.254", rootVeth: "sealant-0ae7c8" });
      expect(out.hosts).toEqual([{ ip: "10.231.200.11", hostname: "host1", running: true, netns: "sealant-kube-cli-host1" }]);
      const other = (await sandboxGet(join(home, "sandbox", "kube-cli")))!;
      const probe = await runOnHost(other, "host1", `timeout 2 bash -c 'exec 3<>/dev/tcp/${sb.hosts[0]!.ip}/22'; echo $?`);
      expect(probe.stdout.trim()).not.toBe("0");
      expect((await run(["sandbox", "ls"])).stdout).toMatch(/kube-cli \(kubernetes\)\s+1\s+1\s+10\.231\.200\.11\s/);
      const down = await run(["sandbox", "down", "--name", "kube-cli"]);
      expect(down.code).toBe(0);
      expect((await sh("ip", ["netns", "list"])).stdout).not.toContain("kube-cli");
    } finally {
      await run(["sandbox", "down", "--name", "kube-cli"]);
      await rm(home, { recursive: true, force: true });
    }
  });

  it("GIVEN the running sandbox WHEN a host is added THEN it joins the bridge as host3 at .13 and the others reach it", async () => {
    const grown = await sandboxAdd(dir, 1);
    const h3 = grown.hosts[2]!;
    expect([h3.hostname, h3.ip, h3.netns, h3.running]).toEqual(["host3", sb.kubernetes!.subnet.replace(/0\/24$/, "13"), "sealant-kube-test-host3", true]);
    expect(h3.realDirs).toEqual(sb.hosts[0]!.realDirs);
    expect(await onHost(grown, "host1", `timeout 3 bash -c 'exec 3<>/dev/tcp/${h3.ip}/22; head -c 4 <&3'`)).toBe("SSH-");
    hostNamespaces.push(await readlink(`/proc/${h3.pid}/ns/pid`));
    sb = grown;
  });

  it("GIVEN two more sandboxes started at the same moment WHEN both are up THEN each has reserved its own /24", async () => {
    const dirs = [join(parent, "race-a"), join(parent, "race-b")];
    try {
      const both = await Promise.all(dirs.map((d, i) => sandboxUp(1, { name: `kube-race-${i}`, dir: d, kubernetes: true })));
      otherVeths.push(...both.map((b) => b.kubernetes!.rootVeth));
      const subnets = [sb.kubernetes!.subnet, ...both.map((b) => b.kubernetes!.subnet)];
      expect(new Set(subnets).size).toBe(3);
      expect(await Promise.all(both.map((b) => onHost(b, b.hosts[0]!, "hostname")))).toEqual(["host1", "host1"]);
    } finally {
      await Promise.all(dirs.map((d) => sandboxDown(d).catch(() => undefined)));
    }
  });

  it("GIVEN the sandbox WHEN down THEN no process, mount, cgroup, netns, veth or firewall rule of it remains on the machine", async () => {
    const cgroups = (await sandboxGet(dir))!.hosts.flatMap((h) => h.cgroups ?? []);
    expect(cgroups.length).toBeGreaterThan(0);
    const t = Date.now();
    expect(await sandboxDown(dir)).toBe(true);
    console.log(`down in ${Date.now() - t} ms`);
    const after = await machineState();
    // Other sandboxes (other people's, on this shared machine) may come and go meanwhile: compare
    // what is new since the start, and nothing of it may be ours (this file's sandboxes are all "kube-*").
    const added = (a: string[], b: string[]) => a.filter((x) => !b.includes(x));
    const ours = (x: string) => x.includes("sealant-kube-") || x.includes(parent) || [sb.kubernetes!.rootVeth, ...otherVeths].some((v) => x.includes(v));
    expect(after.netns.filter(ours)).toEqual([]);
    expect(added(after.netns, before.netns).filter((n) => !/^sealant-\S+-(hub|host\d+)/.test(n))).toEqual([]);
    expect(after.links.filter(ours)).toEqual([]);
    expect(added(after.links, before.links).filter((l) => !/^sealant-[0-9a-f]{6}$/.test(l))).toEqual([]);
    expect(after.mounts.filter(ours)).toEqual([]);
    expect(added(after.mounts, before.mounts).filter((m) => !m.startsWith("/run/netns/sealant-"))).toEqual([]);
    expect(after.iptables).toBe(before.iptables);
    expect(after.panic).toBe(before.panic);
    for (const d of cgroups) expect(existsSync(d), d).toBe(false);
    expect(await processesIn(hostNamespaces)).toEqual([]);
    // no zombie of ours left behind either (the launchers were this process's children)
    const zombies: string[] = [];
    for (const p of (await readdir("/proc")).filter((e) => /^\d+$/.test(e))) {
      const stat = await readFile(`/proc/${p}/stat`, "utf8").catch(() => "");
      if (/\((sealant-init|unshare|nsenter)\) Z /.test(stat) && (await readFile(`/proc/${p}/cmdline`, "utf8").catch(() => "")) === "")
        zombies.push(stat.split(" ").slice(0, 4).join(" "));
    }
    expect(zombies.filter((z) => z.includes("sealant-init"))).toEqual([]);
    if (zombies.length) console.log(`zombies on the machine (launchers of CLI-started sandboxes, orphaned to the machine's init): ${zombies.join("; ")}`);
    expect(existsSync(dir)).toBe(false);
  });
});
