import { parseDigest } from "../digest";

const COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const REPOSITORY_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const REGISTRY_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

export interface RegistryName {
  /** The user-facing registry name (docker.io for Docker Hub); credentials are looked up by it. */
  registry: string;
  /** The host[:port] requests go to (registry-1.docker.io for docker.io). */
  host: string;
}

/** Checks a registry name (host[:port], an optional scheme and trailing slashes are dropped) and resolves Docker Hub's aliases. */
export function parseRegistryName(registry: string): RegistryName {
  const name = registry
    .trim()
    .replace(/^https?:\/\//, "")
    .replace(/\/+$/, "");
  if (name.includes("@")) throw new Error("invalid registry name: credentials do not belong in it (use sealant login)");
  if (!REGISTRY_RE.test(name)) throw new Error(`invalid registry "${registry}": expected host[:port]`);
  const user = name === "index.docker.io" || name === "registry-1.docker.io" ? "docker.io" : name;
  return { registry: user, host: user === "docker.io" ? "registry-1.docker.io" : user };
}

export function checkRepository(repo: string): void {
  if (repo.length > 255 || !REPOSITORY_RE.test(repo)) {
    throw new Error(`invalid repository name "${repo}": lowercase path components separated by "/" (a-z 0-9 . _ -)`);
  }
}

/** A tag or a sha256 digest. */
export function checkReference(ref: string): void {
  if (ref.startsWith("sha256:")) {
    parseDigest(ref);
    return;
  }
  if (!TAG_RE.test(ref)) throw new Error(`invalid tag "${ref}": must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
}
