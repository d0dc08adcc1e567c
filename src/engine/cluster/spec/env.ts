import { envKeyProblem, quote } from "./validators";

/** Environment for rendering templates and running scripts: name → value. */
export type Env = Record<string, string>;

export interface EnvProblem {
  /** The entry's index (list form) or name (map form). */
  at: number | string;
  message: string;
}

/**
 * A value no host command can carry: a shell variable cannot hold a NUL byte (it would be cut
 * there without a word). The value itself is not shown: env values are often passwords.
 */
function envValueProblem(value: string): string | undefined {
  return value.includes("\0") ? "the value holds a NUL character, which no shell variable can carry (the value is not shown)" : undefined;
}

/**
 * sealer's env list (`- KEY=VALUE`), split at the first "=" as sealer does; a later entry with
 * the same key wins. The value is kept exactly (`key2=value2;value3` stays one string, as in
 * current sealer). An entry without "=" is a problem (sealer drops it silently); its text is
 * shown, it has no value to leak.
 */
export function parseEnvList(entries: readonly string[]): { env: Env; problems: EnvProblem[] } {
  const env: Env = {};
  const problems: EnvProblem[] = [];
  entries.forEach((entry, index) => {
    const eq = entry.indexOf("=");
    if (eq < 0) {
      problems.push({ at: index, message: envValueProblem(entry) ?? `${quote(entry)} is not KEY=VALUE` });
      return;
    }
    const key = entry.slice(0, eq).trim();
    const problem = envKeyProblem(key);
    const valueProblem = envValueProblem(entry.slice(eq + 1));
    if (problem !== undefined) problems.push({ at: index, message: `env entry: ${problem}` });
    else if (valueProblem !== undefined) problems.push({ at: index, message: valueProblem });
    else env[key] = entry.slice(eq + 1);
  });
  return { env, problems };
}

/** sealant's env map, checked the same way (problems at the name). */
export function parseEnvMap(map: Readonly<Record<string, string>>): { env: Env; problems: EnvProblem[] } {
  const problems: EnvProblem[] = [];
  for (const [key, value] of Object.entries(map)) {
    const problem = envKeyProblem(key);
    const message = problem !== undefined ? `env name ${problem}` : envValueProblem(value);
    if (message !== undefined) problems.push({ at: key, message });
  }
  return { env: { ...map }, problems };
}

/** `KEY=VALUE` lines for an env, sorted by key (stable for digests and shell wrappers). */
export function formatEnvList(env: Env): string[] {
  return Object.keys(env)
    .sort()
    .map((k) => `${k}=${env[k] ?? ""}`);
}

/**
 * The env a host sees: host env over cluster env over the image's env (sealer's precedence:
 * the image's `ENV` is the default, the Clusterfile's `spec.env` overrides it, a host group's
 * `env` overrides both for its hosts).
 */
export function effectiveEnv(imageEnv: Env | undefined, clusterEnv: Env | undefined, hostEnv: Env | undefined): Env {
  return { ...(imageEnv ?? {}), ...(clusterEnv ?? {}), ...(hostEnv ?? {}) };
}
