import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./errors";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** node:util parseArgs with errors in the command's terms and its usage attached. */
export function parse<O extends Options>(args: string[], options: O, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.replace(/^TypeError \[\w+\]: /, "")}\n\n${usage}`);
  }
}

/** `K=V` pairs from repeated flags. */
export function keyValues(values: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw new UsageError(`${flag} "${v}": expected KEY=VALUE`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

export function insecureOption(): Options {
  return { insecure: { type: "boolean", default: false } };
}

/** The options of every command that talks to registries: transport security and the deadline. */
export const registryOptions = {
  insecure: { type: "boolean", default: false },
  "allow-http-credentials": { type: "boolean", default: false },
  timeout: { type: "string" },
  registries: { type: "string" },
} as const;

export const REGISTRY_HELP = `      --insecure               allow unverified TLS, or plain HTTP, to non-loopback registries;
                               credentials are then sent only over TLS
      --allow-http-credentials with --insecure: send credentials over plain HTTP too (only on a
                               network you trust: anyone on the way can read them)
      --timeout DURATION       give up after this long (e.g. 90s, 10m, 1h; a bare number is
                               seconds; default 1h; 0: never)
      --registries FILE        per-registry mirrors, auth, CA, plain HTTP and proxy (k3s's
                               registries.yaml shape; default $SEALANT_HOME/registries.yaml)`;

/** What the registry options mean to a Session: pass the result to Session.open. */
export function registrySessionOptions(values: {
  insecure?: boolean;
  "allow-http-credentials"?: boolean;
  timeout?: string | undefined;
  registries?: string | undefined;
}): {
  insecure: boolean;
  allowHttpCredentials: boolean;
  timeoutMs?: number;
  registries?: string;
} {
  if (values["allow-http-credentials"] && !values.insecure) {
    throw new UsageError("--allow-http-credentials only applies with --insecure (plain HTTP is used only for a registry marked insecure)");
  }
  return {
    insecure: values.insecure ?? false,
    allowHttpCredentials: values["allow-http-credentials"] ?? false,
    ...(values.timeout !== undefined ? { timeoutMs: parseDuration(values.timeout, "--timeout") } : {}),
    ...(values.registries !== undefined ? { registries: values.registries } : {}),
  };
}

/** `90`, `90s`, `10m`, `1h30m`, `0` in ms; a bare number is seconds. */
export function parseDuration(value: string, flag: string): number {
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) {
    throw new UsageError(`${flag} "${value}": expected a duration such as 90s, 10m or 1h (a bare number is seconds)`);
  }
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * units[p[2]!]!, 0));
}
