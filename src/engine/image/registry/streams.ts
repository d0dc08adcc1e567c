import { createHash, type Hash } from "node:crypto";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { DigestMismatchError, type Digest } from "../digest";

/** Reading the local content of a blob being uploaded failed (not a registry or network problem; not retried). */
export class BlobSourceError extends Error {
  constructor(what: string, cause: Error) {
    super(`${what}: reading the blob failed: ${cause.message}`, { cause });
    this.name = "BlobSourceError";
  }
}

/** The content had the wrong length: a digest mismatch that is known before hashing ends. */
export class SizeMismatchError extends DigestMismatchError {
  constructor(what: string, expectedSize: number, actualSize: number, more = false) {
    super(what, `${expectedSize} bytes`, `${more ? "more than " : ""}${actualSize} bytes`);
    this.name = "SizeMismatchError";
    this.message = `${what}: size mismatch: expected ${expectedSize} bytes, got ${more ? "more than " : ""}${actualSize}`;
  }
}

/**
 * Passes bytes through while hashing and counting them; fails with SizeMismatchError as soon as
 * more than `size` bytes arrive, and with DigestMismatchError (or SizeMismatchError) at the end
 * when the content is not the expected one. A consumer that reads to the end has verified data.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash = createHash("sha256");
  bytes = 0;

  constructor(
    private readonly what: string,
    private readonly digest: Digest,
    private readonly size: number | undefined,
    private readonly onProgress?: (bytes: number) => void,
    /** false: count and check the size only; the consumer hashes the bytes itself. */
    private readonly hashing = true,
  ) {
    // Large chunks through: the default 16 KiB buffers make receiving and writing take turns.
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.size !== undefined && this.bytes > this.size) {
      done(new SizeMismatchError(this.what, this.size, this.size, true));
      return;
    }
    if (this.hashing) this.hash.update(chunk);
    this.onProgress?.(this.bytes);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.size !== undefined && this.bytes !== this.size) {
      done(new SizeMismatchError(this.what, this.size, this.bytes));
      return;
    }
    const actual: Digest = `sha256:${this.hash.digest("hex")}`;
    if (this.hashing && actual !== this.digest) {
      done(new DigestMismatchError(this.what, this.digest, actual));
      return;
    }
    done();
  }
}

/**
 * Cuts one stream into consecutive pieces of exact lengths (for chunked uploads) without
 * buffering more than the source's own chunks.
 */
export class ChunkReader {
  private leftover: Buffer | undefined;
  private readonly it: AsyncIterator<Buffer>;

  constructor(
    private readonly source: Readable,
    private readonly what: string,
  ) {
    this.it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** Yields exactly `length` bytes, or fails if the source ends before. */
  async *take(length: number, offset: number, total: number): AsyncGenerator<Buffer> {
    let remaining = length;
    while (remaining > 0) {
      let buf = this.leftover;
      this.leftover = undefined;
      if (!buf) {
        const r = await this.it.next();
        if (r.done) throw new SizeMismatchError(this.what, total, offset + length - remaining);
        buf = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      }
      if (buf.length > remaining) {
        this.leftover = buf.subarray(remaining);
        buf = buf.subarray(0, remaining);
      }
      remaining -= buf.length;
      yield buf;
    }
  }

  /** Reads the source to its end, so a verifying stream underneath gets to check the whole content. */
  async finish(total: number): Promise<void> {
    if (this.leftover && this.leftover.length > 0) throw new SizeMismatchError(this.what, total, total, true);
    const r = await this.it.next();
    if (!r.done) throw new SizeMismatchError(this.what, total, total, true);
  }

  destroy(): void {
    this.source.destroy();
  }
}
