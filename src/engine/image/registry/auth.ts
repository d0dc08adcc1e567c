import type { CredentialSource, Credentials } from "../credentials";

/** One challenge of a `WWW-Authenticate` header. The scheme is lower-cased, parameter names too. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header value, which may hold several challenges:
 * `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull", Basic realm="x"`.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = () => {
    while (i < n && (header[i] === " " || header[i] === "\t" || header[i] === ",")) i++;
  };
  const readToken = () => {
    const start = i;
    while (i < n && !/[\s,=]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipWs();
    if (i >= n) break;
    const token = readToken();
    if (token === "") {
      i++;
      continue;
    }
    // A parameter is `name=value`; anything else starts a new challenge.
    let j = i;
    while (j < n && (header[j] === " " || header[j] === "\t")) j++;
    if (current && header[j] === "=" && header[j + 1] !== "=") {
      i = j + 1;
      while (i < n && (header[i] === " " || header[i] === "\t")) i++;
      let value = "";
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === "\\" && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const start = i;
        while (i < n && header[i] !== ",") i++;
        value = header.slice(start, i).trim();
      }
      current.params[token.toLowerCase()] = value;
    } else if (header[j] === "=") {
      // token68 (e.g. `Negotiate abc==`): skip it.
      while (i < n && header[i] !== ",") i++;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

/** `repository:<name>:<actions>` scope strings, as the token protocol wants them. */
export function repositoryScope(repository: string, actions: "pull" | "pull,push" | "push" | "*"): string {
  return `repository:${repository}:${actions}`;
}

interface CachedToken {
  /** resource ("repository:foo") -> granted-or-requested actions */
  covers: Map<string, Set<string>>;
  token: string;
  expiresAt: number;
}

export interface TokenResponse {
  token: string;
  /** Seconds; the token protocol's default is 60. */
  expiresIn: number;
}

/** Fetches a token from a realm; supplied by the client (it owns the HTTP transport and knows how to report errors). */
export type TokenFetcher = (realm: URL, credentials: Credentials | undefined) => Promise<TokenResponse>;

/**
 * The authentication state of one registry: which scheme it asked for, and bearer tokens cached
 * per scope set. Credentials are looked up once, lazily, and never leave this object except as an
 * Authorization header value.
 */
export class Authenticator {
  /** "token": the credentials are a registry token of the user's own, sent as a bearer token as it is. */
  private scheme: "basic" | "bearer" | "token" | undefined;
  private bearer: { realm: string; service?: string } | undefined;
  private tokens: CachedToken[] = [];
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  private credentialsPromise: Promise<Credentials | undefined> | undefined;

  constructor(
    private readonly registry: string,
    private readonly source: CredentialSource | undefined,
    private readonly fetchToken: TokenFetcher,
    private readonly now: () => number = Date.now,
  ) {}

  credentials(): Promise<Credentials | undefined> {
    if (!this.credentialsPromise) {
      this.credentialsPromise = this.source ? this.source.get(this.registry) : Promise.resolve(undefined);
      // A failed lookup should be retried next time, not cached.
      this.credentialsPromise.catch(() => (this.credentialsPromise = undefined));
    }
    return this.credentialsPromise;
  }

  async hasCredentials(): Promise<boolean> {
    return (await this.credentials()) !== undefined;
  }

  /** The Authorization header to send up front, from what the registry asked for before; undefined if nothing is known yet. */
  async authorization(scopes: string[]): Promise<string | undefined> {
    if (this.scheme === "token") {
      const creds = await this.credentials();
      return creds?.token !== undefined ? `Bearer ${creds.token}` : undefined;
    }
    if (this.scheme === "basic") {
      const creds = await this.credentials();
      return creds ? basicHeader(creds) : undefined;
    }
    if (this.scheme === "bearer") {
      const cached = this.cachedToken(scopes);
      if (cached) return `Bearer ${cached.token}`;
      return `Bearer ${(await this.token(scopes)).token}`;
    }
    return undefined;
  }

  /**
   * Answers a 401 challenge: returns the Authorization header to retry with, or undefined when a
   * retry cannot succeed (no credentials for Basic, or the same credentials were already refused).
   */
  async respond(header: string, scopes: string[], sent: string | undefined): Promise<string | undefined> {
    const own = await this.credentials();
    if (own?.token !== undefined) {
      // A token of the user's own replaces the registry's login flow; refused once, it stays refused.
      this.scheme = "token";
      const bearer = `Bearer ${own.token}`;
      return bearer === sent ? undefined : bearer;
    }
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === "bearer" && c.params["realm"]);
    if (bearer) {
      this.scheme = "bearer";
      const realm = bearer.params["realm"]!;
      const service = bearer.params["service"];
      if (!this.bearer || this.bearer.realm !== realm || this.bearer.service !== service) {
        this.bearer = service !== undefined ? { realm, service } : { realm };
        this.tokens = [];
      }
      const wanted = [...scopes];
      const challengeScope = bearer.params["scope"];
      if (challengeScope) for (const s of challengeScope.split(" ")) if (s && !wanted.includes(s)) wanted.push(s);
      if (sent?.startsWith("Bearer ")) this.dropToken(sent.slice("Bearer ".length));
      return `Bearer ${(await this.token(wanted)).token}`;
    }
    const basic = challenges.find((c) => c.scheme === "basic");
    if (basic) {
      this.scheme = "basic";
      const creds = await this.credentials();
      if (!creds) return undefined;
      const header = basicHeader(creds);
      return header === sent ? undefined : header;
    }
    return undefined;
  }

  /** The `error` parameter of a bearer challenge (e.g. insufficient_scope), for error messages. */
  static challengeError(header: string | undefined): string | undefined {
    if (!header) return undefined;
    return parseChallenges(header).find((c) => c.params["error"])?.params["error"];
  }

  private cachedToken(scopes: string[]): CachedToken | undefined {
    const now = this.now();
    this.tokens = this.tokens.filter((t) => t.expiresAt > now);
    const wanted = parseScopes(scopes);
    return this.tokens.find((t) => covers(t.covers, wanted));
  }

  private dropToken(token: string): void {
    this.tokens = this.tokens.filter((t) => t.token !== token);
  }

  private async token(scopes: string[]): Promise<CachedToken> {
    const cached = this.cachedToken(scopes);
    if (cached) return cached;
    if (!this.bearer) throw new Error("no bearer challenge seen yet");
    const key = [...scopes].sort().join(" ");
    const running = this.inflight.get(key);
    if (running) return running;
    const bearer = this.bearer;
    const promise = (async () => {
      const realm = URL.parse(bearer.realm);
      if (!realm || (realm.protocol !== "https:" && realm.protocol !== "http:")) {
        throw new Error(`${this.registry} names a token service that is not an http(s) URL: ${JSON.stringify(bearer.realm.slice(0, 100))}`);
      }
      if (bearer.service !== undefined) realm.searchParams.set("service", bearer.service);
      for (const s of [...scopes].sort()) realm.searchParams.append("scope", s);
      const creds = await this.credentials();
      const res = await this.fetchToken(realm, creds);
      // Leave a margin so a token does not expire between the check and its use.
      const lifetimeMs = Math.max(res.expiresIn * 1000 - Math.min(10_000, res.expiresIn * 100), 1000);
      const entry: CachedToken = { covers: parseScopes(scopes), token: res.token, expiresAt: this.now() + lifetimeMs };
      this.tokens.push(entry);
      return entry;
    })();
    this.inflight.set(key, promise);
    try {
      return await promise;
    } finally {
      this.inflight.delete(key);
    }
  }
}

export function basicHeader(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, "utf8").toString("base64")}`;
}

function parseScopes(scopes: string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const scope of scopes) {
    const last = scope.lastIndexOf(":");
    if (last < 0) continue;
    const resource = scope.slice(0, last);
    const set = out.get(resource) ?? new Set<string>();
    for (const a of scope.slice(last + 1).split(",")) if (a) set.add(a);
    out.set(resource, set);
  }
  return out;
}

function covers(have: Map<string, Set<string>>, want: Map<string, Set<string>>): boolean {
  for (const [resource, actions] of want) {
    const got = have.get(resource);
    if (!got) return false;
    if (got.has("*")) continue;
    for (const a of actions) if (!got.has(a)) return false;
  }
  return true;
}
