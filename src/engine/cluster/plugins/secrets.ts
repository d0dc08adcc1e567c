import { isSecretName, REDACTED } from "../../ssh";

/**
 * The spec as a plugin sees it: every value under a secret-sounding field (passwords, private
 * keys, passphrases, tokens, secret env values) replaced by "***" unless the Plugin document
 * gives it the secrets; and the values hidden, to keep them out of what the plugin logs.
 */
export function specForPlugin(spec: unknown, withSecrets: boolean): { spec: Record<string, unknown>; secrets: string[] } {
  const secrets: string[] = [];
  const walk = (v: unknown, secret: boolean): unknown => {
    if (typeof v === "string") {
      if (!secret) return v;
      if (v !== "") secrets.push(v);
      return withSecrets ? v : REDACTED;
    }
    if (Array.isArray(v)) return v.map((x) => walk(x, secret));
    if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, secret || isSecretName(k))]));
    return v;
  };
  return { spec: walk(spec, false) as Record<string, unknown>, secrets };
}

/** An env map as a plugin sees it: secret-named values "***" unless it is given the secrets. */
export function envForPlugin(env: Readonly<Record<string, string>>, withSecrets: boolean): Record<string, string> {
  if (withSecrets) return { ...env };
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, isSecretName(k) && v !== "" ? REDACTED : v]));
}
