import { CredentialStore, registryKey, staticCredentials, type Credentials } from "./image/credentials";
import { isLoopbackRegistry } from "./image/reference";
import { RegistryClient, type RegistryClientOptions } from "./image/registry";
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
   * fetched from changes. Also read from SEALANT_REGISTRY_MIRRORS ("docker.io=host:5000,...").
   */
  mirrors?: Record<string, string>;
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
  /** Clients that use `auth` credentials, apart from the others (a mirror may serve several registries). */
  private readonly authClients = new Map<string, RegistryClient>();
  private readonly auth: Map<string, Credentials>;
  readonly mirrors: Record<string, string>;

  private constructor(
    readonly home: string,
    readonly store: ImageStore,
    readonly credentials: CredentialStore,
    private readonly opts: SessionOptions,
  ) {
    this.mirrors = { ...parseMirrors((opts.env ?? process.env).SEALANT_REGISTRY_MIRRORS), ...opts.mirrors };
    this.auth = new Map(Object.entries(opts.auth ?? {}).map(([registry, c]) => [registryKey(registry), c]));
  }

  static async open(opts: SessionOptions = {}): Promise<Session> {
    const home = opts.home ?? sealantHome(opts.env);
    return new Session(home, await ImageStore.open(home), new CredentialStore(home, opts.env ?? process.env), opts);
  }

  /** The client for the registry an image names (through its mirror, if any), with its credentials. */
  clientFor = (source: string): RegistryClient => {
    const registry = this.mirrors[source] ?? source;
    const own = this.auth.get(registryKey(source));
    const clients = own ? this.authClients : this.clients;
    let client = clients.get(registry);
    if (!client) {
      const listed = (v: boolean | string[] | undefined) => v === true || (Array.isArray(v) && v.includes(registry));
      client = new RegistryClient(registry, {
        ...this.opts.client,
        ...(this.opts.timeoutMs !== undefined ? { operationTimeoutMs: this.opts.timeoutMs } : {}),
        insecure: listed(this.opts.insecure) && !isLoopbackRegistry(registry),
        allowHttpCredentials: listed(this.opts.allowHttpCredentials),
        credentials: own ? staticCredentials(own) : this.credentials,
      });
      clients.set(registry, client);
    }
    return client;
  };

  sourceFor = (registry: string): ImageSource => {
    const client = this.clientFor(registry);
    return {
      getManifest: (repo, ref) => client.getManifest(repo, ref),
      openBlob: (repo, digest, o) =>
        client.openBlob(repo, digest, { ...(o?.size !== undefined ? { size: o.size } : {}), ...(o?.verify !== undefined ? { verify: o.verify } : {}) }),
    };
  };

  close(): void {
    for (const c of [...this.clients.values(), ...this.authClients.values()]) c.close();
    this.clients.clear();
    this.authClients.clear();
  }
}
