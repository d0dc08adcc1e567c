import type { ApplyResult, ClusterEvent } from "../engine/cluster";
import { formatBytes } from "./format";
import type { Progress } from "./progress";

/* How the cluster commands show what happens on the hosts: events as lines, and summaries. */

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

interface Transfer {
  bytes: number;
  total: number;
  mibPerSec: number;
  /** When a line for it was last written (non-terminal output). */
  printed: number;
}

/** How often a transfer's progress is written as a line when stderr is not a terminal. */
const LOG_EVERY_MS = 2000;

/**
 * ClusterEvents for people, on stderr: a line per phase, per step start / done / failed with
 * host and duration, per-host transfer progress (a status line on a terminal, a line every
 * few seconds in logs), warnings, and (verbose) every line remote commands print.
 */
export class ClusterPrinter {
  private readonly transfers = new Map<string, Transfer>();
  private readonly tty = process.stderr.isTTY === true;
  private width: number;

  constructor(
    private readonly progress: Progress,
    private readonly verbose: boolean,
    /** The hosts' IPs, to align the lines. */
    ips: readonly string[] = [],
  ) {
    this.width = Math.max(0, ...ips.map((ip) => ip.length));
  }

  on = (e: ClusterEvent): void => {
    switch (e.type) {
      case "phase":
        this.progress.line(`==> ${e.title} (${e.steps} step${e.steps === 1 ? "" : "s"})`);
        break;
      case "step":
        this.step(e);
        break;
      case "progress":
        this.transfer(e);
        break;
      case "output":
        if (this.verbose) this.progress.line(`    ${e.host}: ${e.line}`);
        break;
      case "warning":
        this.progress.line(`warning: ${e.host ? `${e.host}: ` : ""}${e.text}`);
        break;
      case "info":
        this.progress.line(e.text);
        break;
    }
  };

  private host(ip: string): string {
    this.width = Math.max(this.width, ip.length);
    return ip.padEnd(this.width);
  }

  private step(e: Extract<ClusterEvent, { type: "step" }>): void {
    const at = `  ${this.host(e.host)}  `;
    if (e.status === "start") {
      this.progress.line(`${at}start   ${e.description}`);
      return;
    }
    const took = e.ms !== undefined ? seconds(e.ms) : "";
    if (e.status === "done") {
      let sent = "";
      const t = this.transfers.get(e.host);
      if (e.id.startsWith("distribute")) sent = t && t.bytes > 0 ? `, sent ${formatBytes(t.bytes)} at ${t.mibPerSec.toFixed(1)} MiB/s` : ", nothing to send";
      this.transfers.delete(e.host);
      this.progress.line(`${at}done    ${e.description} (${took}${sent})`);
      return;
    }
    this.transfers.delete(e.host);
    const error = e.error ?? "failed";
    const [first, ...rest] = (error.startsWith(`${e.host}: `) ? error.slice(e.host.length + 2) : error).split("\n");
    this.progress.line(`${at}FAILED  ${e.description} after ${took}: ${first}${rest.map((l) => `\n${" ".repeat(at.length + 8)}${l}`).join("")}`);
  }

  private transfer(e: Extract<ClusterEvent, { type: "progress" }>): void {
    const now = Date.now();
    const t = this.transfers.get(e.host) ?? { bytes: 0, total: e.total, mibPerSec: 0, printed: now };
    t.bytes = e.bytes;
    t.total = e.total;
    t.mibPerSec = e.mibPerSec;
    this.transfers.set(e.host, t);
    if (this.tty) {
      // One status line for every host sending now, cut to the terminal's width.
      const parts = [...this.transfers].map(([host, x]) => `${host} ${percent(x)} ${x.mibPerSec.toFixed(0)} MiB/s`);
      const line = `  sending: ${parts.join(", ")}`;
      this.progress.status(line.slice(0, Math.max(20, (process.stderr.columns || 100) - 1)));
    } else if (now - t.printed >= LOG_EVERY_MS && e.bytes < e.total) {
      t.printed = now;
      this.progress.line(`  ${this.host(e.host)}  sending ${formatBytes(e.bytes)} / ${formatBytes(e.total)} (${percent(t)}, ${e.mibPerSec.toFixed(1)} MiB/s)`);
    }
  }
}

function percent(t: { bytes: number; total: number }): string {
  return `${Math.min(100, Math.round((100 * t.bytes) / Math.max(1, t.total)))}%`;
}

/** What an apply did, for people: the plan's summary, bytes sent per host, the time it took. */
export function applySummary(r: ApplyResult, ms: number, verb: string): string {
  if (r.plan.phases.length === 0) return `cluster ${r.plan.cluster} is up to date: nothing to do (${seconds(ms)})\n`;
  const lines = [`cluster ${r.plan.cluster} ${verb} in ${seconds(ms)}:`, ...r.plan.summary.map((s) => `  ${s}`)];
  const order = r.plan.phases.flatMap((p) => p.steps.map((st) => st.host));
  const sent = Object.entries(r.sent)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => order.indexOf(a) - order.indexOf(b));
  if (sent.length > 0) {
    const total = sent.reduce((n, [, b]) => n + b, 0);
    lines.push(`  sent ${sent.map(([host, n]) => `${formatBytes(n)} to ${host}`).join(", ")}${sent.length > 1 ? ` (${formatBytes(total)} in all)` : ""}`);
  } else if (r.plan.phases.some((p) => p.name === "distribute")) {
    lines.push("  sent no image data (the hosts had it)");
  }
  return `${lines.join("\n")}\n`;
}

/** Whether a destructive command asks first: on a terminal (stdin and stderr both), without --yes. */
