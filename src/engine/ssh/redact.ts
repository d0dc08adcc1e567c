/** Secret values never leave the engine in an error message or a log line. */

export const REDACTED = "***";

/**
 * Replaces every occurrence of each known secret value in `text` with `***` (longest first,
 * so a secret that contains another is hidden whole). Empty values are ignored.
 */
export function redact(text: string, secrets: Iterable<string | undefined>): string {
  const values = [...new Set([...secrets].filter((s): s is string => typeof s === "string" && s.length > 0))];
  if (values.length === 0) return text;
  values.sort((a, b) => b.length - a.length);
  let out = text;
  for (const v of values) out = out.split(v).join(REDACTED);
  return out;
}

/**
 * Env names that say their value is a secret (`DB_PASSWORD`, `REGISTRY_TOKEN`, `API_KEY`,
 * `SECRET_x`, `x_CREDENTIALS`, sealer's `passwd`): those values are kept out of errors and logs
 * like any other secret, whatever a failing command (`set -x`, say) prints.
 */
const SECRET_ENV_NAME = /pass|secret|token|credential|private|api_?key|(^|[_.-])(key|pwd|auth)([_.-]|$)/i;

/** Whether a name (an env variable, a spec field) says its value is a secret. */
export function isSecretName(name: string): boolean {
  return SECRET_ENV_NAME.test(name);
}

export function envSecrets(env: Record<string, string> | undefined): string[] {
  return Object.entries(env ?? {})
    .filter(([k, v]) => v !== "" && SECRET_ENV_NAME.test(k))
    .map(([, v]) => v);
}
