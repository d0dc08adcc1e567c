import { createDecipheriv } from "node:crypto";
import { isIP } from "node:net";
import { quote } from "./validators";
import { isMapping } from "./yaml";

/*
 * What sealer's Clusterfile decoder itself checks on a Cluster document (pkg/clusterfile,
 * checkAndFillCluster, and the JSON decoding of its fields), and what it does with
 * `ssh.encrypted`. Problems are at sealer's paths (`spec.registry.externalRegistry.domain`).
 */

export interface SealerNote {
  path: PropertyKey[];
  message: string;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (isMapping(v) ? v : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** The env entries sealer fills in itself: a Clusterfile's own are dropped (sealer matches them as prefixes). */
const DERIVED_ENV = [
  "LocalRegistryDomain",
  "LocalRegistryPort",
  "LocalRegistryURL",
  "ExternalRegistryDomain",
  "ExternalRegistryPort",
  "ExternalRegistryURL",
  "RegistryDomain",
  "RegistryPort",
  "RegistryURL",
  "ContainerRuntime",
  "DNSSvcIP",
  "KubeSvcIP",
];

/**
 * sealer's `SvcCIDR` rule: the first of its comma-separated ranges must be a CIDR holding a 10th
 * address, because sealer takes the API service IP (the 1st) and the cluster DNS IP (the 10th)
 * from it. Returns the problem, or undefined.
 */
export function svcCidrProblem(value: string): string | undefined {
  const first = value.split(",")[0] ?? "";
  const range = cidrSize(first);
  if (range === undefined) return `${quote(first)} is not a CIDR such as 10.96.0.0/16 (sealer derives the API service and cluster DNS IPs from it)`;
  if (range < 11n) return `${quote(first)} is too small: sealer takes the cluster DNS IP as the range's 10th address`;
  return undefined;
}

/** The number of addresses from the range's base up to its end, or undefined for text that is not a CIDR. */
function cidrSize(text: string): bigint | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const addr = text.slice(0, slash);
  const bitsText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  const family = isIP(addr);
  const width = family === 4 ? 32 : family === 6 ? 128 : 0;
  return width > 0 && bits <= width ? 1n << BigInt(width - bits) : undefined;
}

/** An env list as sealer reads it: `K=V` split at the first "=", entries without one dropped. */
function envEntries(env: unknown): { key: string; value: string; index: number }[] {
  return list(env).flatMap((e, index) => {
    if (typeof e !== "string") return [];
    const eq = e.indexOf("=");
    return eq < 0 ? [] : [{ key: e.slice(0, eq), value: e.slice(eq + 1), index }];
  });
}

/** What sealer's decoder refuses in a Cluster document (after its fields decoded). */
export function sealerClusterRejects(doc: unknown): SealerNote[] {
  const spec = obj(obj(doc)["spec"]);
  const out: SealerNote[] = [];
  const registry = obj(spec["registry"]);
  const external = registry["externalRegistry"];
  if (isMapping(external) && (typeof external["domain"] !== "string" || external["domain"] === "")) {
    out.push({
      path: ["spec", "registry", "externalRegistry", "domain"],
      message: "is required: an external registry is named by its domain (sealer refuses it too)",
    });
  }
  const svc = envEntries(spec["env"]).filter((e) => e.key === "SvcCIDR" && e.value !== "");
  const last = svc[svc.length - 1];
  const problem = last === undefined ? undefined : svcCidrProblem(last.value);
  if (last !== undefined && problem !== undefined) out.push({ path: ["spec", "env", last.index], message: `SvcCIDR: ${problem}` });
  list(spec["hosts"]).forEach((h, g) =>
    list(obj(h)["ips"]).forEach((ip, i) => {
      // Go's net.IP refuses anything but an IPv4 or IPv6 literal when the file is decoded.
      if (typeof ip === "string" && isIP(ip) === 0) out.push({ path: ["spec", "hosts", g, "ips", i], message: `${quote(ip)} is not an IPv4 or IPv6 address` });
    }),
  );
  return out;
}

/** What sealer reads but ignores or fills in itself: worth a warning. */
export function sealerClusterWarnings(doc: unknown): SealerNote[] {
  const spec = obj(obj(doc)["spec"]);
  const out: SealerNote[] = [];
  const check = (env: unknown, path: PropertyKey[]): void => {
    list(env).forEach((e, i) => {
      if (typeof e !== "string") return;
      if (!e.includes("=")) out.push({ path: [...path, i], message: `${quote(e)} is not KEY=VALUE: ignored (sealer drops it too)` });
      // sealer filters the cluster's env only: a host group's RegistryURL=... is kept, over the derived value.
      if (path.length > 2) return;
      const derived = DERIVED_ENV.find((d) => e.startsWith(d));
      if (derived !== undefined) out.push({ path: [...path, i], message: `${derived} is set by sealer from the Clusterfile, not by env: ignored` });
    });
  };
  check(spec["env"], ["spec", "env"]);
  list(spec["hosts"]).forEach((h, g) => check(obj(h)["env"], ["spec", "hosts", g, "env"]));
  for (const e of envEntries(spec["env"])) {
    if (e.key === "PodCIDR" && e.value !== "" && cidrSize(e.value.split(",")[0] ?? "") === undefined) {
      out.push({
        path: ["spec", "env", e.index],
        message: `PodCIDR: ${quote(e.value)} is not a CIDR: kubeadm will refuse it (sealer reads it and fails later)`,
      });
    }
  }
  list(spec["cmd_args"]).forEach((a, i) => {
    if (typeof a === "string" && !a.includes("=")) out.push({ path: ["spec", "cmd_args", i], message: `${quote(a)} is not KEY=VALUE: ignored` });
  });
  return out;
}

/**
 * The env without the entries sealer drops: no "=", or (in the cluster's `spec.env` only) one it
 * sets itself — a host group's env is merged over those as written, so it may set them.
 */
export function sealerEnv(env: unknown, where: "cluster" | "host-group" = "cluster"): unknown {
  if (!Array.isArray(env)) return env;
  const derived = (e: string) => where === "cluster" && DERIVED_ENV.some((d) => e.startsWith(d));
  return env.filter((e) => typeof e !== "string" || (e.includes("=") && !derived(e)));
}

/*
 * sealer's `ssh.encrypted: true`: `passwd` is AES-256-CBC of the password under a key written
 * in sealer's source (utils/hash/aes.go), its first 16 bytes as IV, PKCS#7 padding, base64.
 * Anyone with sealer's source can decrypt it: it hides the password from a glance, not from a
 * reader of the file. sealant reads it so sealer's files work unchanged, and says so.
 */
const SEALER_AES_KEY_B64 = "ZU9WbzRMVXRQZ2pzTGowR2hNWUpIZjRkWld4aWVRWko=";

/** The password sealer would use, or undefined when the text is not sealer's encryption of one. */
export function decryptSealerPassword(text: string): string | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  const key = Buffer.from(SEALER_AES_KEY_B64, "base64");
  const data = Buffer.from(text, "base64");
  if (data.length === 0 || data.length % 16 !== 0) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-cbc", key, key.subarray(0, 16));
    return Buffer.concat([decipher.update(data), decipher.final()]).toString("utf8");
  } catch {
    return undefined;
  }
}

export const ENCRYPTED_NOTE =
  "sealer's encrypted password, decrypted with the key in sealer's source: anyone can do the same, so it is not secret; keep the password out of the file instead (a Pulumi secret, an env variable read by your program, or ssh.pk with a key file)";
