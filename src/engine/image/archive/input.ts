/** Feeding the archive's bytes, plain or gzip-compressed, into the tar parser. */
import { Readable } from "node:stream";
import { pipeline as pipelineCb } from "node:stream";
import { createGunzip } from "node:zlib";
import type * as tar from "tar-stream";
import { ArchiveError, asError } from "./errors";
import { drained } from "../../util/streams";

/**
 * Pushes the input into the tar parser, gunzipping it first when it starts with the gzip
 * magic. Never rejects: a read error destroys the parser, which the consumer then reports.
 */
export async function feed(source: Readable, extract: tar.Extract, label: string): Promise<void> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  try {
    const head: Buffer[] = [];
    let headBytes = 0;
    let ended = false;
    while (headBytes < 2) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
      head.push(chunk);
      headBytes += chunk.length;
    }
    const first = Buffer.concat(head);
    const rest = Readable.from(
      (async function* () {
        if (first.length > 0) yield first;
        if (ended) return;
        for (;;) {
          const r = await it.next();
          if (r.done) return;
          yield r.value;
        }
      })(),
      { objectMode: false },
    );
    let chunks: AsyncIterable<Buffer> = rest;
    if (first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b) {
      const gunzip = createGunzip();
      pipelineCb(rest, gunzip, () => undefined);
      chunks = gunzipErrors(gunzip, label);
    }
    for await (const chunk of chunks) {
      if (extract.destroying || extract.destroyed) break;
      if (!extract.write(chunk)) await drained(extract);
    }
    if (!extract.destroying && !extract.destroyed) extract.end(undefined);
  } catch (err) {
    extract.destroy(asError(err));
  } finally {
    await it.return?.().catch(() => undefined);
  }
}

async function* gunzipErrors(gunzip: AsyncIterable<Buffer>, label: string): AsyncGenerator<Buffer> {
  try {
    yield* gunzip;
  } catch (err) {
    throw new ArchiveError(label, undefined, `is gzip-compressed, but the gzip stream is corrupt or truncated (${(err as Error).message})`);
  }
}
