import { BASE_PATH } from "./paths";
import { readText } from "./safe-read";
import type { Service } from "./unit-file";

/** An `EnvironmentFile=`: `KEY=VALUE` lines, `#`/`;` comments, optional quotes around the value, `\` continuation. */
export function parseEnvironmentFile(text: string): [string, string][] {
  const out: [string, string][] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    while (line.endsWith("\\") && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i]!;
    line = line.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.startsWith("export ")) line = line.slice(7).trim();
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) continue;
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      value = value.slice(1, -1).replace(/\\(["\\`$])/g, "$1");
    } else if (value.length >= 2 && value.startsWith("'") && value.endsWith("'")) {
      value = value.slice(1, -1);
    }
    out.push([key, value]);
  }
  return out;
}

/** The environment a start sees: PATH, then Environment=, then every EnvironmentFile= (read now). */
export function serviceEnvironment(svc: Service, read: (path: string) => string | undefined = readText): { env: Map<string, string>; missing: string[] } {
  const env = new Map<string, string>([["PATH", BASE_PATH]]);
  for (const [k, v] of svc.environment) env.set(k, v);
  const missing: string[] = [];
  for (const entry of svc.environmentFiles) {
    for (const spec of entry.split(/\s+/).filter(Boolean)) {
      const optional = spec.startsWith("-");
      const path = optional ? spec.slice(1) : spec;
      const text = read(path);
      if (text === undefined) {
        if (!optional) missing.push(path);
        continue;
      }
      for (const [k, v] of parseEnvironmentFile(text)) env.set(k, v);
    }
  }
  return { env, missing };
}
