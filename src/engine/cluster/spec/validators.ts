import { isIPv4, isIPv6 } from "node:net";

/**
 * Checks shared by sealant's own spec and the sealer Clusterfile import. Each returns the
 * problem in words (with the bad value) or undefined when the value is fine.
 */

export type IpFamily = "IPv4" | "IPv6";

/** A value as a message shows it: in double quotes, control characters escaped (a newline is `\\n`, never a line break). */
export function quote(value: string): string {
  // JSON escapes C0 controls only: DEL, C1 (NEL...) and the line/paragraph separators too.
  return JSON.stringify(value).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: never in a value that lands in a host file. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export function hasControlChars(value: string): boolean {
  return CONTROL.test(value);
}

export function ipFamily(ip: string): IpFamily | undefined {
  if (isIPv4(ip)) return "IPv4";
  if (isIPv6(ip) && !ip.includes("%")) return "IPv6";
  return undefined;
}

/** One spelling per address: IPv6 lower-case and compressed (`fd00:0::1` → `fd00::1`). */
export function canonicalIp(ip: string): string {
  if (ipFamily(ip) !== "IPv6") return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip.toLowerCase();
  }
}

export function ipProblem(ip: string): string | undefined {
  const family = ipFamily(ip);
  if (family === undefined) {
    return ip.includes("%") ? `${quote(ip)} has an IPv6 zone: give the host's address without "%zone"` : `${quote(ip)} is not an IPv4 or IPv6 address`;
  }
  const c = canonicalIp(ip);
  if (c === "0.0.0.0" || c === "::") return `${quote(ip)} is the unspecified address, not a host`;
  return undefined;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** RFC 1123 label: what a cluster name must be (it becomes paths, labels and hostnames). */
export function dnsLabelProblem(name: string): string | undefined {
  if (name.length > 63) return `${quote(name)} is longer than 63 characters (it must be a DNS label)`;
  if (!DNS_LABEL.test(name)) {
    return `${quote(name)} is not a valid DNS label: lower-case letters, digits and "-", starting and ending with a letter or digit`;
  }
  return undefined;
}

const HOSTNAME_LABEL = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;

/**
 * An RFC 1123 host name (`sea.hub`, `registry-1.example.com`): dot-separated labels of letters,
 * digits and "-" (not first or last), each at most 63 characters, 253 in all. What lands in
 * /etc/hosts, certificates and containerd's registry directories.
 */
export function hostnameProblem(name: string): string | undefined {
  const labels = name.split(".");
  if (name === "" || name.length > 253 || labels.some((l) => l.length > 63 || !HOSTNAME_LABEL.test(l))) {
    return `${quote(name)} is not a host name: dot-separated labels of letters, digits and "-" (not first or last), each at most 63 characters (e.g. sea.hub)`;
  }
  return undefined;
}

/** A host name or an IP address (a bastion, a registry's domain). */
export function hostOrIpProblem(value: string): string | undefined {
  if (ipFamily(value) !== undefined) return undefined;
  if (hostnameProblem(value) === undefined) return undefined;
  return `${quote(value)} is neither a host name (letters, digits, "-" and ".", e.g. sea.hub) nor an IP address`;
}

/** A certificate subject alternative name: a host name, a wildcard one (`*.example.com`), or an IP. */
export function subjectAltNameProblem(value: string): string | undefined {
  const name = value.startsWith("*.") ? value.slice(2) : value;
  if (ipFamily(value) !== undefined || hostnameProblem(name) === undefined) return undefined;
  return `${quote(value)} is not a certificate name: a host name (optionally "*." first) or an IP address`;
}

/**
 * An absolute directory on the hosts (the data root): normalised, no "..", not "/", and no
 * whitespace or control characters — it names files and marks sealant's blocks in /etc/hosts.
 */
export function hostDirProblem(path: string): string | undefined {
  if (!path.startsWith("/")) return `${quote(path)} is not an absolute path`;
  if (/[\s]/.test(path) || hasControlChars(path)) return `${quote(path)} contains whitespace or a control character`;
  const segments = path.split("/").filter((x) => x !== "");
  if (segments.length === 0) return `${quote(path)} is the root directory: give a directory of its own, e.g. /var/lib/sealant/<name>/`;
  if (segments.some((x) => x === ".." || x === ".")) return `${quote(path)} has a "." or ".." segment: give it normalised`;
  return undefined;
}

/** An address range `IP/prefix` (`100.64.0.0/10`, `fd00:10::/64`): an IP and a prefix length its family allows. */
export function cidrProblem(value: string): string | undefined {
  const slash = value.indexOf("/");
  const family = slash > 0 ? ipFamily(value.slice(0, slash)) : undefined;
  const bits = slash > 0 ? value.slice(slash + 1) : "";
  const max = family === "IPv6" ? 128 : 32;
  if (family === undefined || !/^\d{1,3}$/.test(bits) || Number(bits) > max) {
    return `${quote(value)} is not an address range: an IP, "/" and a prefix length (e.g. 100.64.0.0/10, fd00:10::/64)`;
  }
  return undefined;
}

/** A registry user name: goes into the htpasswd file (`user:hash`). */
export function registryUserProblem(user: string): string | undefined {
  if (/[:\s]/.test(user) || hasControlChars(user)) return `${quote(user)} is not a user name: no ":", whitespace or control characters`;
  return undefined;
}

/** A password fed to a tool on a host line by line (htpasswd): one line. The value is never shown. */
export function oneLineSecretProblem(secret: string): string | undefined {
  if (/[\r\n\0]/.test(secret)) return "must be one line (no line break or NUL character; the value is not shown)";
  return undefined;
}

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A Kubernetes qualified name (label key, taint key): `[prefix/]name`. */
export function qualifiedNameProblem(key: string, what: string): string | undefined {
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return `${what} ${quote(key)} has an invalid prefix ${quote(prefix)} (a DNS subdomain)`;
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return `${what} ${quote(key)} is not a valid name: at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit (optionally prefixed by "example.com/")`;
  }
  return undefined;
}

/** A Kubernetes label value: empty, or a label name. */
export function labelValueProblem(value: string): string | undefined {
  if (value === "") return undefined;
  if (value.length > 63 || !LABEL_NAME.test(value)) {
    return `${quote(value)} is not a valid label value: at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`;
  }
  return undefined;
}

/** A host role: master, node (worker is the same), registry, or a custom name such as `db`. */
export function roleProblem(role: string): string | undefined {
  if (role.length > 63 || !LABEL_NAME.test(role)) {
    return `role ${quote(role)} is not a valid name (master, node, registry, or a custom name of letters, digits, "-", "_", ".")`;
  }
  return undefined;
}

/** `worker` is sealant's (and k0s') word for sealer's `node`: one spelling in the normalised spec. */
export function normaliseRole(role: string): string {
  return role === "worker" ? "node" : role;
}

export const TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"] as const;
export type TaintEffect = (typeof TAINT_EFFECTS)[number];

export interface Taint {
  key: string;
  value: string;
  effect: TaintEffect;
}

/**
 * Parses Kubernetes taint syntax as sealer and kubectl write it: `key=value:Effect`,
 * `key:Effect` or `key=:Effect`. A removal (`key-`, `key:Effect-`) is a command, not desired
 * state, and is rejected.
 */
export function parseTaint(text: string): Taint | string {
  const t = text.trim();
  if (t.endsWith("-")) return `taint ${quote(text)} is a removal ("-"): list only the taints the host should have`;
  const colon = t.lastIndexOf(":");
  if (colon < 0) return `taint ${quote(text)} has no effect: expected key=value:Effect (Effect is ${TAINT_EFFECTS.join(", ")})`;
  const effect = t.slice(colon + 1);
  const kv = t.slice(0, colon);
  const eq = kv.indexOf("=");
  const key = eq >= 0 ? kv.slice(0, eq) : kv;
  const value = eq >= 0 ? kv.slice(eq + 1) : "";
  if (!(TAINT_EFFECTS as readonly string[]).includes(effect)) {
    return `taint ${quote(text)} has effect ${quote(effect)}: expected one of ${TAINT_EFFECTS.join(", ")}`;
  }
  const keyProblem = qualifiedNameProblem(key, "taint key");
  if (keyProblem !== undefined) return keyProblem;
  const valueProblem = labelValueProblem(value);
  if (valueProblem !== undefined) return `taint ${quote(text)}: value ${valueProblem}`;
  return { key, value, effect: effect as TaintEffect };
}

export function formatTaint(t: Taint): string {
  return t.value === "" ? `${t.key}:${t.effect}` : `${t.key}=${t.value}:${t.effect}`;
}

/** A TCP port, as a number or a decimal string (sealer writes `port: "22"`). */
export function parsePort(v: number | string): number | string {
  const n = typeof v === "number" ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) return `${typeof v === "string" ? quote(v) : String(v)} is not a port number (1-65535)`;
  return n;
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

/** Seconds from a number of seconds or a Go-style duration (`90s`, `5m`, `1h30m`, `500ms`). */
export function parseDuration(v: number | string): number | string {
  if (typeof v === "number") return v > 0 && Number.isFinite(v) ? v : `${v} is not a positive number of seconds`;
  const s = v.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return parseDuration(Number(s));
  const whole = s.replace(DURATION_PART, "");
  let total = 0;
  for (const m of s.matchAll(DURATION_PART)) total += Number(m[1]) * (UNIT_SECONDS[m[2] ?? "s"] ?? 1);
  if (s === "" || whole !== "" || total <= 0) {
    return `${quote(v)} is not a duration: a number of seconds or e.g. "90s", "5m", "1h30m"`;
  }
  return total;
}

/** `SHA256:<base64>` as OpenSSH prints a host key fingerprint (`ssh-keygen -lf`). */
export function fingerprintProblem(fp: string): string | undefined {
  if (/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(fp)) return undefined;
  return `${quote(fp)} is not a host key fingerprint: expected "SHA256:" and 43 base64 characters, as ssh-keygen -lf prints`;
}

/** A POSIX shell variable name: what a command on a host can see in its environment. */
export const POSIX_ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TEMPLATE_ENV_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * An env name: a POSIX shell variable name, or — as sealer allows (`etcd-dir`) — one with "-"
 * or ".", which templates can use (`{{ index . "etcd-dir" }}`) but no shell can export, so
 * commands on hosts do not get it.
 */
export function envKeyProblem(key: string): string | undefined {
  if (key === "") return 'the name before "=" is empty';
  if (key.length > 256 || !TEMPLATE_ENV_NAME.test(key)) {
    return `${quote(key)} is not a variable name: letters, digits and "_" (also "-" and "." for names only templates use), not starting with a digit`;
  }
  return undefined;
}

/**
 * A path inside the cluster image's rootfs (Config `path`, app files): relative, no `..`.
 */
export function rootfsPathProblem(p: string): string | undefined {
  if (p === "") return "the path is empty";
  if (hasControlChars(p)) return `${quote(p)} contains a control character (a line break, a tab...)`;
  if (p.startsWith("/")) return `${quote(p)} is absolute: give a path inside the image's rootfs, e.g. etc/kubeadm.yaml`;
  if (p.split("/").includes("..")) return `${quote(p)} leaves the image's rootfs ("..")`;
  return undefined;
}

/** An app's name (Config `appName`): one directory under application/apps/, so no "/", "." or "..". */
export function appNameProblem(name: string): string | undefined {
  if (name === "" || name === "." || name === ".." || name.includes("/") || hasControlChars(name)) {
    return `${quote(name)} is not an app name (one directory name under application/apps/: no "/", not "." or "..")`;
  }
  return undefined;
}

/** Levenshtein distance, for "did you mean" hints. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** The candidate closest to a misspelled word (case-insensitive; at most two edits, or a third of its length, away). */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}
