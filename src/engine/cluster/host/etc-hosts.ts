import type { Connection } from "../../ssh";

/**
 * A block of /etc/hosts that sealant owns, between `# BEGIN <name>` and `# END <name>` lines:
 * replaced where it is (or appended), removed when `lines` is empty, the rest of the file kept.
 * Written to a temp file and renamed; a bind-mounted /etc/hosts (containers) refuses the
 * rename, so then it is written in place.
 */
export async function setHostsBlock(conn: Connection, name: string, lines: string[], signal?: AbortSignal): Promise<void> {
  const opts = { sudo: true, timeoutMs: 60_000, ...(signal ? { signal } : {}) };
  const begin = `# BEGIN ${name}`;
  const end = `# END ${name}`;
  const current = (await conn.run("cat /etc/hosts 2>/dev/null || true", opts)).stdout;
  const all = current.split("\n");
  if (all[all.length - 1] === "") all.pop();
  const block = lines.length ? [begin, ...lines, end] : [];
  const start = all.indexOf(begin);
  const stop = start < 0 ? -1 : all.indexOf(end, start);
  const next = start >= 0 && stop >= 0 ? [...all.slice(0, start), ...block, ...all.slice(stop + 1)] : [...all, ...block];
  const text = next.length ? `${next.join("\n")}\n` : "";
  if (text === current) return;
  await conn.run(`set -e; t=/etc/.hosts.sealant-tmp; cat > "$t"; chmod 644 "$t"; mv -f "$t" /etc/hosts 2>/dev/null || { cat "$t" > /etc/hosts; rm -f "$t"; }`, {
    ...opts,
    stdin: text,
  });
}

/** The block name for a cluster's own host aliases (spec.hostAliases). */
export function aliasesBlock(dataRoot: string): string {
  return `sealant aliases ${dataRoot}`;
}
