/**
 * One apply's relay distribution (see relay.ts for the transport): which host gets which layer
 * from where, in what order, and what happens when a relay fails. Each host takes its layers in
 * image order, each from the host the plan names (`via`) as soon as that host has placed it —
 * so layers flow down the tree like a pipeline; where the source's `tail` can follow a growing
 * file (relay.ts, cut-through) it starts as soon as the source has begun to receive it — or from the operator when it is a seed, when
 * its source does not get that layer in this apply (a registry-only layer, a layer it held
 * already), or when relaying to it failed: then the rest of its layers come straight from the
 * operator, and whatever is still missing at the end goes the direct way (host/distribute.ts).
 */
import { createReadStream } from "node:fs";
import type { Connection } from "../../ssh";
import { countBytes } from "../../util/streams";
import type { ClusterHost } from "./connect";
import type { ClusterContext } from "./context";
import { plainCopy, wireForm, type HostLayer } from "./distribute";
import {
  authorizeSender,
  canCutThrough,
  cleanUpRelay,
  connectPeer,
  hostPublicKeys,
  prepareRelay,
  receiveCommand,
  relayDir,
  relayKey,
  removeAuthorizations,
  sendBlob,
  writeKnownHosts,
  type RelayPeer,
} from "./relay";
import { RelayPlacer } from "./relay-placer";
import { RelayStream } from "./relay-stream";

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A host of the relay: where its layers come from and which ones it lacks. */
export interface RelayHost {
  host: ClusterHost;
  /** The host it relays from (none: a seed, from the operator). */
  via?: string;
  /** The layers it gets in this apply, in image order. */
  missing: HostLayer[];
}

interface Arrival {
  promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

function arrival(): Arrival {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Nobody may be waiting for it; a rejection then is not an error of its own.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

export class LayerRelay {
  private readonly hosts: Map<string, RelayHost>;
  /** How many hosts relay from each host: it keeps its blobs only when some do. */
  private readonly children = new Map<string, number>();
  /** `<ip> <digest>`: settled when that host has placed the layer (rejected when it will not). */
  private readonly arrivals = new Map<string, Arrival>();
  /** `<ip> <digest>`: settled when that host begins to receive the layer's blob (rejected when it will not). */
  private readonly starts = new Map<string, Arrival>();
  /** Per host: whether it passes layers on while they arrive (relay.ts, cut-through). */
  private readonly cutThrough = new Map<string, Promise<boolean>>();
  private readonly prepared = new Map<string, Promise<void>>();
  private readonly keys = new Map<string, Promise<string>>();
  /** Per layer: whether it travels as plain tar (see plainOnWire). */
  private readonly plain = new Map<string, Promise<boolean>>();
  private unfinished: number;

  constructor(
    private readonly cluster: ClusterContext,
    hosts: readonly RelayHost[],
  ) {
    this.hosts = new Map(hosts.map((h) => [h.host.ip, h]));
    for (const h of hosts) if (h.via) this.children.set(h.via, (this.children.get(h.via) ?? 0) + 1);
    this.unfinished = hosts.length;
  }

  /** Puts the layers the host lacks into place, relayed where it can; returns the bytes the operator sent it. */
  async deliver(ip: string, signal?: AbortSignal): Promise<number> {
    const me = this.hosts.get(ip);
    if (!me) throw new Error(`${ip} is not a host of this relay`);
    const { cluster } = this;
    const conn = await cluster.pool.get(me.host, signal);
    const facts = cluster.facts.get(ip)!;
    const total = me.missing.reduce((n, l) => n + l.size, 0);
    const started = Date.now();
    let done = 0;
    let fromOperator = 0;
    const progress = (bytes: number): void => {
      const secs = (Date.now() - started) / 1000;
      cluster.emit({ type: "progress", host: ip, what: "image", bytes, total, mibPerSec: secs > 0 ? bytes / (1 << 20) / secs : 0 });
    };
    const failed = (what: string, err: unknown): void => cluster.emit({ type: "warning", host: ip, text: `${what}: ${errorMessage(err)}` });
    try {
      await this.prepare(me, signal);
    } catch (err) {
      failed("relay distribution unavailable, sending directly", err);
      this.giveUp(ip, new Error(`${ip} could not prepare relaying`));
      return 0;
    }
    let source = me.via;
    let authorized = false;
    const placer = new RelayPlacer(conn, cluster.layout, relayDir(cluster.layout), this.commandMs, signal);
    let placing: Promise<void> = Promise.resolve();
    let relayFailed = false;
    /** All the layers from the source in one session, where the receiver takes a stream (relay-stream.ts). */
    let stream: RelayStream | undefined;
    try {
      if (source) {
        try {
          const streams = await this.authorize(this.hosts.get(source)!, me, conn, signal);
          authorized = true;
          if (streams)
            stream = new RelayStream(
              await this.connOf(source, signal),
              cluster.layout,
              this.peer(me.host),
              await this.cutsThrough(source, signal),
              this.commandMs,
              signal,
            );
        } catch (err) {
          failed(`relaying from ${source} unavailable, the operator sends the layers`, err);
          source = undefined;
        }
      }
      // Every layer's relay is asked for at once, each starting when its source has it (or begins
      // to receive it): a host then takes layer after layer with no round trip of the operator's
      // between them. The first that fails stops those not yet started; they come from the operator.
      const relays = me.missing.map((layer) => {
        const from = source;
        if (!from || !this.receives(from, layer)) return Promise.resolve(false);
        return (async () => {
          try {
            const follow = await this.cutsThrough(from, signal);
            await (follow ? this.settled(this.starts, from, layer) : this.arrivalOf(from, layer)).promise;
            if (relayFailed) return false;
            // This host's copy begins once its source reads its own: the hosts below it are asked then.
            const started = () => this.settled(this.starts, ip, layer).resolve();
            if (stream) {
              const s = stream;
              let through = false;
              // The source's own copy failing leaves this one short: the stream stops rather than wait for the rest.
              this.arrivalOf(from, layer).promise.catch((why: Error) => {
                if (!through) s.stop(why);
              });
              await s.send(layer.digest, await this.wireBytes(layer), started);
              through = true;
            } else await sendBlob(await this.connOf(from, signal), cluster.layout, this.peer(me.host), layer, this.commandMs, follow, signal, started);
            started();
            return true;
          } catch (err) {
            if (!relayFailed && !signal?.aborted) failed(`relaying ${layer.digest} from ${from} failed, the operator sends the layers not yet relayed`, err);
            relayFailed = true;
            stream?.stop(new Error("relaying stopped"));
            return false;
          }
        })();
      });
      for (const [i, layer] of me.missing.entries()) {
        const relayed = await relays[i]!;
        signal?.throwIfAborted();
        const direct = async (): Promise<boolean> => {
          // The hosts below are asked once the first bytes leave: their senders then find this
          // host's copy there, not poll for it (a sleep process each time) while the session starts.
          const start = this.settled(this.starts, ip, layer);
          try {
            const onBytes = (n: number) => (start.resolve(), progress(done + n));
            fromOperator += await this.fromOperator(conn, layer, onBytes, signal);
            return true;
          } catch (err) {
            signal?.throwIfAborted();
            // The direct send after the relay brings it (host/distribute.ts); the hosts below this one get it from the operator.
            failed(`sending ${layer.digest} as a blob failed, it goes the direct way`, err);
            return false;
          } finally {
            start.resolve();
          }
        };
        const received = relayed || (await direct());
        // Extracted while the next layer arrives: the link and the host's disk work at the same time.
        const before = placing;
        placing = (async () => {
          await before;
          let placed = received && (await this.tryPlace(placer, me, layer, relayed ? "the operator sends it again" : "it goes the direct way", signal));
          if (!placed && relayed) placed = (await direct()) && (await this.tryPlace(placer, me, layer, "it goes the direct way", signal));
          if (placed) {
            facts.layers.add(layer.dir);
            this.arrivalOf(ip, layer).resolve();
            done += layer.size;
            progress(done);
          } else {
            this.arrivalOf(ip, layer).reject(new Error(`${ip} did not get ${layer.digest}`));
          }
        })();
      }
      await placing;
    } finally {
      relayFailed = true;
      await placing.catch(() => undefined);
      await Promise.all([placer.close(), stream?.close()]);
      this.giveUp(ip, new Error(`${ip} stopped relaying`));
      // The sender's key is good for nothing once this host has its layers.
      if (authorized) await removeAuthorizations(conn, cluster.spec.name).catch((err: unknown) => failed("removing the relay key", err));
    }
    return fromOperator;
  }

  /**
   * The host's step ended, however it ended. Once every host's has, everything relaying put on
   * the hosts goes (hosts keep their blobs until then: the hosts below them read them).
   */
  async finished(ip: string): Promise<void> {
    this.giveUp(ip, new Error(`${ip} stopped relaying`));
    if (--this.unfinished > 0) return;
    await Promise.all(
      [...this.prepared.keys()].map(async (each) => {
        try {
          await cleanUpRelay(await this.connOf(each), this.cluster.layout, this.cluster.spec.name);
        } catch (err) {
          this.cluster.emit({
            type: "warning",
            host: each,
            text: `could not remove the relay files (${this.cluster.layout.root}/relay, authorized_keys entries marked sealant-relay:${this.cluster.spec.name}): ${errorMessage(err)}; the next apply removes them`,
          });
        }
      }),
    );
  }

  private get commandMs(): number {
    return this.cluster.spec.timeouts.command * 1000;
  }

  private connOf(ip: string, signal?: AbortSignal): Promise<Connection> {
    return this.cluster.pool.get(this.hosts.get(ip)!.host, signal);
  }

  private peer(h: ClusterHost): RelayPeer {
    return { ip: h.ip, port: h.ssh.port ?? 22, user: h.ssh.user ?? "root" };
  }

  /** Whether the host gets this layer's blob in this apply (so it can pass it on). */
  private receives(ip: string, layer: HostLayer): boolean {
    return this.hosts.get(ip)?.missing.some((l) => l.digest === layer.digest) ?? false;
  }

  private arrivalOf(ip: string, layer: HostLayer): Arrival {
    return this.settled(this.arrivals, ip, layer);
  }

  /** The host's entry for the layer in one of the maps of arrivals. */
  private settled(map: Map<string, Arrival>, ip: string, layer: HostLayer): Arrival {
    const key = `${ip} ${layer.digest}`;
    let a = map.get(key);
    if (!a) {
      a = arrival();
      map.set(key, a);
    }
    return a;
  }

  /** Nothing more arrives on this host: whoever waits for one of its layers takes it from elsewhere. */
  private giveUp(ip: string, why: Error): void {
    for (const layer of this.hosts.get(ip)?.missing ?? []) {
      this.settled(this.starts, ip, layer).reject(why);
      this.arrivalOf(ip, layer).reject(why);
    }
  }

  /** Whether the host passes layers on while they arrive; asked once (a failed question: no). */
  private cutsThrough(ip: string, signal?: AbortSignal): Promise<boolean> {
    let c = this.cutThrough.get(ip);
    if (!c) {
      c = (async () => canCutThrough(await this.connOf(ip, signal), signal))().catch(() => false);
      this.cutThrough.set(ip, c);
    }
    return c;
  }

  private prepare(h: RelayHost, signal?: AbortSignal): Promise<void> {
    let p = this.prepared.get(h.host.ip);
    if (!p) {
      p = (async () => prepareRelay(await this.connOf(h.host.ip, signal), this.cluster.layout, this.cluster.spec.name, signal))();
      this.prepared.set(h.host.ip, p);
    }
    return p;
  }

  private keyOf(h: RelayHost, signal?: AbortSignal): Promise<string> {
    let k = this.keys.get(h.host.ip);
    if (!k) {
      k = (async () => {
        await this.prepare(h, signal);
        return relayKey(await this.connOf(h.host.ip, signal), this.cluster.layout, signal);
      })();
      this.keys.set(h.host.ip, k);
    }
    return k;
  }

  /** Lets `sender` reach `receiver`: the receiver's host keys on the sender, the sender's key on the receiver; whether the receiver takes a stream. */
  private async authorize(sender: RelayHost, receiver: RelayHost, receiverConn: Connection, signal?: AbortSignal): Promise<boolean> {
    const [key, hostKeys] = await Promise.all([this.keyOf(sender, signal), hostPublicKeys(receiverConn, signal)]);
    const peer = this.peer(receiver.host);
    await writeKnownHosts(await this.connOf(sender.host.ip, signal), this.cluster.layout, peer, hostKeys, signal);
    const streams = await authorizeSender(receiverConn, this.cluster.layout, this.cluster.spec.name, key, signal);
    await connectPeer(await this.connOf(sender.host.ip, signal), this.cluster.layout, peer, signal).catch(() => undefined);
    return streams;
  }

  /**
   * Whether the layer travels down the tree as plain tar: a gzip layer gzip hardly shrinks
   * (distribute.ts's rule for direct sends, wireForm) whose diffID the image names. Then the
   * operator gunzips it once and no host spends CPU on `gzip -d` for it (GNU gzip, ~0.13 s per
   * 64 MiB on every host); the hosts check the tar against the diffID. Layers gzip does shrink
   * stay gzip: the operator's link is the scarce thing.
   */
  private plainOnWire(layer: HostLayer): Promise<boolean> {
    let p = this.plain.get(layer.digest);
    if (!p) {
      p = !layer.diffId || !/gzip/.test(layer.mediaType) ? Promise.resolve(false) : wireForm(this.cluster.session.store, layer).then((w) => !w.gzip);
      p = p.catch(() => false);
      this.plain.set(layer.digest, p);
    }
    return p;
  }

  /** The bytes the layer travels as: its blob, or its plain tar. */
  private async wireBytes(layer: HostLayer): Promise<number> {
    return (await this.plainOnWire(layer)) ? (await wireForm(this.cluster.session.store, layer)).bytes : layer.size;
  }

  /** Streams the layer (its blob, or its shared plain copy) from the operator into the host's `incoming` file; returns the bytes sent. */
  private async fromOperator(conn: Connection, layer: HostLayer, onBytes: (n: number) => void, signal?: AbortSignal): Promise<number> {
    const store = this.cluster.session.store;
    const copy = (await this.plainOnWire(layer)) ? plainCopy(store, layer, (await wireForm(store, layer)).bytes) : undefined;
    let sent = 0;
    try {
      // The copy is read once it is whole: gunzipping a layer takes a fraction of the time its bytes take on the link.
      await copy?.written;
      const blob = createReadStream(copy?.file ?? store.blobPath(layer.digest), { highWaterMark: 1 << 20 });
      const counted = countBytes(blob, (_n, total) => {
        sent = total;
        onBytes(total);
      });
      try {
        await conn.run(receiveCommand(this.cluster.layout, layer), { stdin: counted, timeoutMs: this.commandMs, ...(signal ? { signal } : {}) });
      } finally {
        counted.destroy();
      }
    } finally {
      await copy?.release();
    }
    return sent;
  }

  /** place(), a failure said as a warning (with what happens next) and answered false. */
  private async tryPlace(placer: RelayPlacer, h: RelayHost, layer: HostLayer, next: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.place(placer, h, layer);
      return true;
    } catch (err) {
      signal?.throwIfAborted();
      this.cluster.emit({ type: "warning", host: h.host.ip, text: `placing ${layer.digest} failed, ${next}: ${errorMessage(err)}` });
      return false;
    }
  }

  /** Checks the blob that arrived and extracts it into place (root: layers are root's), through the host's placer. */
  private async place(placer: RelayPlacer, h: RelayHost, layer: HostLayer): Promise<void> {
    const plain = await this.plainOnWire(layer);
    await placer.place({
      blob: layer.digest,
      want: plain ? layer.diffId! : layer.digest,
      gzip: !plain && /gzip/.test(layer.mediaType),
      keep: (this.children.get(h.host.ip) ?? 0) > 0,
      withRegistry: layer.withRegistry,
      dir: layer.dir,
    });
  }
}
