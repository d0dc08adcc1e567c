"use strict";
// Process accounting inside sandbox hosts' PID namespaces (Debian's acct: accton, dump-acct), for
// the shaped bench's BENCH_SHAPED_ACCT=1: CPU seconds and process counts per command on each host.
const { execFileSync } = require("node:child_process");

function sh(cmd, args) {
  return execFileSync(cmd, args, { encoding: "utf8" });
}

const ACCT_FILE = "/tmp/sealant-bench-acct";

/** Process accounting on (or off) in every host's PID namespace: records of only that host's processes, in its own /tmp. */
function accounting(sandbox, on) {
  for (const h of sandbox.hosts) {
    const inHost = ["-t", String(h.pid), "-m", "-p", "--"];
    if (on) sh("nsenter", [...inHost, "sh", "-c", `rm -f ${ACCT_FILE}; touch ${ACCT_FILE}; accton ${ACCT_FILE} > /dev/null`]);
    else sh("nsenter", [...inHost, "accton", "off"]);
  }
}

/**
 * CPU seconds and processes per command on each host, from its accounting file (dump-acct: user
 * and system time in ticks of 1/100 s, so a process under 10 ms counts as none: the calls show
 * what the seconds miss).
 */
function accounted(sandbox, ips) {
  return ips.map((_, i) => {
    const file = `/proc/${sandbox.hosts[i].pid}/root${ACCT_FILE}`;
    const byCommand = {};
    for (const line of sh("dump-acct", [file]).split("\n")) {
      const f = line.split("|").map((x) => x.trim());
      if (f.length < 4) continue;
      const c = (byCommand[f[0]] ??= { secs: 0, calls: 0 });
      c.secs += (Number(f[2]) + Number(f[3])) / 100;
      c.calls += 1;
    }
    return byCommand;
  });
}

/** Per part in the tree: each command's CPU seconds, averaged over the hosts in that part. */
function accountedByPart(perHost, ips, children) {
  const parts = { seed: [0], relaying: [], leaf: [] };
  ips.forEach((ip, i) => i > 0 && parts[(children.get(ip) ?? 0) > 0 ? "relaying" : "leaf"].push(i));
  const out = {};
  for (const [part, hosts] of Object.entries(parts)) {
    if (!hosts.length) continue;
    const sum = {};
    for (const i of hosts)
      for (const [cmd, c] of Object.entries(perHost[i])) {
        const t = (sum[cmd] ??= { secs: 0, calls: 0 });
        t.secs += c.secs;
        t.calls += c.calls;
      }
    const per = (x) => Math.round((x / hosts.length) * 1000) / 1000;
    out[part] = Object.fromEntries(
      Object.entries(sum)
        .map(([cmd, c]) => [cmd, { secs: per(c.secs), calls: per(c.calls) }])
        .sort((a, b) => b[1].secs - a[1].secs || b[1].calls - a[1].calls),
    );
  }
  return out;
}

module.exports = { accounting, accounted, accountedByPart };
