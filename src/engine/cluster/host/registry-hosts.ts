/**
 * The user's registry model (`registry.registries`, see image/registry-config.ts) as containerd's
 * hosts.toml says it, per certs.d directory: pure text, written by whichever writer owns that
 * directory (the cluster's registry, a pull-through cache or user-registries.ts), so a registry
 * the cluster also serves gets ONE file, the cluster's entries first and the user's after them.
 *
 *   mirrors.<registry>.endpoint   → `[host."<scheme>://<endpoint>"]` (pull, resolve), in order;
 *                                   plain http for an `http://` endpoint or one whose configs say plain_http
 *   configs.<endpoint host>.tls   → `ca` (a CA file beside the hosts.toml) / `skip_verify` on that entry
 *   configs.<registry> (no mirror) → the registry's own `server` with its scheme, `ca`, `skip_verify`
 *   "*"                           → containerd's `_default` directory (registries without a directory of their own)
 */
import { registryKey } from "../../image/credentials";
import { mirrorsOf, settingsOf, type RegistryConfig, type RegistryHostSettings } from "../../image/registry-config";

/** containerd's certs.d directory for registries that have none of their own. */
export const DEFAULT_DIR = "_default";

export interface UserEntries {
  /** Top-level lines (`server`, `ca`, `skip_verify`): how to reach the registry itself; [] when the model says nothing. */
  server: string[];
  /** `[host]` tables of the registry's mirrors, in the order they are tried. */
  hosts: string[];
  /** CA files to write beside the hosts.toml: file name → PEM. */
  cas: Record<string, string>;
  /** What hosts.toml cannot say, in the user's terms. */
  warnings: string[];
}

/** The certs.d directory of a registry name of the model ("*" → `_default`). */
export function certsDirName(name: string): string {
  return name === "*" ? DEFAULT_DIR : registryKey(name);
}

/** The directories the model needs: every mirrored registry, and every registry whose configs change how it is reached. */
export function userDirs(config: RegistryConfig): string[] {
  const dirs = new Set(Object.keys(config.mirrors).map(certsDirName));
  for (const [name, s] of Object.entries(config.hosts)) if (reachSettings(s)) dirs.add(certsDirName(name));
  return [...dirs].sort();
}

/** The CA file name for a host beside a hosts.toml (every sealant CA file there is `sealant-*.crt`). */
export function caFileName(host: string): string {
  return `sealant-ca-${host.replace(/[^A-Za-z0-9.-]/g, "_")}.crt`;
}

/**
 * What the model says for one certs.d directory (`dir`: `docker.io`, `host:port`, `_default`);
 * `path` is where that directory is on the host (for `ca` lines).
 */
export function userEntries(config: RegistryConfig, dir: string, path: string): UserEntries {
  const out: UserEntries = { server: [], hosts: [], cas: {}, warnings: [] };
  const isDefault = dir === DEFAULT_DIR;
  const mirrors = isDefault ? (config.mirrors["*"] ?? []) : mirrorsOf(config, dir);
  for (const m of mirrors) {
    const s = settingsOf(config, m.host);
    const scheme = m.scheme === "http" || s.plainHttp ? "http" : "https";
    out.hosts.push(
      "",
      `[host.${JSON.stringify(`${scheme}://${m.host}`)}]`,
      '  capabilities = ["pull", "resolve"]',
      ...tlsLines(s, scheme, m.host, path, out, "  "),
    );
  }
  const own = isDefault ? (config.hosts["*"] ?? {}) : settingsOf(config, dir);
  if (reachSettings(own)) {
    if (isDefault) {
      if (own.plainHttp)
        out.warnings.push('configs["*"].plain_http: containerd cannot reach every registry over plain HTTP; name each registry (configs.<host>.plain_http)');
      out.server.push(...tlsLines(own, "https", "default", path, out, ""));
    } else {
      const scheme = own.plainHttp ? "http" : "https";
      out.server.push(
        `server = ${JSON.stringify(`${scheme}://${dir === "docker.io" ? "registry-1.docker.io" : dir}`)}`,
        ...tlsLines(own, scheme, dir, path, out, ""),
      );
    }
  }
  return out;
}

function reachSettings(s: RegistryHostSettings): boolean {
  return s.ca !== undefined || s.insecureSkipVerify === true || s.plainHttp === true;
}

function tlsLines(s: RegistryHostSettings, scheme: string, host: string, path: string, out: UserEntries, indent: string): string[] {
  if (scheme === "http") return [];
  const lines: string[] = [];
  if (s.ca !== undefined) {
    const name = caFileName(host);
    out.cas[name] = s.ca.endsWith("\n") ? s.ca : `${s.ca}\n`;
    lines.push(`${indent}ca = ${JSON.stringify(`${path}/${name}`)}`);
  }
  if (s.insecureSkipVerify) lines.push(`${indent}skip_verify = true`);
  return lines;
}
