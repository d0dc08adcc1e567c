/** The spec's `runtime.certificates` (kept apart from certs.ts: settings.ts checks it, and certs.ts needs settings.ts). */

/** `runtime.certificates.renewBefore` when not set: renewed a month before the first leaf certificate expires. */
export const DEFAULT_RENEW_BEFORE = "30d";

/** A duration such as `30d` or `720h`, in seconds; undefined when it is not one. */
export function durationSeconds(text: unknown): number | undefined {
  const m = typeof text === "string" ? /^(\d{1,5})(d|h)$/.exec(text) : null;
  if (!m) return undefined;
  return Number(m[1]) * (m[2] === "d" ? 86400 : 3600);
}

/** What is wrong with `runtime.certificates`, each naming the field. */
export function certificateSettingsProblems(value: unknown): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value))
    return [`runtime.certificates: must be a mapping (e.g. {renewBefore: ${DEFAULT_RENEW_BEFORE}})`];
  const problems: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    if (k !== "renewBefore") problems.push(`runtime.certificates.${k}: not a setting (it reads renewBefore)`);
    else if (durationSeconds(v) === undefined)
      problems.push(`runtime.certificates.renewBefore: ${JSON.stringify(v)} is not a duration (days or hours, e.g. "30d" or "720h")`);
  }
  return problems;
}
