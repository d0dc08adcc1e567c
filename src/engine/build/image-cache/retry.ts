import { DigestMismatchError } from "../../image/digest";
import { backoffDelay, retry } from "../../util/retry";
import { asError, DEFAULT_RETRIES, DEFAULT_RETRY_DELAY_MS, MAX_RETRY_DELAY_MS, type CacheImagesOptions, type CacheProgressEvent } from "./types";

/**
 * Which failures of the image cache are worth another attempt; the loop, backoff and waiting
 * are the shared ones of util/retry (as the registry client's RetryPolicy uses them).
 */

/** What is retried, for which image, under which options and signal, reported where. */
export interface RetryContext {
  what: string;
  image: string;
  opts: CacheImagesOptions;
  signal: AbortSignal;
  emit: (e: CacheProgressEvent) => void;
}

/** Runs `fn` again after a transient failure (see isTransient), as the options say, telling `emit`. */
export async function withRetry<T>(fn: () => Promise<T>, ctx: RetryContext): Promise<T> {
  const retries = Math.max(0, ctx.opts.retries ?? DEFAULT_RETRIES);
  const base = ctx.opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  return retry(fn, {
    delayFor: (err, attempt) => {
      if (ctx.signal.aborted || attempt > retries || !isTransient(err)) return undefined;
      const retryAfter = (err as { retryAfterMs?: unknown }).retryAfterMs;
      const backoff = backoffDelay(attempt, base, MAX_RETRY_DELAY_MS);
      return Math.round(typeof retryAfter === "number" ? Math.min(Math.max(retryAfter, backoff), MAX_RETRY_DELAY_MS) : backoff);
    },
    onRetry: (err, attempt, delayMs) => ctx.emit({ type: "retry", image: ctx.image, what: ctx.what, attempt, delayMs, error: asError(err).message }),
    signal: ctx.signal,
  });
}

const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
]);

/**
 * Worth another try: a body that broke or did not match its digest on the way (no source can
 * retry that: it already handed the stream over), and, from sources that do not retry
 * themselves, server errors, throttling and network errors. Not: 4xx answers (unknown
 * manifest, denied), bad input, aborts, and RegistryErrors: the RegistryClient already
 * retried those requests as configured, and retrying again would multiply its attempts.
 */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (isAbort(err)) return false;
  if (err instanceof DigestMismatchError || err.name === "DigestMismatchError" || err.name === "SizeMismatchError") return true;
  if (err.name === "RegistryError") return false;
  const e = err as { status?: unknown; code?: unknown };
  if (typeof e.status === "number") return e.status === 408 || e.status === 429 || e.status >= 500;
  if (typeof e.code === "string") return TRANSIENT_CODES.has(e.code);
  return /premature close|socket hang up|aborted/i.test(err.message);
}

/** The error that stops the other images once one failed. */
export function stoppedError(message: string): Error {
  const err = new Error(message);
  err.name = "AbortError";
  return err;
}

export function isAbort(err: Error): boolean {
  return err.name === "AbortError" || (err as { code?: unknown }).code === "ABORT_ERR";
}
