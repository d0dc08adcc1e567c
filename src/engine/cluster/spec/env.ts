import { envKeyProblem, quote } from "./validators";

/** Environment for rendering templates and running scripts: name → value. */
export type Env = Record<string, string>;

export interface EnvListProblem {
  index: number;
  message: string;
}

/**
 * sealer's env list (`- KEY=VALUE`), split at the first "=" as sealer does; a later entry with
 * the same key wins. The value is kept exactly (`key2=value2;value3` stays one string, as in
 * current sealer). An entry without "=" is a problem (sealer drops it silently); its text is
 * shown, it has no value to leak.
 */
export function parseEnvList(entries: readonly string[]): { env: Env; problems: EnvListProblem[] } {
  const env: Env = {};
  const problems: EnvListProblem[] = [];
  entries.forEach((entry, index) => {
    const eq = entry.indexOf("=");
    if (eq < 0) {
      problems.push({ index, message: `${quote(entry)} is not KEY=VALUE` });
      return;
    }
    const key = entry.slice(0, eq).trim();
    const problem = envKeyProblem(key);
    if (problem !== undefined) problems.push({ index, message: `env entry: ${problem}` });
    else env[key] = entry.slice(eq + 1);
  });
  return { env, problems };
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
