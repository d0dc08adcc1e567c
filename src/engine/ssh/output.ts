/**
 * Keeps at most `cap` bytes of a stream: the tail, which is where a failing command says why.
 * Chunks are kept as received and decoded once at the end, so a multi-byte character split
 * across chunks survives.
 */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes dropped from the front because the cap was reached. */
  dropped = 0;

  constructor(private readonly cap: number) {}

  push(chunk: Buffer): void {
    if (this.cap <= 0) {
      this.dropped += chunk.length;
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.cap) {
      const first = this.chunks[0]!;
      const excess = this.size - this.cap;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
        this.dropped += first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
        this.dropped += excess;
      }
    }
  }

  toString(): string {
    return Buffer.concat(this.chunks, this.size).toString("utf8");
  }
}

/**
 * The end of a command's output for an error message: the last `maxLines` non-empty lines,
 * at most `maxChars` characters (cut at the front).
 */
export function tailOf(text: string, maxLines = 20, maxChars = 2000): string {
  const lines = text
    .replace(/\s+$/, "")
    .split(/\r?\n/)
    .filter((l) => l.trim() !== "");
  let out = lines.slice(-maxLines).join("\n");
  if (out.length > maxChars) out = `...${out.slice(out.length - maxChars)}`;
  return out;
}

/**
 * Takes one line that starts with `marker` out of the head of a stream (the first `limit`
 * bytes) and passes everything else on unchanged. Bytes before the marker line are held
 * back until it is found, the limit is passed, or the stream ends (`flush`).
 */
export class MarkerLineFilter {
  private head: Buffer | undefined = Buffer.alloc(0);
  /** The rest of the marker line, once seen. */
  value: string | undefined;

  constructor(
    private readonly marker: string,
    private readonly emit: (chunk: Buffer) => void,
    private readonly limit = 4096,
  ) {}

  push(chunk: Buffer): void {
    if (this.head === undefined) return this.emit(chunk);
    const head = Buffer.concat([this.head, chunk]);
    for (let from = 0; ;) {
      const at = head.indexOf(this.marker, from);
      if (at < 0) break;
      if (at > 0 && head[at - 1] !== 0x0a) {
        from = at + 1;
        continue;
      }
      const nl = head.indexOf(0x0a, at);
      if (nl < 0) break;
      this.value = head.subarray(at + this.marker.length, nl).toString("utf8");
      this.head = undefined;
      const rest = Buffer.concat([head.subarray(0, at), head.subarray(nl + 1)]);
      if (rest.length > 0) this.emit(rest);
      return;
    }
    if (head.length > this.limit) {
      this.head = undefined;
      this.emit(head);
    } else {
      this.head = head;
    }
  }

  flush(): void {
    const head = this.head;
    this.head = undefined;
    if (head && head.length > 0) this.emit(head);
  }
}
