import { CredentialStore } from "./image/credentials";
import { isLoopbackRegistry } from "./image/reference";
import { RegistryClient, type RegistryClientOptions } from "./image/registry";
import type { ImageSource } from "./image/source";
import { ImageStore, sealantHome } from "./image/store";

export interface SessionOptions {
  /** $SEALANT_HOME by default. */
  home?: string;
  /** Plain HTTP / unverified TLS for these registries (true: all). Loopback registries are always plain HTTP. */
  insecure?: boolean | string[];
  /** Extra registry client options (retries, timeouts) for every registry. */
  client?: Omit<RegistryClientOptions, "insecure" | "credentials">;
  /**
   * Registry mirrors: source registry -> host[:port] serving the same repositories (e.g. an
   * offline site's copy of docker.io). Image names stay as written; only where they are
   * fetched from changes. Also read from SEALANT_REGISTRY_MIRRORS ("docker.io=host:5000,...").
   */
  mirrors?: Record<string, string>;
  env?: NodeJS.ProcessEnv;
}

/** Parses "docker.io=127.0.0.1:5001,quay.io=127.0.0.1:5002". */
export function parseMirrors(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of (text ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
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
  readonly mirrors: Record<string, string>;

  private constructor(
    readonly home: string,
    readonly store: ImageStore,
    readonly credentials: CredentialStore,
    private readonly opts: SessionOptions,
  ) {
    this.mirrors = { ...parseMirrors((opts.env ?? process.env).SEALANT_REGISTRY_MIRRORS), ...opts.mirrors };
  }

  static async open(opts: SessionOptions = {}): Promise<Session> {
    const home = opts.home ?? sealantHome(opts.env);
    return new Session(home, await ImageStore.open(home), new CredentialStore(home, opts.env ?? process.env), opts);
  }

  clientFor = (source: string): RegistryClient => {
    const registry = this.mirrors[source] ?? source;
    let client = this.clients.get(registry);
    if (!client) {
      const insecure = this.opts.insecure === true || (Array.isArray(this.opts.insecure) && this.opts.insecure.includes(registry));
      client = new RegistryClient(registry, { ...this.opts.client, insecure: insecure && !isLoopbackRegistry(registry), credentials: this.credentials });
      this.clients.set(registry, client);
    }
    return client;
  };

  sourceFor = (registry: string): ImageSource => {
    const client = this.clientFor(registry);
    return {
      getManifest: (repo, ref) => client.getManifest(repo, ref),
      openBlob: (repo, digest, o) => client.openBlob(repo, digest, { ...(o?.size !== undefined ? { size: o.size } : {}), ...(o?.verify !== undefined ? { verify: o.verify } : {}) }),
    };
  };

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
