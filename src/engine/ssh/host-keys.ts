/**
 * Host-key verification: SHA256 fingerprints, OpenSSH known_hosts files (plain, hashed `|1|`
 * and `[host]:port` names, wildcard and negated patterns, `@revoked`), and the three policies:
 * - `strict` (default): only pinned fingerprints or known_hosts entries are trusted;
 * - `accept-new`: an unknown host's key is recorded (atomically) in the named known_hosts
 *   file on first use; a changed key is refused as loudly as under `strict`;
 * - `insecure`: anything is accepted (an explicit opt-out, for throwaway test hosts).
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { mkdir, readFile, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { writeFileAtomic } from "../util/fs";
import { withLock } from "../util/lock";
import { HostKeyError, type HostKeyInfo } from "./errors";

export type HostKeyPolicy = "strict" | "accept-new" | "insecure";

export interface HostKeyOptions {
  /** @default "strict" */
  policy?: HostKeyPolicy;
  /** Trusted key fingerprints, `SHA256:<base64>` as `ssh-keygen -lf` prints them. */
  fingerprints?: readonly string[];
  /**
   * known_hosts files whose entries are trusted (a missing file counts as empty). Under
   * `accept-new` the first one is where new keys are recorded.
   */
  knownHosts?: string | readonly string[];
}

/** `SHA256:` + unpadded base64 of the key blob's SHA-256, as OpenSSH prints it. */
export function keyFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

/** The key type named inside an SSH public key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return "unknown";
  const len = keyBlob.readUInt32BE(0);
  if (len > keyBlob.length - 4 || len > 64) return "unknown";
  return keyBlob.subarray(4, 4 + len).toString("latin1");
}

export function hostKeyInfo(keyBlob: Buffer): HostKeyInfo {
  return { keyType: keyTypeOf(keyBlob), fingerprint: keyFingerprint(keyBlob) };
}

export interface KnownHostEntry {
  file: string;
  line: number;
  marker?: "revoked" | "cert-authority";
  /** The host field as written: comma-separated patterns, or one `|1|salt|hash`. */
  hosts: string;
  keyType: string;
  key: Buffer;
}

/** Parses an OpenSSH known_hosts file; blank, comment and malformed lines are skipped. */
export function parseKnownHosts(text: string, file = "known_hosts"): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry["marker"];
    if (fields[0]!.startsWith("@")) {
      const m = fields.shift()!;
      if (m === "@revoked") marker = "revoked";
      else if (m === "@cert-authority") marker = "cert-authority";
      else return;
    }
    const [hosts, keyType, b64] = fields;
    if (hosts === undefined || keyType === undefined || b64 === undefined) return;
    const key = Buffer.from(b64, "base64");
    if (key.length === 0 || keyTypeOf(key) !== keyType) return;
    out.push({ file, line: i + 1, ...(marker ? { marker } : {}), hosts, keyType, key });
  });
  return out;
}

/** The name a host is filed under in known_hosts: `host` on port 22, else `[host]:port`. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host.toLowerCase() : `[${host.toLowerCase()}]:${port}`;
}

/** Does a known_hosts host field name this host and port? */
export function entryMatchesHost(hosts: string, host: string, port: number): boolean {
  const name = knownHostName(host, port);
  if (hosts.startsWith("|1|")) {
    const [, , salt64, hash64] = hosts.split("|");
    if (salt64 === undefined || hash64 === undefined) return false;
    const expected = Buffer.from(hash64, "base64");
    const actual = createHmac("sha1", Buffer.from(salt64, "base64")).update(name).digest();
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }
  let matched = false;
  for (const raw of hosts.split(",")) {
    const negated = raw.startsWith("!");
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (!globMatch(pattern, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function globMatch(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === name;
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`).test(name);
}

/** One known_hosts line for a host's key (plain host name). */
export function formatKnownHostsLine(host: string, port: number, keyBlob: Buffer): string {
  return `${knownHostName(host, port)} ${keyTypeOf(keyBlob)} ${keyBlob.toString("base64")}`;
}

function knownHostsFiles(opts: HostKeyOptions): string[] {
  const k = opts.knownHosts;
  return (k === undefined ? [] : typeof k === "string" ? [k] : [...k]).map((f) => resolve(f));
}

async function readKnownHosts(file: string): Promise<KnownHostEntry[] | undefined> {
  try {
    return parseKnownHosts(await readFile(file, "utf8"), file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`reading known_hosts ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function normalizeFingerprint(fp: string): string {
  const t = fp.trim().replace(/=+$/, "");
  return t.startsWith("SHA256:") ? t : `SHA256:${t}`;
}

/** Checks the options once, before any connection: policies that need a file must name one. */
export function validateHostKeyOptions(opts: HostKeyOptions): void {
  const policy = opts.policy ?? "strict";
  if (!["strict", "accept-new", "insecure"].includes(policy)) {
    throw new Error(`hostKey.policy ${JSON.stringify(policy)} is not one of "strict", "accept-new", "insecure"`);
  }
  if (policy === "accept-new" && knownHostsFiles(opts).length === 0) {
    throw new Error(`hostKey.policy "accept-new" needs hostKey.knownHosts: the known_hosts file to record new host keys in`);
  }
  for (const fp of opts.fingerprints ?? []) {
    if (!/^(SHA256:)?[A-Za-z0-9+/]{43}=?$/.test(fp.trim())) {
      throw new Error(
        `hostKey.fingerprints: ${JSON.stringify(fp)} is not a SHA256 fingerprint (expected SHA256:<43 base64 characters>, as ssh-keygen -lf prints)`,
      );
    }
  }
}

const DEFAULT_HOST_KEY_ALGORITHMS = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
];

/**
 * Host key algorithms in the order to offer them: the types already known for this host
 * first (as OpenSSH does), so a host with several keys presents the one on file.
 */
export async function hostKeyAlgorithmsFor(host: string, port: number, opts: HostKeyOptions): Promise<string[]> {
  if ((opts.policy ?? "strict") === "insecure") return DEFAULT_HOST_KEY_ALGORITHMS;
  const types = new Set<string>();
  for (const file of knownHostsFiles(opts)) {
    for (const e of (await readKnownHosts(file)) ?? []) {
      if (e.marker === undefined && entryMatchesHost(e.hosts, host, port)) types.add(e.keyType);
    }
  }
  const first = DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => types.has(a) || (types.has("ssh-rsa") && a.startsWith("rsa-sha2-")));
  return [...first, ...DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => !first.includes(a))];
}

/**
 * Decides whether `keyBlob`, presented by `host:port`, is trusted; throws a HostKeyError
 * saying what to do when it is not. Under `accept-new` an unknown key is recorded first.
 * `display` is how the host is named in messages.
 */
export async function verifyHostKey(host: string, port: number, keyBlob: Buffer, opts: HostKeyOptions, display = host): Promise<void> {
  const policy = opts.policy ?? "strict";
  if (policy === "insecure") return;
  const files = knownHostsFiles(opts);
  const verdict = await judge(host, port, keyBlob, opts, files, display);
  if (verdict === "trusted") return;
  if (policy === "accept-new") {
    await recordHostKey(files[0]!, host, port, keyBlob, opts, display);
    return;
  }
  const presented = hostKeyInfo(keyBlob);
  const fileList = files.length === 0 ? "no known_hosts file given" : `known_hosts: ${files.join(", ")}`;
  const hostArg = port === 22 ? host : `-p ${port} ${host}`;
  throw new HostKeyError(
    display,
    presented,
    "unknown",
    `host key not trusted: the host presents ${presented.keyType} ${presented.fingerprint}, which is neither pinned nor in known_hosts (${fileList}). ` +
      `If this is the right host, pin it (hostKey.fingerprints: ["${presented.fingerprint}"]), ` +
      `add it to a known_hosts file (ssh-keyscan ${hostArg} >> FILE, then compare ssh-keygen -lf FILE with the host's own ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), ` +
      `or set hostKey.policy "accept-new" to record it on first use`,
  );
}

/** "trusted", "unknown", or throws for a changed or revoked key. */
async function judge(host: string, port: number, keyBlob: Buffer, opts: HostKeyOptions, files: string[], display: string): Promise<"trusted" | "unknown"> {
  const presented = hostKeyInfo(keyBlob);
  const entries: KnownHostEntry[] = [];
  for (const file of files) {
    for (const e of (await readKnownHosts(file)) ?? []) if (entryMatchesHost(e.hosts, host, port)) entries.push(e);
  }
  const revoked = entries.find((e) => e.marker === "revoked" && e.key.equals(keyBlob));
  if (revoked) {
    throw new HostKeyError(
      display,
      presented,
      "revoked",
      `host key ${presented.keyType} ${presented.fingerprint} is marked @revoked in ${revoked.file}:${revoked.line}; refusing to connect`,
    );
  }
  const plain = entries.filter((e) => e.marker === undefined);
  const pins = (opts.fingerprints ?? []).map(normalizeFingerprint);
  if (plain.some((e) => e.key.equals(keyBlob)) || pins.includes(presented.fingerprint)) return "trusted";
  const expected = [
    ...plain.map((e) => ({ ...hostKeyInfo(e.key), source: `${e.file}:${e.line}` })),
    ...pins.map((fingerprint) => ({ keyType: "pinned", fingerprint, source: "hostKey.fingerprints" })),
  ];
  if (expected.length === 0) return "unknown";
  const old = expected.map((k) => `${k.keyType === "pinned" ? "" : `${k.keyType} `}${k.fingerprint} (${k.source})`).join(", ");
  const fix =
    plain.length > 0
      ? `remove the old key (ssh-keygen -R "${knownHostName(host, port)}" -f ${plain[0]!.file}) and connect again`
      : `update hostKey.fingerprints to "${presented.fingerprint}"`;
  throw new HostKeyError(
    display,
    presented,
    "changed",
    `WARNING: HOST KEY CHANGED: the host now presents ${presented.keyType} ${presented.fingerprint}, but the key on record is ${old}. ` +
      `Someone could be intercepting the connection (man-in-the-middle), or the host was reinstalled. ` +
      `Refusing to connect. If the change is expected, ${fix}`,
    expected,
  );
}

/**
 * Appends the host's key to `file` under a lock, re-checking first: another connection may
 * have recorded this host meanwhile (the same key is fine; a different one is a change).
 * The file is rewritten atomically (temp + rename), keeping its mode.
 */
async function recordHostKey(file: string, host: string, port: number, keyBlob: Buffer, opts: HostKeyOptions, display: string): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true });
  await withLock(dir, async () => {
    if ((await judge(host, port, keyBlob, { ...opts, fingerprints: [] }, [file], display)) === "trusted") return;
    let text = "";
    let mode = 0o644;
    try {
      text = await readFile(file, "utf8");
      mode = (await stat(file)).mode & 0o777;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    if (text !== "" && !text.endsWith("\n")) text += "\n";
    await writeFileAtomic(file, `${text}${formatKnownHostsLine(host, port, keyBlob)}\n`, mode);
  });
}
