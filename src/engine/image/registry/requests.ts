import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import type { CredentialSource, Credentials } from "../credentials";
import { isLoopbackRegistry } from "../reference";
import { Authenticator, basicHeader, type TokenResponse } from "./auth";
import { RegistryError, bodyError, bodyExcerpt, networkError, parseErrorBody, type RegistryErrorEntry } from "./errors";
import type { RegistryClientOptions } from "./options";
import { RetryPolicy, parseRetryAfter } from "./retry";
import { HttpTransport, discard, readBody, readErrorBody, seconds, type RequestBody } from "./transport";
import type { RegistryName } from "./validate";

const MAX_TOKEN_BYTES = 1024 * 1024;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

export interface Req {
  method: string;
  /** A path under the registry ("/v2/...") or an absolute URL (upload locations, token realms). */
  url: string | URL;
  /** Token scopes the request needs. */
  scopes: string[];
  /** Statuses that are answers; any other status is an error. */
  ok: number[];
  headers?: Record<string, string | number>;
  /** A Buffer can be replayed (auth challenge, retries); a stream cannot. */
  body?: RequestBody;
  /** false: one attempt only. */
  retry?: boolean;
  /** Do not run the registry's auth flow (token realm requests). */
  noAuth?: boolean;
  /** An explicit Authorization header (token realm requests). */
  authorization?: string;
  signal?: AbortSignal | undefined;
}

/** A response together with the request that got it (after redirects). */
export class Reply {
  constructor(
    readonly method: string,
    readonly res: IncomingMessage,
    readonly url: URL,
  ) {}

  get status(): number {
    return this.res.statusCode ?? 0;
  }

  /** host + path, no query: what error messages show. */
  get path(): string {
    return `${this.url.host}${this.url.pathname}`;
  }

  header(name: string): string | undefined {
    return headerOf(this.res.headers, name);
  }
}

/**
 * HTTP to one registry: picks the scheme, answers auth challenges (basic, bearer tokens),
 * retries, follows redirects, and turns failures into RegistryErrors that say what to do.
 */
export class RegistryHttp {
  readonly registry: string;
  readonly host: string;
  private readonly transport: HttpTransport;
  private readonly auth: Authenticator;
  private readonly retries: RetryPolicy;
  private readonly insecure: boolean;
  private readonly documentTimeoutMs: number;
  private basePromise: Promise<URL> | undefined;
  /** Secrets that must never appear in an error message: credentials, their Basic form, tokens. */
  private readonly secrets = new Set<string>();

  constructor(
    name: RegistryName,
    private readonly opts: RegistryClientOptions,
  ) {
    this.registry = name.registry;
    this.host = name.host;
    this.insecure = opts.insecure ?? false;
    this.retries = new RetryPolicy(opts);
    const transportOpts: ConstructorParameters<typeof HttpTransport>[0] = {
      insecure: this.insecure,
      maxSockets: opts.maxConnections ?? 8,
      timeoutMs: opts.timeoutMs ?? 30_000,
      userAgent: opts.userAgent ?? "sealant/0.1",
    };
    if (opts.ca !== undefined) transportOpts.ca = opts.ca;
    if (opts.proxy !== undefined) transportOpts.proxy = opts.proxy;
    this.transport = new HttpTransport(transportOpts);
    this.documentTimeoutMs = opts.documentTimeoutMs ?? 120_000;
    this.auth = new Authenticator(this.registry, this.guardedCredentials(opts.credentials), (realm, creds) => this.fetchToken(realm, creds));
  }

  /**
   * The credential source as the authenticator sees it: empty while the registry is reached
   * over plain HTTP off this machine (unless allowHttpCredentials), so no Basic header and no
   * credentialed token request is ever made for it. Every credential handed out is remembered
   * for redaction.
   */
  private guardedCredentials(source: CredentialSource | undefined): CredentialSource | undefined {
    if (!source) return undefined;
    return {
      get: async (registry) => {
        if (await this.credentialsWithheld()) return undefined;
        const creds = await source.get(registry);
        if (creds?.token !== undefined) this.rememberSecret(creds.token);
        else if (creds) this.rememberSecret(creds.password, basicHeader(creds).slice("Basic ".length));
        return creds;
      },
    };
  }

  /** Why credentials are not sent to this registry, when they are not: it is reached over plain HTTP and is not on loopback. */
  async credentialsWithheld(): Promise<string | undefined> {
    const base = await this.base();
    if (base.protocol === "https:" || isLoopbackRegistry(this.host) || this.opts.allowHttpCredentials) return undefined;
    return (
      `${this.host} is reached over plain HTTP, so sealant does not send it credentials (anyone on the way could read them); ` +
      `give the registry TLS, or allow credentials over HTTP explicitly (--allow-http-credentials) on a network you trust`
    );
  }

  private rememberSecret(...values: string[]): void {
    for (const v of values) if (v.length >= 4) this.secrets.add(v);
  }

  /** Text from a registry (error bodies may echo what they were sent) with every known secret replaced. */
  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join("***");
    return out;
  }

  private redactEntries(errors: RegistryErrorEntry[]): RegistryErrorEntry[] {
    return errors.map((e) => {
      const entry: RegistryErrorEntry = { code: this.redact(e.code) };
      if (e.message !== undefined) entry.message = this.redact(e.message);
      if (e.detail !== undefined) entry.detail = JSON.parse(this.redact(JSON.stringify(e.detail))) as unknown;
      return entry;
    });
  }

  /**
   * A small document (manifest, index, tag list page): the request and reading its whole body
   * are one attempt, retried together (a body that breaks off is fetched again), each attempt
   * within the document deadline.
   */
  async document(r: Req, limit: number, what: string): Promise<{ reply: Reply; body: Buffer }> {
    return this.retrying(
      async () => {
        const deadline = AbortSignal.timeout(this.documentTimeoutMs);
        const signal = r.signal ? AbortSignal.any([r.signal, deadline]) : deadline;
        let reply: Reply | undefined;
        try {
          reply = await this.request({ ...r, signal });
          const got = reply;
          const body = await readBody(got.res, limit, what, (err, received) => bodyError(this.registry, r.method, got.url, err, received));
          return { reply: got, body };
        } catch (err) {
          if (!deadline.aborted || r.signal?.aborted || this.opts.signal?.aborted) throw err;
          const url = reply?.url ?? (typeof r.url === "string" ? new URL(r.url, await this.base()) : r.url);
          throw new RegistryError({
            registry: this.registry,
            method: r.method,
            path: `${url.host}${url.pathname}`,
            code: "ETIMEDOUT",
            message: `${what}: no complete answer within ${seconds(this.documentTimeoutMs)}`,
          });
        }
      },
      (err) => `${r.method} ${err instanceof RegistryError ? err.path : ""}`,
      r.signal,
    );
  }

  close(): void {
    this.transport.close();
  }

  /** The registry's origin, scheme included; detected once (again after a failure). */
  base(): Promise<URL> {
    if (!this.basePromise) {
      const promise = this.detectBase();
      this.basePromise = promise;
      promise.catch(() => {
        if (this.basePromise === promise) this.basePromise = undefined;
      });
    }
    return this.basePromise;
  }

  async request(r: Req): Promise<Reply> {
    // A single-attempt request leaves retrying to its caller (uploads restart as a whole).
    if (r.retry === false) return this.attempt(r);
    return this.retrying(
      () => this.attempt(r),
      (err) => `${r.method} ${err instanceof RegistryError ? err.path : ""}`,
      r.signal,
    );
  }

  /** Runs `run` again under the retry policy: for an operation made of single-attempt requests. */
  retrying<T>(run: () => Promise<T>, describe: (err: unknown) => string, signal: AbortSignal | undefined): Promise<T> {
    return this.retries.run(run, describe, this.signal(signal));
  }

  private signal(extra: AbortSignal | undefined): AbortSignal | undefined {
    const own = this.opts.signal;
    if (own && extra) return AbortSignal.any([own, extra]);
    return own ?? extra;
  }

  private async detectBase(): Promise<URL> {
    if (this.opts.scheme) return new URL(`${this.opts.scheme}://${this.host}`);
    if (isLoopbackRegistry(this.host)) return new URL(`http://${this.host}`);
    if (!this.insecure) return new URL(`https://${this.host}`);
    // Insecure: HTTPS without verification if the registry speaks TLS, else plain HTTP.
    const https = new URL(`https://${this.host}/v2/`);
    try {
      const probe: Parameters<HttpTransport["send"]>[0] = { method: "GET", url: https };
      const signal = this.signal(undefined);
      if (signal) probe.signal = signal;
      await discard(await this.transport.send(probe));
      return new URL(`https://${this.host}`);
    } catch (err) {
      if ((err as Error).name === "AbortError") throw err;
      this.opts.log?.(
        `${this.host}: no TLS (${(err as Error).message}); using plain HTTP because the registry is marked insecure` +
          (this.opts.allowHttpCredentials ? "" : " (without credentials)"),
      );
      return new URL(`http://${this.host}`);
    }
  }

  private async attempt(r: Req): Promise<Reply> {
    const base = await this.base();
    const url = typeof r.url === "string" ? new URL(r.url, base) : r.url;
    const ours = !r.noAuth && url.origin === base.origin;
    const sent = r.authorization ?? (ours ? await this.auth.authorization(r.scopes) : undefined);
    let res = await this.exchange(r, url, sent);
    if (res.status === 401 && ours) {
      const challenge = res.header("www-authenticate");
      const body = await readErrorBody(res.res);
      const replayable = r.body === undefined || Buffer.isBuffer(r.body);
      const retryWith = challenge && replayable ? await this.auth.respond(challenge, r.scopes, sent) : undefined;
      if (retryWith === undefined) throw await this.unauthorized(r.method, url, 401, body, challenge);
      res = await this.exchange(r, url, retryWith);
      if (res.status === 401) {
        const again = res.header("www-authenticate");
        throw await this.unauthorized(r.method, url, 401, await readErrorBody(res.res), again);
      }
    }
    if (!r.ok.includes(res.status)) {
      if (res.status === 403 && ours) throw await this.unauthorized(r.method, url, 403, await readErrorBody(res.res), undefined);
      throw await this.statusError(res);
    }
    return res;
  }

  /** One request, following redirects for GET/HEAD; credentials never follow a redirect to another origin. */
  private async exchange(r: Req, url: URL, authorization: string | undefined): Promise<Reply> {
    let current = url;
    let auth = authorization;
    const signal = this.signal(r.signal);
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string | number> = { ...r.headers };
      if (auth) headers["Authorization"] = auth;
      let res: IncomingMessage;
      try {
        const req: Parameters<HttpTransport["send"]>[0] = { method: r.method, url: current, headers };
        if (r.body !== undefined) req.body = r.body;
        if (signal) req.signal = signal;
        res = await this.transport.send(req);
      } catch (err) {
        throw networkError(this.registry, r.method, current, err);
      }
      const loc = headerOf(res.headers, "location");
      if ((r.method === "GET" || r.method === "HEAD") && REDIRECTS.has(res.statusCode ?? 0) && loc) {
        await discard(res);
        const target = URL.parse(loc, current.href);
        if (!target || (target.protocol !== "http:" && target.protocol !== "https:")) {
          throw new RegistryError({
            registry: this.registry,
            method: r.method,
            path: `${current.host}${current.pathname}`,
            status: res.statusCode ?? 0,
            message: `redirected to ${JSON.stringify(loc.slice(0, 100))}, which is not an http(s) URL`,
          }).gaveUp(1);
        }
        if (hop >= MAX_REDIRECTS) {
          throw new RegistryError({
            registry: this.registry,
            method: r.method,
            path: `${url.host}${url.pathname}`,
            status: res.statusCode ?? 0,
            message: `more than ${MAX_REDIRECTS} redirects (the last to ${target.host}${target.pathname})`,
          }).gaveUp(1);
        }
        const next = target;
        if (next.origin !== current.origin) auth = undefined;
        current = next;
        continue;
      }
      return new Reply(r.method, res, current);
    }
  }

  private async statusError(res: Reply): Promise<RegistryError> {
    const body = res.method === "HEAD" ? Buffer.alloc(0) : await readErrorBody(res.res);
    if (res.method === "HEAD") await discard(res.res);
    const errors = this.redactEntries(parseErrorBody(body));
    const init: ConstructorParameters<typeof RegistryError>[0] = {
      registry: this.registry,
      method: res.method,
      path: res.path,
      status: res.status,
      errors,
    };
    if (errors.length === 0) {
      const excerpt = bodyExcerpt(body);
      if (excerpt && !excerpt.startsWith("{")) init.message = this.redact(excerpt);
    }
    const retryAfter = parseRetryAfter(res.header("retry-after"));
    if (retryAfter !== undefined) init.retryAfterMs = retryAfter;
    return new RegistryError(init);
  }

  private async unauthorized(method: string, url: URL, status: number, body: Buffer, challenge: string | undefined): Promise<RegistryError> {
    const withheld = await this.credentialsWithheld().catch(() => undefined);
    const hasCreds = await this.auth.hasCredentials().catch(() => false);
    let hint = withheld ?? this.credentialsHint(hasCreds);
    const why = Authenticator.challengeError(challenge);
    if (hasCreds && (why === "insufficient_scope" || status === 403)) hint += `; the credentials may lack access to this repository`;
    const errors = this.redactEntries(parseErrorBody(body));
    return new RegistryError({ registry: this.registry, method, path: `${url.host}${url.pathname}`, status, errors, message: hint });
  }

  private credentialsHint(hasCreds: boolean): string {
    return hasCreds
      ? `unauthorized: check credentials for ${this.registry} (sealant login ${this.registry})`
      : `no credentials for ${this.registry} (sealant login ${this.registry})`;
  }

  private async fetchToken(realm: URL, creds: Credentials | undefined): Promise<TokenResponse> {
    // Credentials go to a token realm over plain HTTP only on this machine, or to the registry's
    // own host when credentials over HTTP were allowed for it; never to another host in clear.
    const sameHost = realm.host === this.host && this.opts.allowHttpCredentials === true;
    if (creds && realm.protocol !== "https:" && !isLoopbackRegistry(realm.host) && !sameHost) {
      throw new RegistryError({
        registry: this.registry,
        method: "GET",
        path: `${realm.host}${realm.pathname}`,
        message: `${this.registry} asks for a token from ${realm.host} over plain HTTP; sealant sends credentials to a token service only over TLS`,
      }).gaveUp(1);
    }
    const req: Req = { method: "GET", url: realm, scopes: [], ok: [200], noAuth: true, headers: { Accept: "application/json" } };
    if (creds) req.authorization = basicHeader(creds);
    let body: Buffer;
    try {
      body = (await this.document(req, MAX_TOKEN_BYTES, `token from ${realm.host}${realm.pathname}`)).body;
    } catch (err) {
      if (err instanceof RegistryError && err.unauthorized) {
        const hint = this.credentialsHint(creds !== undefined);
        throw new RegistryError({ registry: this.registry, method: "GET", path: err.path, status: err.status ?? 401, errors: err.errors, message: hint });
      }
      // Already retried here: a plain Error so the registry request that needed the token does not retry again.
      if (err instanceof RegistryError) throw new Error(`getting a token for ${this.registry}: ${err.message}`, { cause: err });
      throw err;
    }
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(body.toString("utf8")) as typeof parsed;
    } catch {
      throw new Error(`token from ${realm.host}${realm.pathname} for ${this.registry}: not JSON`);
    }
    if (parsed === null || typeof parsed !== "object") throw new Error(`token from ${realm.host}${realm.pathname} for ${this.registry}: not a JSON object`);
    const token = typeof parsed.token === "string" && parsed.token ? parsed.token : parsed.access_token;
    if (typeof token !== "string" || token === "") throw new Error(`token from ${realm.host}${realm.pathname} for ${this.registry}: no token in the answer`);
    this.rememberSecret(token);
    const expiresIn = typeof parsed.expires_in === "number" && parsed.expires_in > 0 ? parsed.expires_in : 60;
    return { token, expiresIn };
  }
}

function headerOf(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (Array.isArray(v)) return v.join(", ");
  return v;
}
