/**
 * Places relayed layers on a host through one long-lived root shell for the whole distribute
 * phase, instead of one SSH session, one sudo and one shell per layer: on a host of a relay
 * tree those cost more CPU than hashing and extracting the layer (process accounting on the
 * shaped bench: sshd's session set-up and sudo a few ms each, per layer, on every host).
 *
 * The operator writes a line per layer to the shell's stdin — `<blob hex> <want hex> <z|->
 * <keep 0|1> <registry 0|1> <directory name>`, nothing but hex digits, flags and a layer's
 * directory name (checked here before it is written) — and the shell answers `ok <blob hex>` or
 * `fail <blob hex> <why>`, one layer at a time in the order asked. Each layer: the blob that
 * arrived (relay.ts: `incoming.<blob hex>`) is hashed (openssl, else sha256sum) and compared
 * with `want` — the blob's digest, or the layer's diffID when the relay carried the layer as
 * plain tar — before tar touches it; then extracted into `<dir>.relay` and renamed into place.
 * A blob that is not the layer goes (a host reading it on refuses what it got in turn).
 */
import { PassThrough } from "node:stream";
import { digestHex, type Digest } from "../../image/digest";
import { shellQuote, type Connection } from "../../ssh";
import { lineReader } from "../../util/streams";
import type { HostLayout } from "./layout";

/** One layer for the placer: which blob arrived, what its bytes must hash to, how to extract it. */
export interface PlaceRequest {
  /** The layer's blob digest: names the file it arrived in. */
  blob: Digest;
  /** What the arrived bytes hash to: the blob digest, or the diffID when they are plain tar. */
  want: Digest;
  gzip: boolean;
  /** Keep the blob afterwards: hosts below this one read it. */
  keep: boolean;
  withRegistry: boolean;
  /** The layer's directory name under layers/ (layout.ts layerDirName). */
  dir: string;
}

/** The placer's shell: reads a request line at a time until its stdin ends. */
export function placerScript(layout: HostLayout, relay: string): string {
  return [
    `r=${shellQuote(relay)}; L=${shellQuote(layout.layers)}`,
    // Requests on fd 3; nothing the loop runs can read one by mistake.
    "exec 3<&0 < /dev/null",
    "while read -r hex want z keep reg dir <&3; do",
    '  in="$r/incoming.$hex"; p="$r/writer.$hex"; t="$L/$dir"; n="$t.relay"; e="$r/place-error"',
    // openssl's SHA-256 uses the CPU's SHA instructions where it has them (about 4x sha256sum's
    // speed, and every host hashes every layer); a host without openssl (busybox) has sha256sum.
    '  got=$(openssl dgst -sha256 -r "$in" 2> /dev/null) || got=$(sha256sum "$in" 2> /dev/null) || got=unreadable',
    "  got=${got%% *}",
    '  if [ "$got" != "$want" ]; then rm -f "$in" "$p"; echo "fail $hex the layer arrived as sha256:$got, not sha256:$want"; continue; fi',
    '  if [ "$z" = z ]; then z=-xzf; else z=-xf; fi',
    '  if [ "$reg" = 1 ]; then set --; else set -- --anchored --exclude=registry --exclude=./registry; fi',
    // No process where a shell test does: a few ms each, per layer, on every host.
    '  if [ -e "$n" ]; then rm -rf "$n"; fi',
    '  if mkdir -p "$n" 2> "$e" && tar "$z" "$in" -C "$n" "$@" 2> "$e"; then',
    '    if [ "$keep" = 1 ]; then if [ -e "$t" ]; then rm -rf "$t"; fi; else rm -rf "$t" "$in" "$p"; fi',
    '    if mv -T "$n" "$t" 2> "$e"; then echo "ok $hex"; continue; fi',
    "  fi",
    '  echo "fail $hex $(tr "\\n" " " < "$e" | head -c 1000)"; rm -rf "$n"',
    "done",
    'rm -f "$r/place-error"',
  ].join("\n");
}

const HEX = /^[0-9a-f]{64}$/;
const DIR = /^[0-9a-f]{64}(\.noregistry)?$/;

/** The request line the placer reads; refuses anything that is not a digest's hex or a layer's directory name. */
export function placeLine(req: PlaceRequest): string {
  const hex = digestHex(req.blob);
  const want = digestHex(req.want);
  if (!HEX.test(hex) || !HEX.test(want) || !DIR.test(req.dir)) throw new Error(`not a layer to place: ${req.blob} ${req.dir}`);
  return `${hex} ${want} ${req.gzip ? "z" : "-"} ${req.keep ? 1 : 0} ${req.withRegistry ? 1 : 0} ${req.dir}\n`;
}

interface Waiting {
  hex: string;
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** The host's placer: started at the first layer, ended by close(). */
export class RelayPlacer {
  private readonly input = new PassThrough();
  private readonly stop = new AbortController();
  private readonly waiting: Waiting[] = [];
  private running: Promise<void> | undefined;
  private ended: Error | undefined;

  constructor(
    private readonly conn: Connection,
    private readonly layout: HostLayout,
    private readonly relay: string,
    /** Longest a layer may take to check and extract. */
    private readonly layerMs: number,
    private readonly signal?: AbortSignal,
  ) {}

  /** Checks and extracts one layer that arrived; rejects with the placer's reason when it could not. */
  place(req: PlaceRequest): Promise<void> {
    const line = placeLine(req);
    this.start();
    if (this.ended) return Promise.reject(this.ended);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`placing ${req.blob} took longer than ${this.layerMs / 1000} s`)), this.layerMs);
      this.waiting.push({ hex: digestHex(req.blob), resolve, reject, timer });
      this.input.write(line);
    });
  }

  /** Ends the placer's shell (its stdin ends, it exits) and waits for it. */
  async close(): Promise<void> {
    this.input.end();
    await this.running?.catch(() => undefined);
  }

  private start(): void {
    if (this.running) return;
    const signal = this.signal ? AbortSignal.any([this.signal, this.stop.signal]) : this.stop.signal;
    this.running = this.conn
      .run(placerScript(this.layout, this.relay), { sudo: true, stdin: this.input, signal, onStdout: (chunk) => this.answer(chunk) })
      .then(
        () => this.fail(new Error("the placer ended")),
        (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))),
      );
  }

  /** The placer's answers, one line per layer in the order they were asked for: `ok <hex>` or `fail <hex> <why>`. */
  private readonly answer = lineReader((line) => {
    const [word, hex, ...why] = line.split(" ");
    const first = this.waiting[0];
    if (!first || first.hex !== hex || (word !== "ok" && word !== "fail")) {
      this.fail(new Error(`the placer answered ${JSON.stringify(line.slice(0, 200))}`));
      return false;
    }
    this.waiting.shift();
    clearTimeout(first.timer);
    if (word === "ok") first.resolve();
    else first.reject(new Error(why.join(" ").trim()));
    return true;
  });

  /** The placer is gone (or must go): every layer waiting for it fails, and so does every later one. */
  private fail(err: Error): void {
    this.ended ??= err;
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    if (!this.stop.signal.aborted && this.running) {
      this.input.end();
      this.stop.abort(err);
    }
  }
}
