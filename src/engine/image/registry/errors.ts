import { DigestMismatchError } from "../digest";
import { BlobSourceError } from "./streams";

/** One entry of a registry's JSON error body: `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"...","detail":...}]}`. */
export interface RegistryErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

export interface RegistryErrorInit {
  /** User-facing registry name (host[:port], docker.io for Docker Hub). */
  registry: string;
  method: string;
  /** host + path of the request, without the query string, e.g. `127.0.0.1:5000/v2/foo/manifests/1.0`. */
  path: string;
  /** HTTP status; undefined when no response arrived (connection error, timeout). */
  status?: number;
  errors?: RegistryErrorEntry[];
  /** Text after the status and codes, when the body had no JSON errors or a hint applies. */
  message?: string;
  /** Network error code (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...) when no response arrived. */
  code?: string;
  /** From a Retry-After header, in milliseconds. */
  retryAfterMs?: number;
  cause?: unknown;
}

/**
 * A failed registry request, e.g.
 * `GET 127.0.0.1:5000/v2/foo/manifests/1.0: 404 MANIFEST_UNKNOWN: manifest unknown`.
 * Never carries credentials or tokens.
 */
export class RegistryError extends Error {
  readonly registry: string;
  readonly method: string;
  readonly path: string;
  readonly status: number | undefined;
  readonly errors: RegistryErrorEntry[];
  readonly code: string | undefined;
  readonly retryAfterMs: number | undefined;
  /** How many attempts were made before giving up (set by the retry loop). */
  attempts = 1;
  /** Set once a retry loop gave up on this error, so no outer loop retries it again. */
  final = false;

  constructor(init: RegistryErrorInit) {
    super(formatMessage(init), init.cause !== undefined ? { cause: init.cause } : undefined);
    this.name = "RegistryError";
    this.registry = init.registry;
    this.method = init.method;
    this.path = init.path;
    this.status = init.status;
    this.errors = init.errors ?? [];
    this.code = init.code;
    this.retryAfterMs = init.retryAfterMs;
  }

  /** The registry's error codes, e.g. `["MANIFEST_UNKNOWN"]`. */
  get codes(): string[] {
    return this.errors.map((e) => e.code);
  }

  /** 404, or a *_UNKNOWN code. */
  get notFound(): boolean {
    return this.status === 404 || this.codes.some((c) => c.endsWith("_UNKNOWN"));
  }

  get unauthorized(): boolean {
    return this.status === 401 || this.status === 403;
  }

  /** Marks the error as final after `attempts` tries; the message says so when there was more than one. */
  gaveUp(attempts: number): this {
    if (this.final) return this;
    this.final = true;
    this.attempts = attempts;
    if (attempts > 1) this.message += ` (gave up after ${attempts} attempts)`;
    return this;
  }
}

function formatMessage(init: RegistryErrorInit): string {
  let s = `${init.method} ${init.path}: `;
  if (init.status === undefined) {
    s += init.message ?? "request failed";
    return s;
  }
  s += String(init.status);
  const errors = init.errors ?? [];
  if (errors.length > 0) {
    s += " " + errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join("; ");
    if (init.message) s += `; ${init.message}`;
  } else {
    const text = init.message ?? STATUS_TEXT[init.status];
    if (text) s += ` ${text}`;
  }
  return s;
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Payload Too Large",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/**
 * A request that got no response, as a RegistryError that names the host and says what to check;
 * aborts and errors of the request body pass through unchanged.
 */
export function networkError(registry: string, method: string, url: URL, err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  if (err.name === "AbortError" || (err as { code?: string }).code === "ABORT_ERR") return err;
  // Errors of a request body we produce (a blob being uploaded) are not network errors.
  if (err instanceof DigestMismatchError || err instanceof BlobSourceError || err instanceof RegistryError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  let message = err.message;
  const proxy = (err as { proxy?: string }).proxy;
  if (proxy !== undefined) {
    // The proxy failed, not the registry: the registry hints below would mislead.
    const init: RegistryErrorInit = { registry, method, path: `${url.host}${url.pathname}`, message: `through proxy ${proxy}: ${err.message}`, cause: err };
    if (code !== undefined) init.code = code;
    return new RegistryError(init);
  }
  switch (code) {
    case "ECONNREFUSED":
      message = `connection refused: is a registry listening at ${url.host}? (${err.message})`;
      break;
    case "ENOTFOUND":
      message = `unknown host ${url.hostname}`;
      break;
    case "ECONNRESET":
      message = `connection reset by ${url.host} (${err.message})`;
      break;
    case "ETIMEDOUT":
      message = `timed out talking to ${url.host} (${err.message})`;
      break;
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
    case "CERT_HAS_EXPIRED":
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      message = `TLS certificate of ${url.host} not trusted: ${err.message} (trust its CA, or mark the registry insecure)`;
      break;
    case "EPROTO":
    case "ERR_SSL_WRONG_VERSION_NUMBER":
      message = `TLS handshake with ${url.host} failed: ${err.message} (a plain-HTTP registry must be marked insecure)`;
      break;
    default:
      break;
  }
  const init: RegistryErrorInit = { registry, method, path: `${url.host}${url.pathname}`, message, cause: err };
  if (code !== undefined) init.code = code;
  return new RegistryError(init);
}

/**
 * A body that broke off after its request was answered: a new request may fetch it whole, but
 * no retry inside the client covered it (its own name, so callers that leave RegistryErrors to
 * the client's retries, like the image cache, still retry it).
 */
export class BrokenBodyError extends RegistryError {
  constructor(init: RegistryErrorInit) {
    super(init);
    this.name = "BrokenBodyError";
  }

  /** Once the client's retries gave up on it, it reads as any RegistryError: nobody should retry it again. */
  override gaveUp(attempts: number): this {
    super.gaveUp(attempts);
    if (attempts > 1) this.name = "RegistryError";
    return this;
  }
}

/**
 * A response body that broke off (connection closed or reset, stalled, deadline passed) as a
 * BrokenBodyError with a network code, so the retry policy can try the whole exchange again.
 */
export function bodyError(registry: string, method: string, url: URL, err: unknown, received: number, expected?: number): unknown {
  if (!(err instanceof Error) || err instanceof RegistryError || err instanceof DigestMismatchError) return err;
  if (err.name === "AbortError" || (err as { code?: string }).code === "ABORT_ERR") return err;
  const code = (err as NodeJS.ErrnoException).code;
  const of = expected !== undefined ? ` of ${expected}` : "";
  const timedOut = code === "ETIMEDOUT";
  const message = timedOut ? `${err.message} (after ${received}${of} bytes)` : `the connection broke after ${received}${of} bytes (${err.message})`;
  return new BrokenBodyError({ registry, method, path: `${url.host}${url.pathname}`, message, code: timedOut ? "ETIMEDOUT" : "ECONNRESET", cause: err });
}

/** Parses a registry error body; tolerant of non-JSON bodies (returns []). */
export function parseErrorBody(body: Buffer): RegistryErrorEntry[] {
  if (body.length === 0) return [];
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { errors?: unknown };
    if (!parsed || !Array.isArray(parsed.errors)) return [];
    const out: RegistryErrorEntry[] = [];
    for (const e of parsed.errors) {
      if (!e || typeof e !== "object") continue;
      const { code, message, detail } = e as { code?: unknown; message?: unknown; detail?: unknown };
      const entry: RegistryErrorEntry = { code: typeof code === "string" && code ? code : "UNKNOWN" };
      if (typeof message === "string" && message) entry.message = truncate(message, 300);
      if (detail !== undefined) entry.detail = detail;
      out.push(entry);
    }
    return out;
  } catch {
    return [];
  }
}

/** A short, single-line excerpt of a non-JSON error body (HTML error pages, proxies). */
export function bodyExcerpt(body: Buffer): string | undefined {
  const text = body
    .toString("utf8")
    .replace(/<[^>]*>/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  return text ? truncate(text, 200) : undefined;
}

function truncate(s: string, max: number): string {
  return s.length > max ? s.slice(0, max) + "…" : s;
}
