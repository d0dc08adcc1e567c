import { formatBytes, shortDigest } from "./format";
import type { TransferEvent } from "../engine/image/transfer";

/**
 * Progress on stderr: on a terminal one line per blob rewritten in place, otherwise a line
 * per started/finished item so logs stay readable.
 */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private lastDraw = 0;
  private readonly started = Date.now();
  private bytes = 0;

  constructor(private readonly quiet = false) {}

  line(text: string): void {
    if (this.quiet) return;
    this.clear();
    process.stderr.write(`${text}\n`);
  }

  transfer = (e: TransferEvent): void => {
    if (this.quiet) return;
    switch (e.type) {
      case "blob":
        if (e.state === "done") this.bytes += e.size;
        if (e.state !== "start")
          this.line(
            `  ${shortDigest(e.digest)}  ${formatBytes(e.size).padStart(9)}  ${e.state === "done" ? "transferred" : e.state === "mounted" ? "mounted" : "already there"}`,
          );
        break;
      case "blob-progress":
        this.status(`  ${shortDigest(e.digest)}  ${formatBytes(e.bytes)} / ${formatBytes(e.size)}  (${Math.round((100 * e.bytes) / Math.max(1, e.size))}%)`);
        break;
      case "manifest":
        break;
    }
  };

  /** A transient status line, only on a terminal, at most 10 times a second. */
  status(text: string): void {
    if (!this.tty || this.quiet) return;
    const now = Date.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    process.stderr.write(`\r\x1b[K${text}`);
  }

  rate(): string {
    const secs = (Date.now() - this.started) / 1000;
    return `${formatBytes(this.bytes)} in ${secs.toFixed(1)} s (${formatBytes(this.bytes / Math.max(secs, 0.001))}/s)`;
  }

  private clear(): void {
    if (this.tty) process.stderr.write("\r\x1b[K");
  }
}
