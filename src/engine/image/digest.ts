import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

/** A content digest in its canonical `algorithm:hex` form; only sha256 is produced. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: string): value is Digest {
  return DIGEST_RE.test(value);
}

/** Validates a digest coming from outside (a manifest, an archive, a URL) before it is used as a path. */
export function parseDigest(value: string, what = "digest"): Digest {
  if (!isDigest(value)) {
    throw new Error(`invalid ${what} "${value}": expected sha256: followed by 64 lowercase hex digits`);
  }
  return value;
}

export function digestHex(digest: Digest): string {
  return digest.slice("sha256:".length);
}

export function sha256(data: Buffer | string): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/**
 * A pass-through stream that hashes and counts what flows through it, so a blob can be
 * verified while it is being written instead of re-read afterwards.
 */
export class DigestingStream extends Transform {
  private readonly hash: Hash = createHash("sha256");
  size = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }

  /** Only valid once the stream has ended. */
  digest(): Digest {
    return `sha256:${this.hash.digest("hex")}`;
  }
}

export class DigestMismatchError extends Error {
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${what}: digest mismatch: expected ${expected}, got ${actual}`);
    this.name = "DigestMismatchError";
  }
}
