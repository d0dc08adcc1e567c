/**
 * The body of a bulk-send worker thread (see bulk.ts): it keeps its own ssh2 connections to
 * hosts and streams local files into commands there, so the cipher, packet framing and socket
 * writes of several hosts' streams run on several cores instead of the main thread.
 *
 * `bulkWorkerMain` is run from its source text (`new Worker(source, { eval: true })`), which
 * works from the compiled dist and from TypeScript run by the test runner alike. So it must be
 * self-contained: it refers to nothing outside itself and loads modules with `require`.
 */

/** What the main thread sends to connect: everything ssh2 needs, the host key already verified. */
export interface BulkConnect {
  /** Names the connection in the worker's cache (one per main-thread connection). */
  key: string;
  host: string;
  port: number;
  username: string;
  password?: string;
  privateKey?: string | Buffer;
  passphrase?: string;
  agent?: string;
  readyTimeout: number;
  ciphers: string[];
  /** The host key blob the main connection verified: the worker's connection must see exactly it. */
  hostKey: Buffer;
}

export interface BulkJob {
  type: "job";
  id: number;
  connect: BulkConnect;
  /** The command line, as the main thread built it (sudo, env reader, pid report). */
  line: string;
  /** Written ahead of the file (sudo's password line, the env block): in memory only. */
  head?: Buffer;
  file: string;
  /** Gunzip the file on the way (a gzip layer sent as plain tar). */
  gunzip: boolean;
  /** The file is still being written: read it as it grows, until it holds this many bytes. */
  growsTo?: number;
  pidMarker: string;
  progressIntervalMs: number;
}

export type BulkToWorker = BulkJob | { type: "abort"; id: number } | { type: "forget"; key: string };

export type BulkFromWorker =
  | { type: "pid"; id: number; pid: number }
  | { type: "progress"; id: number; bytes: number }
  | { type: "connected"; id: number }
  | { type: "done"; id: number; bytes: number; code?: number; signal?: string; stdout: string; stderr: string; wireOut: number; wireIn: number }
  | { type: "error"; id: number; message: string; connect: boolean };

export function bulkWorkerMain(): void {
  const { parentPort, workerData } = require("node:worker_threads") as typeof import("node:worker_threads");
  const { createReadStream } = require("node:fs") as typeof import("node:fs");
  const { open } = require("node:fs/promises") as typeof import("node:fs/promises");
  const { createGunzip } = require("node:zlib") as typeof import("node:zlib");
  const { Client } = require((workerData as { ssh2: string }).ssh2) as typeof import("ssh2");
  const TAIL = 64 * 1024;
  const CHUNK = 1 << 20;
  const port = parentPort!;
  const post = (m: BulkFromWorker): void => port.postMessage(m);
  const clients = new Map<string, Promise<import("ssh2").Client>>();
  const aborts = new Map<number, () => void>();

  const connect = (c: BulkConnect, id: number): Promise<import("ssh2").Client> => {
    const known = clients.get(c.key);
    if (known) return known;
    post({ type: "connected", id });
    const opening = new Promise<import("ssh2").Client>((resolve, reject) => {
      const client = new Client();
      let ready = false;
      let keyMismatch = false;
      client.on("ready", () => {
        ready = true;
        client.setNoDelay(true);
        batchWrites(client);
        resolve(client);
      });
      client.on("keyboard-interactive", (_n, _i, _l, prompts, finish) => {
        // Only a hidden password prompt gets the password (as the main connection does).
        if (c.password !== undefined && prompts.every((p) => p.echo !== true && /password/i.test(p.prompt))) finish(prompts.map(() => c.password!));
        else finish([]);
      });
      client.on("error", (err: Error) => {
        if (!ready) reject(keyMismatch ? new Error("the host presented a different host key than the verified one") : err);
      });
      client.on("close", () => {
        clients.delete(c.key);
        if (!ready) reject(new Error("connection closed before the SSH handshake finished"));
      });
      client.connect({
        host: c.host,
        port: c.port,
        username: c.username,
        readyTimeout: c.readyTimeout,
        keepaliveInterval: 15_000,
        algorithms: { cipher: c.ciphers as never, compress: ["none"] },
        hostVerifier: (key: Buffer): boolean => {
          keyMismatch = !Buffer.from(key).equals(Buffer.from(c.hostKey));
          return !keyMismatch;
        },
        ...(c.password !== undefined ? { password: c.password, tryKeyboard: true } : {}),
        // postMessage hands a Buffer over as a plain Uint8Array, which ssh2 does not take as a key.
        ...(c.privateKey !== undefined ? { privateKey: typeof c.privateKey === "string" ? c.privateKey : Buffer.from(c.privateKey) } : {}),
        ...(c.passphrase !== undefined ? { passphrase: c.passphrase } : {}),
        ...(c.agent !== undefined ? { agent: c.agent } : {}),
      });
    });
    clients.set(c.key, opening);
    opening.catch(() => clients.delete(c.key));
    return opening;
  };

  /**
   * ssh2 writes every 32 KiB packet to the socket on its own: a syscall each. Corked until the
   * end of the tick, the packets of one 1 MiB chunk leave in one writev.
   */
  const batchWrites = (client: import("ssh2").Client): void => {
    const sock = (client as unknown as { _sock?: import("node:net").Socket })._sock;
    if (!sock || typeof sock.cork !== "function") return;
    const write = sock.write.bind(sock) as (...args: unknown[]) => boolean;
    let corked = false;
    sock.write = ((...args: unknown[]): boolean => {
      if (!corked) {
        corked = true;
        sock.cork();
        process.nextTick(() => {
          corked = false;
          sock.uncork();
        });
      }
      return write(...args);
    }) as typeof sock.write;
  };

  /** A file another thread is still writing, read as it grows (polled) until it holds `size` bytes. */
  async function* followFile(path: string, size: number, stopped: () => boolean): AsyncGenerator<Buffer> {
    const fh = await open(path, "r");
    try {
      let pos = 0;
      let grewAt = Date.now();
      while (pos < size && !stopped()) {
        const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - pos));
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) {
          if (Date.now() - grewAt > 120_000) throw new Error(`${path} stopped growing at ${pos} of ${size} bytes`);
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        grewAt = Date.now();
        pos += bytesRead;
        yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }

  const tail = (parts: Buffer[], size: number): string => {
    const all = Buffer.concat(parts);
    return all.subarray(Math.max(0, all.length - size)).toString("utf8");
  };

  const run = async (job: BulkJob): Promise<void> => {
    let client: import("ssh2").Client;
    try {
      client = await connect(job.connect, job.id);
    } catch (err) {
      post({ type: "error", id: job.id, message: err instanceof Error ? err.message : String(err), connect: true });
      return;
    }
    const exit: { code?: number; signal?: string } = {};
    const channel = await new Promise<import("ssh2").ClientChannel>((resolve, reject) => {
      try {
        client.exec(job.line, (err, ch) => {
          if (err) return reject(err);
          ch.on("exit", (code: number | null, signal?: string) => {
            if (typeof code === "number") exit.code = code;
            else if (signal) exit.signal = signal;
          });
          resolve(ch);
        });
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    }).catch((err: unknown) => {
      post({ type: "error", id: job.id, message: `cannot open a session: ${err instanceof Error ? err.message : String(err)}`, connect: false });
      return undefined;
    });
    if (!channel) return;

    // Bytes on the wire (SSH framing included), for the benchmark's per-host counters.
    const sock = (client as unknown as { _sock?: { bytesWritten?: number; bytesRead?: number } })._sock;
    const out0 = sock?.bytesWritten ?? 0;
    const in0 = sock?.bytesRead ?? 0;
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let stderrHead: Buffer | undefined = Buffer.alloc(0);
    channel.on("data", (c: Buffer) => {
      stdout.push(c);
      if (stdout.length > 64) stdout.splice(0, stdout.length - 64);
    });
    channel.stderr.on("data", (c: Buffer) => {
      if (stderrHead !== undefined) {
        // The first stderr line is the command's pid (for a kill of its process group).
        stderrHead = Buffer.concat([stderrHead, c]);
        const nl = stderrHead.indexOf(0x0a);
        if (nl < 0 && stderrHead.length < 4096) return;
        const line = stderrHead.subarray(0, Math.max(nl, 0)).toString("utf8");
        const rest = nl >= 0 && line.startsWith(job.pidMarker) ? stderrHead.subarray(nl + 1) : stderrHead;
        if (rest !== stderrHead) post({ type: "pid", id: job.id, pid: Number(line.slice(job.pidMarker.length)) });
        stderrHead = undefined;
        c = rest;
      }
      stderr.push(c);
      if (stderr.length > 64) stderr.splice(0, stderr.length - 64);
    });
    let closed = false;
    const done = new Promise<void>((resolve) => channel.once("close", () => resolve()));
    void done.then(() => (closed = true));

    let stopped = false;
    const file = job.growsTo === undefined ? createReadStream(job.file, { highWaterMark: CHUNK }) : undefined;
    const stream = file && job.gunzip ? file.pipe(createGunzip({ chunkSize: CHUNK })) : file;
    if (file && job.gunzip) file.on("error", (err) => stream!.destroy(err));
    const source: AsyncIterable<Buffer> = stream ?? followFile(job.file, job.growsTo!, () => stopped);
    aborts.set(job.id, () => {
      stopped = true;
      stream?.destroy();
      channel.close();
    });
    let bytes = 0;
    let lastReport = 0;
    let readError: unknown;
    const drained = (): Promise<void> =>
      new Promise((resolve) => {
        const go = (): void => {
          channel.off("drain", go);
          channel.off("close", go);
          resolve();
        };
        channel.on("drain", go);
        channel.on("close", go);
      });
    try {
      if (job.head && !channel.write(job.head)) await drained();
      for await (const chunk of source) {
        if (closed || stopped) break;
        bytes += chunk.length;
        const now = Date.now();
        if (now - lastReport >= job.progressIntervalMs) {
          lastReport = now;
          post({ type: "progress", id: job.id, bytes });
        }
        if (!channel.write(chunk)) await drained();
      }
    } catch (err) {
      if (!stopped) readError = err;
    }
    if (readError !== undefined) {
      // The command must not see a clean end of a half-read file: kill it, then report.
      try {
        channel.signal("KILL");
      } catch {
        // going away anyway
      }
      channel.close();
    } else if (!closed) channel.end();
    await done;
    aborts.delete(job.id);
    stopped = true;
    stream?.destroy();
    if (readError !== undefined) {
      post({
        type: "error",
        id: job.id,
        message: `reading ${job.file}: ${readError instanceof Error ? readError.message : String(readError)}`,
        connect: false,
      });
      return;
    }
    post({
      type: "done",
      id: job.id,
      bytes,
      ...(exit.code !== undefined ? { code: exit.code } : {}),
      ...(exit.signal !== undefined ? { signal: exit.signal } : {}),
      stdout: tail(stdout, TAIL),
      stderr: tail(stderrHead !== undefined ? [stderrHead, ...stderr] : stderr, TAIL),
      wireOut: (sock?.bytesWritten ?? 0) - out0,
      wireIn: (sock?.bytesRead ?? 0) - in0,
    });
  };

  port.on("message", (m: BulkToWorker) => {
    if (m.type === "job") {
      run(m).catch((err: unknown) => post({ type: "error", id: m.id, message: err instanceof Error ? err.message : String(err), connect: false }));
    } else if (m.type === "abort") {
      aborts.get(m.id)?.();
    } else if (m.type === "forget") {
      const c = clients.get(m.key);
      clients.delete(m.key);
      void c?.then(
        (client) => client.end(),
        () => undefined,
      );
    }
  });
}
