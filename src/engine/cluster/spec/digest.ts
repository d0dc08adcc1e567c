import { createHash, createHmac } from "node:crypto";
import { SECRET_FIELDS } from "./errors";
import type { ClusterSpec } from "./schema";

export interface SpecDigestOptions {
  /**
   * hash: a secret enters the digest only as a keyed hash of its value (a changed password
   * changes the digest, the digest reveals nothing directly); exclude: secrets do not count.
   * @default "hash"
   */
  secrets?: "hash" | "exclude";
}

/**
 * Canonical JSON: keys sorted, undefined dropped, secrets hashed or left out. A key file's
 * location (`privateKeyPath`) does not count when its content (`privateKey`) is there.
 */
function canonical(v: unknown, path: string, key: string, secrets: "hash" | "exclude"): string | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return `[${v.map((x, i) => canonical(x, `${path}[${i}]`, key, secrets) ?? "null").join(",")}]`;
  if (typeof v === "object" && v !== null) {
    const o = v as Record<string, unknown>;
    const parts: string[] = [];
    for (const k of Object.keys(o).sort()) {
      if (k === "privateKeyPath" && typeof o["privateKey"] === "string") continue;
      const p = path === "" ? k : `${path}.${k}`;
      if (SECRET_FIELDS.has(k) && o[k] !== undefined) {
        if (secrets === "exclude") continue;
        const mac = createHmac("sha256", `sealant-spec-digest\0${key}\0${p}`).update(String(o[k])).digest("hex");
        parts.push(`${JSON.stringify(k)}:${JSON.stringify(`hmac-sha256:${mac}`)}`);
        continue;
      }
      const c = canonical(o[k], p, key, secrets);
      if (c !== undefined) parts.push(`${JSON.stringify(k)}:${c}`);
    }
    return `{${parts.join(",")}}`;
  }
  return JSON.stringify(v);
}

function digestOf(v: unknown, key: string, secrets: "hash" | "exclude"): string {
  return `sha256:${createHash("sha256")
    .update(canonical(v, "", key, secrets) ?? "null")
    .digest("hex")}`;
}

/**
 * A stable digest of the normalised spec for state records: the same spec gives the same
 * digest whatever the key order it was written in; any change (a host, an env value, a
 * password) gives another. Secrets are hashed (keyed by the cluster name), never included.
 */
export function specDigest(spec: ClusterSpec, options: SpecDigestOptions = {}): string {
  return digestOf(spec, spec.name, options.secrets ?? "hash");
}

/**
 * The digest of what is rendered onto every host (env, configs, plugins, apps, runtime
 * overrides, registry, host aliases), without the host list and without secrets: a change is
 * a re-render rolled through the hosts, not a join or a removal.
 */
export function configDigest(spec: ClusterSpec): string {
  const { env, configs, plugins, apps, runtime: all, registry, hostAliases } = spec;
  // The API server's SANs and the certificates' renewal threshold are certificate steps on the masters (plan/certificates.ts), not a roll through every host.
  const { certSANs: _sans, certificates: _certs, ...runtime } = all;
  // A MODULE plugin puts nothing on the hosts: its module or config changing rolls nothing (it runs at its phases).
  const rendered = plugins.filter((p) => p.type !== "MODULE");
  return digestOf({ env, configs, plugins: rendered, apps, runtime, registry, hostAliases }, spec.name, "exclude");
}
