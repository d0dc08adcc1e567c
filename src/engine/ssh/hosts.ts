/**
 * Host collections (after k0sctl's cluster/hosts.go): filtering by role, bounded parallel work
 * with ONE aggregated error naming every failed host, and a pool of one connection per host.
 */
import type { Connection } from "./connection";
import { SshError, errorMessage } from "./errors";
import { SshConnection, type SshConnectionOptions } from "./ssh-connection";

export interface HostLike {
  readonly address: string;
  /** Set when several hosts share an address (test hosts on one machine). */
  readonly port?: number;
  /** e.g. "master", "node"/"worker", or any other string the cluster uses. */
  readonly roles?: readonly string[];
}

/** How a host is named in messages and keyed in a pool: `address`, or `address:port` off port 22. */
export function hostName(h: HostLike): string {
  return h.port === undefined || h.port === 22 ? h.address : `${h.address}:${h.port}`;
}

export interface HostFailure {
  host: string;
  error: unknown;
}

/**
 * Several hosts failed (or one did): each line names the host and what failed there, e.g.
 * `2 hosts failed:\n  127.0.10.2: systemctl start etcd exited 1: <tail>\n  127.0.10.3: connect: ECONNREFUSED`.
 */
export class HostsError extends Error {
  constructor(
    readonly failures: readonly HostFailure[],
    /** How many hosts the work was for. */
    readonly total: number,
  ) {
    super(
      `${failures.length} ${failures.length === 1 ? "host" : "hosts"} failed${total > failures.length ? ` (of ${total})` : ""}:\n${failures.map(failureLine).join("\n")}`,
    );
    this.name = "HostsError";
  }

  /** The failed hosts' names. */
  get hosts(): string[] {
    return this.failures.map((f) => f.host);
  }
}

function failureLine(f: HostFailure): string {
  let reason: string;
  if (f.error instanceof SshError) reason = f.error.host === f.host ? f.error.reason : f.error.message;
  else {
    reason = errorMessage(f.error);
    if (reason.startsWith(`${f.host}: `)) reason = reason.slice(f.host.length + 2);
  }
  return `  ${f.host}: ${reason.replace(/\n/g, "\n    ")}`;
}

export interface ParallelOptions {
  /** Hosts worked on at once. @default 16 */
  limit?: number;
  signal?: AbortSignal;
  /** Stop starting hosts after the first failure and abort the running ones (their signal). @default false */
  failFast?: boolean;
}

export const DEFAULT_PARALLEL_LIMIT = 16;

type HostFn<H, R> = (host: H, signal: AbortSignal) => Promise<R>;

export class Hosts<H extends HostLike> implements Iterable<H> {
  private readonly items: readonly H[];

  constructor(items: Iterable<H>) {
    this.items = [...items];
    const seen = new Set<string>();
    for (const h of this.items) {
      const name = hostName(h);
      if (seen.has(name)) throw new Error(`host ${name} is listed twice`);
      seen.add(name);
    }
  }

  get length(): number {
    return this.items.length;
  }

  [Symbol.iterator](): Iterator<H> {
    return this.items[Symbol.iterator]();
  }

  toArray(): H[] {
    return [...this.items];
  }

  first(): H | undefined {
    return this.items[0];
  }

  find(name: string): H | undefined {
    return this.items.find((h) => hostName(h) === name || h.address === name);
  }

  filter(pred: (host: H) => boolean): Hosts<H> {
    return new Hosts(this.items.filter(pred));
  }

  withRole(role: string): Hosts<H> {
    return this.filter((h) => (h.roles ?? []).includes(role));
  }

  /** Hosts with the role `master` (sealer's name for the control plane). */
  masters(): Hosts<H> {
    return this.filter((h) => (h.roles ?? []).some((r) => r === "master" || r === "control-plane"));
  }

  /** Hosts with the role `node` (sealer's name) or `worker`. */
  workers(): Hosts<H> {
    return this.filter((h) => (h.roles ?? []).some((r) => r === "node" || r === "worker"));
  }

  /**
   * Runs `fn` for every host, at most `limit` at once. Every host is attempted (unless
   * `failFast` or the signal stops it); then, if any failed, ONE HostsError names them all.
   */
  parallelEach(fn: HostFn<H, void>, opts?: ParallelOptions): Promise<void>;
  parallelEach(limit: number, fn: HostFn<H, void>, signal?: AbortSignal): Promise<void>;
  async parallelEach(a: number | HostFn<H, void>, b?: HostFn<H, void> | ParallelOptions, c?: AbortSignal): Promise<void> {
    if (typeof a === "number") await this.parallelMap(b as HostFn<H, void>, { limit: a, ...(c ? { signal: c } : {}) });
    else await this.parallelMap(a, b as ParallelOptions | undefined);
  }

  /** Like parallelEach, collecting each host's result (in host order). */
  async parallelMap<R>(fn: HostFn<H, R>, opts: ParallelOptions = {}): Promise<R[]> {
    const limit = opts.limit ?? DEFAULT_PARALLEL_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`parallel limit must be a positive integer, got ${limit}`);
    const inner = new AbortController();
    const onAbort = (): void => inner.abort(opts.signal?.reason);
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
    const results = new Array<R>(this.items.length);
    const failures: { index: number; failure: HostFailure }[] = [];
    let next = 0;
    let skipped = 0;
    const worker = async (): Promise<void> => {
      while (next < this.items.length) {
        const i = next++;
        const host = this.items[i]!;
        if (inner.signal.aborted) {
          skipped++;
          continue;
        }
        try {
          results[i] = await fn(host, inner.signal);
        } catch (error) {
          failures.push({ index: i, failure: { host: hostName(host), error } });
          if (opts.failFast) inner.abort(error);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(limit, Math.max(1, this.items.length)) }, worker));
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
    }
    if (failures.length > 0) {
      failures.sort((x, y) => x.index - y.index);
      throw new HostsError(
        failures.map((f) => f.failure),
        this.items.length,
      );
    }
    if (skipped > 0) opts.signal?.throwIfAborted();
    return results;
  }
}

/**
 * One connection per host, opened on first use and shared by every phase after that; a
 * failed open is forgotten so the next `get` tries again. `closeAll` closes them together.
 */
export class ConnectionPool<H extends HostLike = HostLike> {
  private readonly conns = new Map<string, Promise<Connection>>();
  private closed = false;

  constructor(private readonly open: (host: H, signal?: AbortSignal) => Promise<Connection>) {}

  /** A pool of SshConnections; `optionsFor` gives each host's address, auth and policies. */
  static ssh<H extends HostLike>(optionsFor: (host: H) => SshConnectionOptions): ConnectionPool<H> {
    return new ConnectionPool<H>((host, signal) => SshConnection.connect({ name: hostName(host), ...optionsFor(host) }, signal));
  }

  get size(): number {
    return this.conns.size;
  }

  get(host: H, signal?: AbortSignal): Promise<Connection> {
    if (this.closed) return Promise.reject(new Error(`connection pool is closed (asked for ${hostName(host)})`));
    const key = hostName(host);
    let conn = this.conns.get(key);
    if (!conn) {
      conn = this.open(host, signal);
      this.conns.set(key, conn);
      conn.catch(() => {
        if (this.conns.get(key) === conn) this.conns.delete(key);
      });
    }
    return conn;
  }

  /** Closes every connection (those still opening too, once they are open). */
  async closeAll(): Promise<void> {
    this.closed = true;
    const all = [...this.conns.values()];
    this.conns.clear();
    await Promise.allSettled(all.map(async (p) => (await p).close()));
  }
}
