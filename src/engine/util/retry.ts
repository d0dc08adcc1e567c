import { setTimeout as delay } from "node:timers/promises";
import { abortError } from "./abort";

/**
 * The retry loop shared by the registry client (image/registry/retry.ts) and the image cache
 * (build/image-cache): what is worth another attempt stays with each caller; how attempts are
 * counted, how long to wait and how waiting is cut short by a signal live here.
 */
export interface RetryOptions {
  /**
   * How long to wait before another attempt after `err` failed attempt number `attempt`
   * (1-based), or undefined to give up.
   */
  delayFor(err: unknown, attempt: number): number | undefined;
  /** Told before each wait. */
  onRetry?(err: unknown, attempt: number, delayMs: number): void;
  /** The error to throw on giving up after `attempts` attempts. @default the last error itself */
  giveUp?(err: unknown, attempts: number): unknown;
  /** Aborts a wait (with `abortError(signal)`); the attempt itself is the caller's to abort. */
  signal?: AbortSignal;
}

/** Runs `attempt` until it succeeds or `opts.delayFor` gives up. */
export async function retry<T>(attempt: () => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      const wait = opts.delayFor(err, n);
      if (wait === undefined) throw opts.giveUp ? opts.giveUp(err, n) : err;
      opts.onRetry?.(err, n, wait);
      await sleep(wait, opts.signal);
    }
  }
}

/**
 * Exponential backoff with jitter for the wait after failed attempt `attempt` (1-based):
 * base·2^(attempt-1), at most `maxMs`, then half of it fixed and half random. Not rounded.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return exp / 2 + Math.random() * (exp / 2);
}

/** Waits `ms`; an abort of `signal` (before or during) fails it with `abortError(signal)`. */
export async function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) throw abortError(signal);
  try {
    await delay(ms, undefined, signal ? { signal } : {});
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
    throw err;
  }
}
