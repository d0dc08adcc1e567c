import { isDigest, type Digest } from "./digest";

export const DEFAULT_REGISTRY = "docker.io";
export const DEFAULT_TAG = "latest";

/**
 * A parsed, normalised image reference, following Docker's conventions: a missing registry
 * is docker.io, a single-component docker.io path gets `library/`, a missing tag is latest
 * unless a digest pins the image.
 */
export interface Reference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: Digest;
}

// From the distribution reference grammar.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$/;

export class InvalidReferenceError extends Error {
  constructor(ref: string, why: string) {
    super(`invalid image reference "${ref}": ${why}`);
    this.name = "InvalidReferenceError";
  }
}

export function parseReference(input: string): Reference {
  const ref = input.trim();
  if (ref === "") throw new InvalidReferenceError(input, "it is empty");
  let rest = ref;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw new InvalidReferenceError(input, `"${d}" is not a sha256 digest`);
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new InvalidReferenceError(input, `tag "${tag}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  let registry = DEFAULT_REGISTRY;
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase()) {
      registry = first;
      path = rest.slice(slash + 1);
      if (!DOMAIN.test(registry)) throw new InvalidReferenceError(input, `"${registry}" is not a valid registry host[:port]`);
      const port = /:([0-9]+)$/.exec(registry)?.[1];
      if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65535)) throw new InvalidReferenceError(input, `port ${port} is not 1-65535`);
    }
  }
  if (registry === "index.docker.io" || registry === "registry-1.docker.io") registry = DEFAULT_REGISTRY;
  if (path === "") throw new InvalidReferenceError(input, "the repository name is empty");
  // The distribution spec's limit: registries refuse longer names, so say it before any request.
  if (path.length > 255) throw new InvalidReferenceError(`${input.slice(0, 60)}…`, `the repository name is ${path.length} characters (at most 255)`);
  for (const component of path.split("/")) {
    if (!PATH_COMPONENT.test(component)) {
      throw new InvalidReferenceError(input, `repository component "${component}" must be lowercase letters, digits and separators (. _ __ -)`);
    }
  }
  if (registry === DEFAULT_REGISTRY && !path.includes("/")) path = `library/${path}`;
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  const out: Reference = { registry, repository: path };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** The fully qualified form, e.g. `docker.io/library/nginx:1.25` or `quay.io/x/y@sha256:...`. */
export function formatReference(ref: Reference): string {
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** Normalises any accepted spelling to the fully qualified form. */
export function normaliseReference(input: string): string {
  return formatReference(parseReference(input));
}

/** `registry/repository` without tag or digest. */
export function repositoryName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** What to ask a registry for: the digest when pinned, else the tag. */
export function referenceSelector(ref: Reference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

export function withDigest(ref: Reference, digest: Digest): Reference {
  const out: Reference = { registry: ref.registry, repository: ref.repository, digest };
  if (ref.tag !== undefined) out.tag = ref.tag;
  return out;
}

/**
 * Loopback registries speak plain HTTP by Docker's convention; anything else is HTTPS unless
 * the user says --insecure.
 */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
