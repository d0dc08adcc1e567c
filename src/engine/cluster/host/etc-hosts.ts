import { shellQuote, type Connection } from "../../ssh";
import { ETC_HOSTS_LOCK, underHostLock } from "../../ssh/host-lock";

/** Exit code of the write when /etc/hosts changed since it was read: read and try again. */
const CHANGED = 75;
const ATTEMPTS = 20;

/** The checksum and the text of /etc/hosts (empty when there is none), in one read. */
const READ = `{ cat /etc/hosts 2>/dev/null || true; } | sha256sum | cut -c1-64; cat /etc/hosts 2>/dev/null || true`;

/**
 * A block of /etc/hosts that sealant owns, between `# BEGIN <name>` and `# END <name>` lines:
 * replaced where it is (or appended), removed when `lines` is empty, the rest of the file kept.
 *
 * Several clusters may edit one host's /etc/hosts at once, so the edit is a compare-and-swap
 * under the host lock: the new text is computed from what was read, and written (to a unique
 * temp file, then renamed) only if the file still has the checksum it had when read; otherwise
 * it is read again. A bind-mounted /etc/hosts (containers) refuses the rename, so then it is
 * written in place — still under the lock.
 */
export async function setHostsBlock(conn: Connection, name: string, lines: string[], signal?: AbortSignal): Promise<void> {
  const opts = { sudo: true, timeoutMs: 120_000, ...(signal ? { signal } : {}) };
  for (let attempt = 1; ; attempt++) {
    const read = (await conn.run(READ, opts)).stdout;
    // The checksum goes into the write command: only 64 hex digits do. (No output at all: nothing to change, nothing to write.)
    const valid = /^[0-9a-f]{64}\n/.test(read);
    const current = valid ? read.slice(65) : "";
    const text = withBlock(current, name, lines);
    if (text === current && (valid || read === "")) return;
    if (!valid) throw new Error(`${conn.host}: reading /etc/hosts: no sha256 checksum from the host (sha256sum, from coreutils, is needed)`);
    const checksum = read.slice(0, 64);
    const write = [
      `[ "$({ cat /etc/hosts 2>/dev/null || true; } | sha256sum | cut -c1-64)" = ${checksum} ] || exit ${CHANGED}`,
      // in /etc for an atomic rename; in /tmp when /etc is read-only around a bind-mounted /etc/hosts
      `t=$(mktemp /etc/.hosts.sealant-XXXXXX 2> /dev/null || mktemp) || exit 1`,
      `trap 'rm -f "$t"' EXIT`,
      `cat > "$t" && chmod 644 "$t" || exit 1`,
      `mv -f "$t" /etc/hosts 2>/dev/null || cat "$t" > /etc/hosts`,
    ].join("\n");
    const res = await conn.exec(`sh -c ${shellQuote(underHostLock(ETC_HOSTS_LOCK, "/etc/hosts", write))}`, { ...opts, stdin: text });
    if (res.code === 0) return;
    if (res.code !== CHANGED || attempt >= ATTEMPTS) {
      const why = res.code === CHANGED ? `it kept changing under us (${ATTEMPTS} attempts)` : res.stderr.trim() || `exit ${res.code}`;
      throw new Error(`${conn.host}: updating the "${name}" block of /etc/hosts: ${why}`);
    }
  }
}

/** `current` with the block `name` holding `lines` (none: the block removed). */
export function withBlock(current: string, name: string, lines: string[]): string {
  const begin = `# BEGIN ${name}`;
  const end = `# END ${name}`;
  const all = current.split("\n");
  if (all[all.length - 1] === "") all.pop();
  const block = lines.length ? [begin, ...lines, end] : [];
  const start = all.indexOf(begin);
  const stop = start < 0 ? -1 : all.indexOf(end, start);
  const next = start >= 0 && stop >= 0 ? [...all.slice(0, start), ...block, ...all.slice(stop + 1)] : [...all, ...block];
  return next.length ? `${next.join("\n")}\n` : "";
}

/** The block name for a cluster's own host aliases (spec.hostAliases). */
export function aliasesBlock(dataRoot: string): string {
  return `sealant aliases ${dataRoot}`;
}
