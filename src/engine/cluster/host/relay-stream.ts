/**
 * One SSH session per pair of hosts for all the layers one passes the other, instead of one per
 * layer: per layer and pair a session cost the sender an operator session (sshd, a shell), an
 * ssh client and a shell, and the receiver a session and a shell — more CPU than the layer's
 * bytes on the hosts of a relay tree. The sender runs one loop for the apply (this file's
 * script, as its login user), fed a line per layer by the operator — `<hex> <size>`, the blob's
 * hex and the bytes it travels as — and writes into one `ssh <receiver> stream` (relay.ts: the
 * forced command's stream mode) a header line and the layer's bytes, followed as they arrive
 * where the sender's tail can (cut-through). It prints `sending <hex>` once it reads its copy
 * (the hosts below the receiver are asked then) and passes on the receiver's `got <hex>` once
 * the receiver holds all of it; the receiver's placer then checks it as any relayed layer.
 * A copy shorter than its size (its writer died upstream) would leave the receiver waiting for
 * the rest: the caller stops the stream when the sender's own copy of the layer fails.
 */
import { PassThrough } from "node:stream";
import { digestHex, type Digest } from "../../image/digest";
import { shellQuote, type Connection } from "../../ssh";
import { lineReader } from "../../util/streams";
import type { HostLayout } from "./layout";
import { relayDir, sshTo, type RelayPeer } from "./relay";

/** The sender's loop; `follow`: its tail follows a growing file (relay.ts canCutThrough). */
export function streamScript(layout: HostLayout, receiver: RelayPeer, follow: boolean, waitMs: number): string {
  const read = follow ? 'if [ -s "$p" ]; then read -r w < "$p"; tail -c +1 -s 0.1 -f --pid="$w" "$in"; else cat "$in"; fi' : 'cat "$in"';
  return [
    `d=${shellQuote(relayDir(layout))}`,
    // Requests on fd 3, the operator's end of stdout on fd 4: the loop's stdout is the stream.
    "exec 3<&0 4>&1 < /dev/null",
    "while read -r hex size <&3; do",
    '  in="$d/incoming.$hex"; p="$d/writer.$hex"; i=0',
    // Asked once its own copy has begun to arrive: a few polls at most.
    `  while [ ! -e "$in" ]; do i=$((i + 1)); if [ $i -gt ${Math.ceil(waitMs / 50)} ]; then echo "no blob arrived at $in" >&2; exit 3; fi; sleep 0.05; done`,
    '  echo "sending $hex" >&4',
    '  echo "$hex $size"',
    `  ${read}`,
    `done | ${sshTo(layout, receiver).join(" ")} stream`,
  ].join("\n");
}

interface Waiting {
  hex: string;
  onSending?: () => void;
  timer: NodeJS.Timeout;
  resolve(): void;
  reject(err: Error): void;
}

/** One sender's stream to one receiver; started at the first layer, ended by close() or stop(). */
export class RelayStream {
  private readonly input = new PassThrough();
  private readonly halt = new AbortController();
  private readonly waiting: Waiting[] = [];
  private running: Promise<void> | undefined;
  private ended: Error | undefined;

  constructor(
    private readonly sender: Connection,
    private readonly layout: HostLayout,
    private readonly receiver: RelayPeer,
    private readonly follow: boolean,
    /** Longest a layer may take from being asked for to being all there (the apply's command timeout). */
    private readonly timeoutMs: number,
    private readonly signal?: AbortSignal,
  ) {}

  /** Sends one layer (`bytes`: its size on the wire); resolves once the receiver holds all of it. */
  send(blob: Digest, bytes: number, onSending?: () => void): Promise<void> {
    this.start();
    if (this.ended) return Promise.reject(this.ended);
    const hex = digestHex(blob);
    if (!/^[0-9a-f]{64}$/.test(hex) || !Number.isSafeInteger(bytes) || bytes < 0) throw new Error(`not a layer to relay: ${blob} ${bytes}`);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`relaying ${blob} took longer than ${this.timeoutMs / 1000} s`)), this.timeoutMs);
      this.waiting.push({ hex, resolve, reject, timer, ...(onSending ? { onSending } : {}) });
      this.input.write(`${hex} ${bytes}\n`);
    });
  }

  /** No more layers: the stream ends once the last one is through. */
  async close(): Promise<void> {
    this.input.end();
    await this.running?.catch(() => undefined);
  }

  /** Ends the stream now (the receiver's unfinished layer comes short and is refused). */
  stop(why: Error): void {
    this.fail(why);
  }

  private start(): void {
    if (this.running) return;
    const signal = this.signal ? AbortSignal.any([this.signal, this.halt.signal]) : this.halt.signal;
    this.running = this.sender
      .run(streamScript(this.layout, this.receiver, this.follow, this.timeoutMs), {
        stdin: this.input,
        signal,
        onStdout: (chunk) => this.answer(chunk),
      })
      .then(
        () => this.fail(new Error("the relay stream ended")),
        (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))),
      );
  }

  /** The receiver's lines: `sending <hex>` once a layer's bytes go, `got <hex>` once it holds them all. */
  private readonly answer = lineReader((line) => {
    const [word, hex] = line.split(" ");
    const w = this.waiting.find((x) => x.hex === hex);
    if (!w) return;
    if (word === "sending") {
      w.onSending?.();
      delete w.onSending;
    } else if (word === "got") {
      this.waiting.splice(this.waiting.indexOf(w), 1);
      clearTimeout(w.timer);
      w.resolve();
    }
  });

  private fail(err: Error): void {
    this.ended ??= err;
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    if (!this.halt.signal.aborted && this.running) {
      this.input.end();
      this.halt.abort(err);
    }
  }
}
