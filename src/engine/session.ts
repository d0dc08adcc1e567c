import { CredentialStore, registryKey, staticCredentials, type CredentialSource, type Credentials } from "./image/credentials";
import { isLoopbackRegistry } from "./image/reference";
import { RegistryClient, type RegistryClientOptions } from "./image/registry";
import { MirroredClient } from "./image/registry/mirrored";
import { DIRECT, fixedProxy, proxyFromEnv, type ProxyRule } from "./image/registry/proxy";
import { defaultRegistriesFile, loadRegistryConfig, mirrorsOf, settingsOf, type RegistryConfig } from "./image/registry-config";
import type { ImageSource } from "./image/source";
import { ImageStore, sealantHome } from "./image/store";

export interface SessionOptions {
  /** $SEALANT_HOME by default. */
  home?: string;
  /** Plain HTTP / unverified TLS for these registries (true: all). Loopback registries are always plain HTTP. */
  insecure?: boolean | string[];
  /**
   * Send credentials over plain HTTP to registries that `insecure` lets fall back to it (true:
   * all). Without it they are used anonymously there. @default false
   */
  allowHttpCredentials?: boolean | string[];
  /** Overall deadline of one pull or push in ms (0: none). @default 1 h (the registry client's) */
  timeoutMs?: number;
  /** Extra registry client options (retries, timeouts) for every registry. */
  client?: Omit<RegistryClientOptions, "insecure" | "credentials">;
  /**
   * Registry mirrors: source registry -> host[:port] serving the same repositories (e.g. an
   * offline site's copy of docker.io). Image names stay as written; only where they are
   * fetched from changes, and the source itself is not tried. Also read from
   * SEALANT_REGISTRY_MIRRORS ("docker.io=host:5000,..."). A registries file's mirrors, by
   * contrast, fall back to the registry.
   */
  mirrors?: Record<string, string>;
  /**
   * The per-registry model (mirrors with fallback, auth, CA, plain HTTP, proxy): a parsed
   * configuration, or a file to read (an error if missing). Default: $SEALANT_HOME/registries.yaml
   * when it exists.
   */
  registries?: RegistryConfig | string;
  env?: NodeJS.ProcessEnv;
  /**
   * Credentials held only in memory (e.g. a Pulumi resource's secret), by the registry an image
   * names (host[:port]; a mirror serving it is given them too). They win over the stored ones
   * (sealant login, docker config) and are never written to the credential store.
   */
  auth?: Record<string, Credentials>;
}

/** Parses "docker.io=127.0.0.1:5001,quay.io=127.0.0.1:5002". */
export function parseMirrors(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of (text ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = item.indexOf("=");
    if (eq <= 0 || eq === item.length - 1) throw new Error(`registry mirror "${item}": expected REGISTRY=HOST[:PORT]`);
    out[item.slice(0, eq)] = item.slice(eq + 1).replace(/^https?:\/\//, "");
  }
  return out;
}

/**
 * What every engine operation needs: the local store, credentials, and one registry client
 * per registry (reused, so connections are kept alive across an operation's requests).
 */
export class Session {
  private readonly clients = new Map<string, RegistryClient>();
  private readonly auth: Map<string, Credentials>;
  readonly mirrors: Record<string, string>;
  private envProxyRule: ProxyRule | undefined;

  private constructor(
    readonly home: string,
    readonly store: ImageStore,
    readonly credentials: CredentialStore,
    readonly registries: RegistryConfig,
    private readonly opts: SessionOptions,
  ) {
    this.mirrors = { ...parseMirrors((opts.env ?? process.env).SEALANT_REGISTRY_MIRRORS), ...opts.mirrors };
    this.auth = new Map(Object.entries(opts.auth ?? {}).map(([registry, c]) => [registryKey(registry), c]));
  }

  /**
   * HTTPS_PROXY / HTTP_PROXY / NO_PROXY as this session's environment sets them; read at the first
   * registry request, so a proxy variable sealant cannot use only stops commands that need one.
   */
  get envProxy(): ProxyRule {
    this.envProxyRule ??= proxyFromEnv(this.opts.env ?? process.env);
    return this.envProxyRule;
  }

  static async open(opts: SessionOptions = {}): Promise<Session> {
    const home = opts.home ?? sealantHome(opts.env);
    const registries =
      typeof opts.registries === "object"
        ? opts.registries
        : await loadRegistryConfig(opts.registries ?? defaultRegistriesFile(home), { required: opts.registries !== undefined });
    return new Session(home, await ImageStore.open(home), new CredentialStore(home, opts.env ?? process.env), registries, opts);
  }

  /** The client for the registry an image names (through its mirrors, if any), with its credentials. */
  clientFor = (source: string): RegistryClient => {
    const own = this.auth.get(registryKey(source));
    const cacheKey = `${own ? "memory-auth " : ""}${source}`;
    let client = this.clients.get(cacheKey);
    if (client) return client;
    const legacy = this.mirrors[source];
    const mirrors = legacy === undefined ? mirrorsOf(this.registries, source) : [];
    if (legacy !== undefined) {
      client = new RegistryClient(legacy, this.clientOptions(legacy, own));
    } else if (mirrors.length > 0) {
      const mirrorClients = mirrors.map((m) => new RegistryClient(m.host, { ...this.clientOptions(m.host, undefined), scheme: m.scheme }));
      client = new MirroredClient(source, this.clientOptions(source, own), mirrorClients);
    } else {
      client = new RegistryClient(source, this.clientOptions(source, own));
    }
    this.clients.set(cacheKey, client);
    return client;
  };

  /** A client that uses exactly these credentials (sealant login checks them with it); not cached. */
  clientWithCredentials(registry: string, credentials: Credentials, extra: RegistryClientOptions = {}): RegistryClient {
    return new RegistryClient(registry, { ...this.clientOptions(registry, credentials), ...extra });
  }

  /** How to reach one host: the command's flags, then the registries file's entry for it. */
  private clientOptions(host: string, memoryAuth: Credentials | undefined): RegistryClientOptions {
    const settings = settingsOf(this.registries, host);
    const listed = (v: boolean | string[] | undefined) => v === true || (Array.isArray(v) && v.includes(host));
    const proxy = settings.proxy === "direct" ? DIRECT : settings.proxy ? fixedProxy(settings.proxy) : this.envProxy;
    const auth = memoryAuth ?? settings.auth;
    const credentials: CredentialSource = auth ? staticCredentials(auth) : this.credentials;
    const out: RegistryClientOptions = {
      ...this.opts.client,
      ...(this.opts.timeoutMs !== undefined ? { operationTimeoutMs: this.opts.timeoutMs } : {}),
      insecure: (listed(this.opts.insecure) && !isLoopbackRegistry(host)) || settings.insecureSkipVerify === true,
      allowHttpCredentials: listed(this.opts.allowHttpCredentials),
      credentials,
      proxy,
    };
    if (settings.ca !== undefined) out.ca = settings.ca;
    if (settings.plainHttp) out.scheme = "http";
    else if (settings.insecureSkipVerify) out.scheme = "https";
    return out;
  }

  sourceFor = (registry: string): ImageSource => {
    const client = this.clientFor(registry);
    return {
      getManifest: (repo, ref) => client.getManifest(repo, ref),
      openBlob: (repo, digest, o) =>
        client.openBlob(repo, digest, { ...(o?.size !== undefined ? { size: o.size } : {}), ...(o?.verify !== undefined ? { verify: o.verify } : {}) }),
    };
  };

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
