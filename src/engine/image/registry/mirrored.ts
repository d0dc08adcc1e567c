import type { Readable } from "node:stream";
import type { Digest } from "../digest";
import type { Descriptor } from "../types";
import { RegistryClient } from "./client";
import { RegistryError } from "./errors";
import type { ManifestResponse, OpenBlobOptions, RegistryClientOptions } from "./options";

/**
 * A registry read through its mirrors first: every pull-side request (manifests, blobs, tags)
 * goes to the mirrors in order and then to the registry itself, as containerd does with a
 * hosts.toml's hosts and its server. A mirror that lacks something or fails is passed over; one
 * that cannot be reached at all is skipped for the rest of this client's life, so a dead mirror
 * costs its retries once, not once per blob. Pushes go to the registry itself (mirrors are
 * read-only copies).
 */
export class MirroredClient extends RegistryClient {
  private readonly down = new Set<RegistryClient>();

  constructor(
    registry: string,
    opts: RegistryClientOptions,
    private readonly mirrors: RegistryClient[],
  ) {
    super(registry, opts);
    this.log = opts.log;
  }

  private readonly log: ((message: string) => void) | undefined;

  /** The mirrors, in the order they are tried (tests and messages). */
  get mirrorHosts(): string[] {
    return this.mirrors.map((m) => m.host);
  }

  override close(): void {
    for (const m of this.mirrors) m.close();
    super.close();
  }

  override getManifest(repo: string, reference: string, accept?: string, signal?: AbortSignal): Promise<ManifestResponse> {
    return this.first(
      `manifest ${repo}:${reference}`,
      (c) => c.getManifest(repo, reference, accept, signal),
      () => super.getManifest(repo, reference, accept, signal),
    );
  }

  override headManifest(repo: string, reference: string, accept?: string, signal?: AbortSignal): Promise<Descriptor | undefined> {
    return this.first(
      `manifest ${repo}:${reference}`,
      async (c) => (await c.headManifest(repo, reference, accept, signal)) ?? missing(),
      () => super.headManifest(repo, reference, accept, signal),
    );
  }

  override openBlob(repo: string, digest: Digest, opts: OpenBlobOptions = {}): Promise<Readable> {
    return this.first(
      `blob ${digest}`,
      (c) => c.openBlob(repo, digest, opts),
      () => super.openBlob(repo, digest, opts),
    );
  }

  override fetchBlob<T>(repo: string, digest: Digest, opts: OpenBlobOptions, consume: (stream: Readable) => Promise<T>): Promise<T> {
    return this.first(
      `blob ${digest}`,
      (c) => c.fetchBlob(repo, digest, opts, consume),
      () => super.fetchBlob(repo, digest, opts, consume),
    );
  }

  override async listTags(repo: string, signal?: AbortSignal): Promise<string[]> {
    return this.first(
      `tags of ${repo}`,
      async (c) => {
        const tags = await c.listTags(repo, signal);
        return tags.length > 0 ? tags : missing();
      },
      () => super.listTags(repo, signal),
    );
  }

  private async first<T>(what: string, onMirror: (c: RegistryClient) => Promise<T>, onRegistry: () => Promise<T>): Promise<T> {
    for (const mirror of this.mirrors) {
      if (this.down.has(mirror)) continue;
      try {
        return await onMirror(mirror);
      } catch (err) {
        if ((err as Error).name === "AbortError") throw err;
        if (err instanceof RegistryError && err.status === undefined) this.down.add(mirror);
        this.log?.(`${this.registry}: mirror ${mirror.host} could not serve ${what} (${reason(err)}); trying the next`);
      }
    }
    return onRegistry();
  }
}

class NotOnMirror extends Error {}

function missing(): never {
  throw new NotOnMirror("not found");
}

function reason(err: unknown): string {
  if (err instanceof RegistryError && err.status !== undefined) return `HTTP ${err.status}`;
  return (err as Error).message.split("\n")[0]!.slice(0, 200);
}
