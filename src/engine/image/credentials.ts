import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { withLock } from "../util/lock";

/** A username and password (or token used as password) for one registry. */
export interface Credentials {
  username: string;
  password: string;
  /**
   * A registry token of the user's own (e.g. from a registries file), sent as
   * `Authorization: Bearer` instead of logging in with username and password (then empty).
   */
  token?: string;
}

/** Where a registry client gets credentials from; `registry` is the user-facing host[:port] (docker.io for Docker Hub). */
export interface CredentialSource {
  get(registry: string): Promise<Credentials | undefined>;
}

/** A source that always answers with the same credentials (or none), e.g. from a Pulumi secret or `-u/-p`. */
export function staticCredentials(credentials: Credentials | undefined): CredentialSource {
  return { get: async () => credentials };
}

/** A source that answers per registry from a map keyed by host[:port]. */
export function credentialMap(map: Record<string, Credentials>): CredentialSource {
  const normalised = new Map(Object.entries(map).map(([k, v]) => [registryKey(k), v]));
  return { get: async (registry) => normalised.get(registryKey(registry)) };
}

const DOCKER_HUB_KEYS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]);

/**
 * The canonical key a registry's credentials are stored under: host[:port], lower-cased, no
 * scheme or path; every spelling of Docker Hub (including `https://index.docker.io/v1/`) is docker.io.
 */
export function registryKey(registry: string): string {
  let s = registry.trim();
  s = s.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  const slash = s.indexOf("/");
  if (slash >= 0) s = s.slice(0, slash);
  s = s.toLowerCase();
  if (DOCKER_HUB_KEYS.has(s)) return "docker.io";
  return s;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

interface AuthFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [other: string]: unknown;
}

export interface CredentialStoreOptions {
  /** Receives non-fatal explanations (e.g. credentials held by a docker credential helper). Default: process.emitWarning. */
  warn?: (message: string) => void;
}

/**
 * sealant's credential store: `$SEALANT_HOME/auth.json` (`{"auths":{"host:port":{"auth":"base64(u:p)"}}}`,
 * mode 0600, written atomically), falling back to Docker's `config.json` (`$DOCKER_CONFIG` or
 * `~/.docker`) for lookups. Docker credential helpers are not run.
 */
export class CredentialStore implements CredentialSource {
  readonly authFile: string;
  readonly dockerConfigFile: string;
  private readonly warn: (message: string) => void;
  private readonly warned = new Set<string>();

  constructor(
    readonly home: string,
    env: NodeJS.ProcessEnv = process.env,
    opts: CredentialStoreOptions = {},
  ) {
    this.authFile = path.join(home, "auth.json");
    const dockerDir = env["DOCKER_CONFIG"] || path.join(env["HOME"] || os.homedir(), ".docker");
    this.dockerConfigFile = path.join(dockerDir, "config.json");
    this.warn = opts.warn ?? ((m) => process.emitWarning(m, "SealantCredentialWarning"));
  }

  async get(registry: string): Promise<Credentials | undefined> {
    const key = registryKey(registry);
    const own = await readAuthFile(this.authFile);
    const fromOwn = own && findEntry(own, key, this.authFile);
    if (fromOwn) return fromOwn;
    const docker = await readAuthFile(this.dockerConfigFile);
    if (!docker) return undefined;
    const fromDocker = findEntry(docker, key, this.dockerConfigFile);
    if (fromDocker) return fromDocker;
    const helper = docker.credHelpers?.[key] ?? (key === "docker.io" ? docker.credHelpers?.["index.docker.io"] : undefined);
    const store = docker.credsStore;
    if ((helper || store) && !this.warned.has(key)) {
      this.warned.add(key);
      const what = helper ? `credential helper "docker-credential-${helper}" (credHelpers)` : `credential store "docker-credential-${store}" (credsStore)`;
      this.warn(
        `credentials for ${key} may be held by the docker ${what} in ${this.dockerConfigFile}; ` +
          `sealant does not run credential helpers, so it continues without credentials. Run "sealant login ${key}" to store them for sealant.`,
      );
    }
    return undefined;
  }

  /** Stores credentials (after the caller verified them, e.g. with RegistryClient.checkLogin). */
  async login(registry: string, username: string, password: string): Promise<void> {
    const key = registryKey(registry);
    if (key === "") throw new Error("login: the registry name is empty");
    if (username === "") throw new Error(`login ${key}: the username is empty`);
    if (username.includes(":")) throw new Error(`login ${key}: the username must not contain ":"`);
    if (password === "") throw new Error(`login ${key}: the password is empty`);
    await this.locked(async () => {
      const file = (await readAuthFile(this.authFile)) ?? {};
      const auths = { ...(file.auths ?? {}) };
      for (const k of Object.keys(auths)) if (registryKey(k) === key) delete auths[k];
      auths[key] = { auth: Buffer.from(`${username}:${password}`, "utf8").toString("base64") };
      await writeAuthFile(this.authFile, { ...file, auths });
    });
  }

  /** Removes stored credentials; false when there were none in sealant's own file. */
  async logout(registry: string): Promise<boolean> {
    const key = registryKey(registry);
    return this.locked(async () => {
      const file = await readAuthFile(this.authFile);
      if (!file?.auths) return false;
      const auths = { ...file.auths };
      let removed = false;
      for (const k of Object.keys(auths)) {
        if (registryKey(k) === key) {
          delete auths[k];
          removed = true;
        }
      }
      if (removed) await writeAuthFile(this.authFile, { ...file, auths });
      return removed;
    });
  }

  /** auth.json is read, changed and written back: two logins at once must not lose one. */
  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    await fs.mkdir(this.home, { recursive: true, mode: 0o700 });
    return withLock(this.home, fn);
  }
}

async function readAuthFile(file: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`reading credentials from ${file}: ${(err as Error).message}`);
  }
  if (text.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    // V8's message quotes the text around the fault, which here may be a password: keep only where it is.
    const where = /at position \d+(?: \(line \d+ column \d+\))?/.exec((err as Error).message)?.[0];
    throw new Error(`reading credentials from ${file}: invalid JSON${where ? ` ${where}` : ""}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`reading credentials from ${file}: expected a JSON object`);
  }
  const out = parsed as AuthFile;
  if (out.auths !== undefined && (typeof out.auths !== "object" || out.auths === null || Array.isArray(out.auths))) {
    throw new Error(`reading credentials from ${file}: "auths" must be an object`);
  }
  return out;
}

function findEntry(file: AuthFile, key: string, source: string): Credentials | undefined {
  if (!file.auths) return undefined;
  // An exact key wins over other spellings of the same registry.
  const keys = Object.keys(file.auths).sort((a, b) => Number(b === key) - Number(a === key));
  for (const k of keys) {
    if (registryKey(k) !== key) continue;
    const entry = file.auths[k];
    if (!entry || typeof entry !== "object") continue;
    const creds = decodeEntry(entry, k, source);
    if (creds) return creds;
  }
  return undefined;
}

function decodeEntry(entry: AuthEntry, key: string, source: string): Credentials | undefined {
  if (typeof entry.auth === "string" && entry.auth !== "") {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon <= 0) throw new Error(`reading credentials from ${source}: the "auth" entry for ${key} is not base64 of "username:password"`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof entry.username === "string" && entry.username !== "" && typeof entry.password === "string") {
    return { username: entry.username, password: entry.password };
  }
  return undefined;
}

async function writeAuthFile(file: string, content: AuthFile): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.auth.json.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await fs.open(tmp, "wx", 0o600);
  try {
    await handle.writeFile(JSON.stringify(content, null, 2) + "\n", "utf8");
    await handle.chmod(0o600);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}
