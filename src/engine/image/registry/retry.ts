import { backoffDelay, retry } from "../../util/retry";
import { RegistryError } from "./errors";
import type { RegistryClientOptions } from "./options";

const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "UND_ERR_SOCKET",
]);

export type RetrySettings = Pick<
  RegistryClientOptions,
  "retries" | "connectRetries" | "timeoutRetries" | "retryBaseDelayMs" | "maxRetryDelayMs" | "maxRetryAfterMs" | "log"
>;

/**
 * Which failures are worth another attempt, and how long to wait first: 429, 408 and most 5xx,
 * and connection errors (ECONNREFUSED only a few times), with exponential backoff and jitter,
 * or as long as Retry-After asks (capped).
 */
export class RetryPolicy {
  private readonly retries: number;
  private readonly connectRetries: number;
  private readonly timeoutRetries: number;
  private readonly baseDelay: number;
  private readonly maxDelay: number;
  private readonly maxRetryAfter: number;
  private readonly log: ((message: string) => void) | undefined;

  constructor(opts: RetrySettings) {
    this.retries = Math.max(0, opts.retries ?? 4);
    this.connectRetries = Math.max(0, Math.min(opts.connectRetries ?? 2, this.retries));
    this.timeoutRetries = Math.max(0, Math.min(opts.timeoutRetries ?? 1, this.retries));
    this.baseDelay = opts.retryBaseDelayMs ?? 250;
    this.maxDelay = opts.maxRetryDelayMs ?? 10_000;
    this.maxRetryAfter = opts.maxRetryAfterMs ?? 60_000;
    this.log = opts.log;
  }

  /**
   * Runs `attempt` until it succeeds or the policy gives up; a RegistryError it gives up on is
   * marked final with the number of attempts. `describe` names what is retried in the log.
   */
  async run<T>(attempt: () => Promise<T>, describe: (err: unknown) => string, signal: AbortSignal | undefined): Promise<T> {
    const state = new RetryState();
    return retry(attempt, {
      delayFor: (err) => this.delay(err, state),
      onRetry: (err, _n, wait) => this.log?.(`retrying ${describe(err)} in ${wait} ms: ${(err as Error).message}`),
      giveUp: (err) => (err instanceof RegistryError ? err.gaveUp(state.attempt) : err),
      signal,
    });
  }

  /** Decides whether and when to retry; undefined = give up. Advances the state. */
  private delay(err: unknown, state: RetryState): number | undefined {
    const attempt = state.attempt;
    if (!(err instanceof RegistryError) || err.final) return undefined;
    if (attempt > this.retries) return undefined;
    let retryable = false;
    if (err.status !== undefined) {
      retryable = err.status === 429 || err.status === 408 || (err.status >= 500 && err.status !== 501 && err.status !== 505);
    } else if (err.code !== undefined && RETRYABLE_CODES.has(err.code)) {
      retryable = true;
      if (err.code === "ECONNREFUSED") {
        state.refused++;
        if (state.refused > this.connectRetries) return undefined;
      }
      // A registry that stalled once is likely to stall again: each try costs a whole stall window.
      if (err.code === "ETIMEDOUT") {
        state.timedOut++;
        if (state.timedOut > this.timeoutRetries) return undefined;
      }
    }
    if (!retryable) return undefined;
    state.attempt++;
    if (err.retryAfterMs !== undefined) return Math.min(err.retryAfterMs, this.maxRetryAfter);
    return Math.round(backoffDelay(attempt, this.baseDelay, this.maxDelay));
  }
}

class RetryState {
  attempt = 1;
  refused = 0;
  timedOut = 0;
}

/** A Retry-After header (seconds or an HTTP date) in milliseconds. */
export function parseRetryAfter(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - Date.now());
}
