import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream";

/**
 * Counts the bytes flowing from `source` for progress reports. A pass-through stream rather
 * than a 'data' listener: a listener would start the flow before the consumer is attached and
 * those bytes would be lost. Errors of `source` fail the returned stream.
 */
export function countBytes(source: Readable, onBytes: (chunk: number, total: number) => void): Readable {
  let total = 0;
  const counter = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, done) {
      total += chunk.length;
      onBytes(chunk.length, total);
      done(null, chunk);
    },
  });
  pipeline(source, counter, () => undefined);
  return counter;
}

/** Resolves on 'drain' or 'close' of a (streamx or Node) writable. */
export function drained(w: { once(ev: string, fn: () => void): unknown; removeListener(ev: string, fn: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      w.removeListener("drain", done);
      w.removeListener("close", done);
      resolve();
    };
    w.once("drain", done);
    w.once("close", done);
  });
}

/**
 * A chunk handler that calls `onLine` with each whole line (without its newline) as chunks of a
 * command's output arrive; a line split across chunks is held until its end comes. `onLine`
 * answering false drops the rest (the reader has given up on the stream).
 */
export function lineReader(onLine: (line: string) => boolean | void): (chunk: Buffer) => void {
  let pending = "";
  let stopped = false;
  return (chunk) => {
    if (stopped) return;
    pending += chunk.toString();
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (onLine(line) === false) {
        stopped = true;
        pending = "";
        return;
      }
    }
  };
}
