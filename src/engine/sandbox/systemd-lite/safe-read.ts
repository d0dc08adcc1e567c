import { lstatSync, readdirSync, readFileSync } from "node:fs";

// Reads for state that may be missing or vanish meanwhile (units, pids, /proc): absent, not an error.

export function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

export function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export function readText(p: string): string | undefined {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return undefined;
  }
}

export function readNumber(p: string): number | undefined {
  const t = readText(p)?.trim();
  return t && /^\d+$/.test(t) ? Number(t) : undefined;
}
